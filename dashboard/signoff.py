"""The sign-off pane: who is logged in, the run's signatures, signing, the audit trail.

Builders are pure functions of rows; ``register`` wires three thin callbacks.
Signing re-enters the password every time (21 CFR Part 11 §11.200(a)(1)),
the field is emptied after each attempt, and the store — not this page —
checks the password, the role, the four-eyes rule and the lock.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dash
import polars as pl
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from asnmon.audit import ChainCheck
from asnmon.errors import AccessDenied, StoreError
from asnmon.store import STORE_FAILURES, Store
from asnmon.users import can
from dashboard import inputs
from dashboard.auth import Auth, Who

log = logging.getLogger("asnmon.dashboard")

TAB = ("signoff", "Sign-off & audit")
SIGN_BUTTONS = {"sign-reviewed": "reviewed", "sign-approved": "approved", "sign-reopen": "reopened"}
# the callback_map key of the signing callback: a write (needs the page's session token)
SIGN_OUTPUT = "..sign-result.children...sign-password.value.."
WRITES = frozenset({SIGN_OUTPUT})
STATE_WORDS = {
    "open": "OPEN — not reviewed yet",
    "reviewed": "REVIEWED — waiting for approval",
    "approved": "APPROVED — locked: nothing in this run can change until an approver reopens it",
}
MAX_EVENTS = 200  # rows of the trail drawn at once (the CLI shows them all)
# How often the pane re-hashes the whole trail (between, only new events): 10 min
# bounds how long a change to an old event goes unseen, at 1-3 s per 10,000 events.
FULL_CHECK_S = 600.0


# ---------------------------------------------------------------- builders


def user_bar() -> html.Span:
    return html.Span(id="who", className="who", role="status")


def who_children(who: Who) -> list[Any]:
    if not who.accounts:
        return [html.Span("single bench, no accounts", className="who-bench", title=who.note)]
    if who.actor is None:
        return [
            html.Span(who.note, className="who-note"),
            " ",
            html.A("Log in", href="/login", id="login-link", className="who-link"),
        ]
    return [
        html.Span(f"{who.actor.name} ({who.actor.role})", id="who-name", className="who-name"),
        " ",
        html.A("Log out", href="/logout", id="logout-link", className="who-link"),
    ]


def pane() -> list[Any]:
    return [
        html.Div(id="signoff-state", className="signoff-state"),
        html.Div(
            className="sign-form",
            children=[
                html.Div(id="sign-as", className="sign-as"),
                dcc.Input(
                    id="sign-password",
                    type="password",
                    placeholder="your password (re-enter it to sign)",
                    autoComplete="current-password",
                    maxLength=1024,
                ),
                dcc.Input(
                    id="sign-reason",
                    type="text",
                    placeholder="reason (needed to reopen; optional to sign)",
                    className="sign-reason",
                    maxLength=inputs.MAX_COMMENT,
                ),
                html.Button("Sign: Reviewed", id="sign-reviewed", n_clicks=0),
                html.Button("Sign: Approved", id="sign-approved", n_clicks=0),
                html.Button("Reopen (approver)", id="sign-reopen", n_clicks=0),
            ],
        ),
        html.Div(id="sign-result", className="sign-result", role="status"),
        html.H3("Audit trail of the run", className="pane-title"),
        html.Div(id="audit-run"),
        html.H3("Audit trail of the selected injection", className="pane-title"),
        html.Div(id="audit-injection"),
    ]


def state_block(
    run_id: str | None, state: str, sigs: Sequence[Mapping[str, Any]], drift: str = ""
) -> list[Any]:
    if run_id is None:
        return [html.P("No run yet.")]
    head = html.Div(
        [
            html.P(
                [html.Strong(f"Run {run_id}: "), STATE_WORDS[state]],
                className=f"sign-state sign-{state}",
                id="sign-state",
            ),
            html.P(f"▲ Warning: {drift}", className="chain-broken", id="sign-drift")
            if drift
            else None,
        ]
    )
    if not sigs:
        return [head, html.P("No signatures yet.", className="hint")]
    rows = [
        html.Tr(
            className="" if s["current"] else "superseded",
            children=[
                html.Td(s["meaning"].capitalize()),
                html.Td(s["name"]),
                html.Td(s["role"]),
                html.Td(f"{s['signed_at']:%Y-%m-%d %H:%M:%S} UTC"),
                html.Td(s["local_time"]),
                html.Td(s["reason"] or ""),
            ],
        )
        for s in sigs
    ]
    head_row = html.Tr(
        [html.Th(h) for h in ("Meaning", "Printed name", "Role", "Time (UTC)", "Local", "Reason")]
    )
    return [
        head,
        html.Table(
            className="signatures",
            id="signatures",
            children=[html.Thead(head_row), html.Tbody(rows)],
        ),
        html.P("Greyed rows belong to an earlier cycle, ended by a reopening.", className="hint")
        if any(not s["current"] for s in sigs)
        else None,
    ]


def sign_as(who: Who, state: str) -> str:
    if who.actor is None:
        return who.note
    a = who.actor
    if not can(a, "review"):
        return (
            f"{a.name} ({a.role}) cannot sign: reviewing needs a reviewer, approving an approver."
            if a.role != "bench"
            else "Signing needs a named account: the bench without accounts can acknowledge "
            "and edit, not sign."
        )
    nxt = {"open": "Reviewed", "reviewed": "Approved", "approved": "Reopen"}[state]
    return f"Signing as {a.name} ({a.role}). Next step for this run: {nxt}."


def _short(text: str | None, n: int = 90) -> str:
    """A stored old/new value as a person reads it: ``key: value`` pairs, not JSON."""
    if not text:
        return "–"
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(value, dict):
        text = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in value.items() if v != "")
    elif not isinstance(value, str):
        text = str(value)
    else:
        text = value
    text = text or "–"
    return text if len(text) <= n else text[: n - 1] + "…"


def events_table(events: pl.DataFrame, empty: str) -> Any:
    if events.is_empty():
        return html.P(empty, className="hint")
    shown = events.sort("event_id", descending=True).head(MAX_EVENTS)
    rows = [
        html.Tr(
            [
                html.Td(str(e["event_id"])),
                html.Td(f"{e['at_utc']:%Y-%m-%d %H:%M:%S}"),
                html.Td(f"{e['actor']} ({e['role']})"),
                html.Td(e["action"]),
                html.Td(e["target"]),
                html.Td(f"{_short(e['old'])} → {_short(e['new'])}"),
                html.Td(e["reason"] or ""),
            ]
        )
        for e in shown.iter_rows(named=True)
    ]
    head = html.Tr([html.Th(h) for h in ("#", "UTC", "Who", "Action", "What", "Old → new", "Why")])
    more = (
        html.P(
            f"Newest {MAX_EVENTS} of {events.height} events; `asnmon audit show` lists all.",
            className="hint",
        )
        if events.height > MAX_EVENTS
        else None
    )
    return [html.Table(className="audit", children=[html.Thead(head), html.Tbody(rows)]), more]


def chain_line(problems: Sequence[str], count: int) -> html.P:
    if problems:
        return html.P(
            f"✖ AUDIT TRAIL BROKEN: {problems[0]} Run `asnmon audit verify` and find out "
            "who changed the database file.",
            className="chain-broken",
            id="chain-state",
        )
    return html.P(
        f"✔ Audit trail intact: {count} events, each hash-chained to the one before.",
        className="hint",
        id="chain-state",
    )


# ---------------------------------------------------------------- the chain check


class ChainWatch:
    """The pane's audit check: each refresh walks only the events since the last one.

    Re-hashing the whole trail on every redraw cost 1-3 s at 10,000 events
    (benchmarks/audit_verify.py). The store anchors each check on the newest
    event verified before and walks the whole chain again whenever that event
    changed; the whole chain is also walked every ``full_every`` seconds, so a
    change to an older event (a restored or edited file) shows within that time.
    ``asnmon audit verify`` and the report always walk the whole chain.
    """

    def __init__(
        self,
        store: Store,
        full_every: float = FULL_CHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.full_every = full_every
        self._clock = clock
        self._last: ChainCheck | None = None
        self._full_at = -math.inf
        self._lock = threading.Lock()

    def check(self) -> ChainCheck:
        with self._lock:
            now = self._clock()
            since = self._last if now - self._full_at < self.full_every else None
            result = self.store.check_audit(since)
            if since is None:
                self._full_at = now
            self._last = result
            return result


# ---------------------------------------------------------------- wiring


def register(
    app: dash.Dash, store: Store, auth: Auth, resolve_run: Any, *, approver_not_reviewer: bool
) -> None:
    """The sign-off callbacks; ``resolve_run(run_id)`` turns None into the shown run."""
    audit = ChainWatch(store)

    @app.callback(Output("who", "children"), Input("url", "pathname"), Input("changed", "data"))
    def on_who(_path: Any, _changed: Any) -> Any:
        return who_children(auth.who())

    @app.callback(
        Output("signoff-state", "children"),
        Output("sign-as", "children"),
        Output("audit-run", "children"),
        Output("audit-injection", "children"),
        Input("changed", "data"),
        Input("run", "value"),
        Input("tabs", "value"),
        Input("selected", "data"),
    )
    def on_view(_changed: Any, run_id: Any, tab: Any, selected: Any) -> Any:
        if tab != TAB[0]:
            raise PreventUpdate
        run = resolve_run(inputs.opt_str(run_id, "run"))
        inj = inputs.opt_int(selected, "selected injection")
        try:
            if run is None:
                return state_block(None, "open", []), "", None, None
            state = store.sign_state(run)
            sigs = list(store.signatures(run).iter_rows(named=True))
            drift = store.changed_since_approval(run) if state == "approved" else ""
            chain = audit.check()
            trail = store.audit_events(run)
            injection = (
                events_table(store.audit_events(injection_id=inj), "No changes to this injection.")
                if inj is not None
                else html.P("Select an injection in the table to see its trail.", className="hint")
            )
        except STORE_FAILURES as exc:
            return html.P(f"The database does not answer: {exc}"), "", None, None
        return (
            [*state_block(run, state, sigs, drift), chain_line(chain.problems, chain.event_id)],
            sign_as(auth.who(), state),
            events_table(trail, "No changes recorded for this run yet."),
            injection,
        )

    @app.callback(
        Output("sign-result", "children"),
        Output("sign-password", "value"),
        *(Input(b, "n_clicks") for b in SIGN_BUTTONS),
        State("sign-password", "value"),
        State("sign-reason", "value"),
        State("run", "value"),
        prevent_initial_call=True,
    )
    def on_sign(*args: Any) -> tuple[Any, str]:
        *clicks, password, reason, run_id = args
        trig = ctx.triggered_id
        if trig not in SIGN_BUTTONS or not any(inputs.opt_int(c, "clicks") for c in clicks):
            raise PreventUpdate
        password = inputs.opt_str(password, "password", 1024) or ""
        reason = inputs.opt_str(reason, "reason", inputs.MAX_COMMENT) or ""
        run = resolve_run(inputs.opt_str(run_id, "run"))
        return sign_message(
            store,
            auth,
            run,
            SIGN_BUTTONS[trig],
            password,
            reason,
            approver_not_reviewer=approver_not_reviewer,
        ), ""


def sign_message(
    store: Store,
    auth: Auth,
    run: str | None,
    meaning: str,
    password: str,
    reason: str,
    *,
    approver_not_reviewer: bool,
) -> str:
    """Sign as the logged-in person; the plain line the page shows."""
    who = auth.who()
    if who.actor is None:
        return f"✖ Not signed: {who.note}"
    if who.actor.role == "bench":
        return (
            "✖ Not signed: signing needs a named account (asnmon user add NAME --role "
            "reviewer); the bench without accounts cannot sign."
        )
    if run is None:
        return "✖ Not signed: there is no run to sign."
    if store.read_only:
        return (
            "✖ Not signed: this dashboard reads the database read-only "
            "(asnmon dashboard --review opens it for review and sign-off)."
        )
    if not password:
        return "✖ Not signed: re-enter your password to sign."
    try:
        store.sign_run(
            run,
            name=who.actor.name,
            password=password,
            meaning=meaning,
            reason=reason,
            approver_not_reviewer=approver_not_reviewer,
        )
    except (AccessDenied, StoreError) as err:
        return f"✖ Not signed: {err}"
    sig = store.signatures(run).row(-1, named=True)
    word = {"reviewed": "Reviewed", "approved": "Approved", "reopened": "Reopened"}[meaning]
    lock = " The run is now locked." if meaning == "approved" else ""
    return (
        f"✔ {word}: run {run} signed by {sig['name']} at {sig['signed_at']:%Y-%m-%d %H:%M:%S} "
        f"UTC ({sig['local_time']}).{lock}"
    )
