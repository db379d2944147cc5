"""Layout builders: pure functions of rows and settings, returning Dash components.

The banner is the part read from across the room: one word, one icon, one
colour, large; everything else is for the scientist at the bench.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html

from dashboard import acks, signoff, style
from dashboard.tables import TABLE_COLUMNS

TYPE_OPTIONS = [{"label": label, "value": kind} for kind, label, *_ in style.SAMPLE_TYPES]
TABS = (
    ("flags", "Open flags"),
    ("calibration", "Calibration"),
    ("qc", "QC (Levey-Jennings)"),
    ("pools", "Pools: media / lysate"),
    signoff.TAB,
)
GRAPH_CONFIG = {"displaylogo": False}


def build_layout(
    *, kiosk: bool = False, sound: bool = False, refresh_ms: int = 1000, read_only: bool = False
) -> html.Div:
    """The whole page. Kiosk mode hides everything but the banner and the run plots (CSS)."""
    return html.Div(
        id="root",
        className="kiosk" if kiosk else "",
        children=[
            dcc.Location(id="url", refresh=False),
            dcc.Interval(id="tick", interval=refresh_ms, n_intervals=0),
            dcc.Store(id="changed"),
            dcc.Store(id="plot-meta"),
            dcc.Store(id="selected"),
            dcc.Store(id="fail-count", data=0),
            dcc.Store(id="kiosk-default", data=kiosk),
            html.Div(id="beep", style={"display": "none"}),
            html.Header(
                className="topbar controls",
                children=[
                    html.Span("asnmon", className="brand"),
                    dcc.Dropdown(
                        id="run",
                        placeholder="newest run (follows new runs)",
                        clearable=True,
                        className="run-picker",
                    ),
                    dcc.Checklist(
                        id="sound",
                        options=[{"label": " sound on new FAIL", "value": "on"}],
                        value=["on"] if sound else [],
                        className="sound",
                    ),
                    html.A("kiosk view", href="?kiosk=1", className="kiosk-link"),
                    signoff.user_bar(),
                    html.Span("read-only review" if read_only else "live", className="mode-tag"),
                ],
            ),
            html.Section(id="banner", className="banner", children=banner(None, {}, 0)),
            html.Section(
                className="run-plots",
                children=[
                    dcc.Graph(id="is-plot", className="run-plot", config=GRAPH_CONFIG),
                    dcc.Graph(id="asn-plot", className="run-plot", config=GRAPH_CONFIG),
                ],
            ),
            html.Section(
                className="detail controls",
                children=[
                    html.Div(className="table-pane", children=injection_table()),
                    html.Div(
                        className="chrom-pane",
                        children=[
                            html.H2("Chromatograms", className="pane-title"),
                            dcc.Graph(id="chrom", config=GRAPH_CONFIG),
                        ],
                    ),
                ],
            ),
            html.Section(
                className="tabs-pane controls",
                children=[
                    dcc.Tabs(
                        id="tabs",
                        value="flags",
                        children=[dcc.Tab(label=label, value=v) for v, label in TABS],
                    ),
                    html.Div(id="pane-flags", className="pane", children=flags_pane(read_only)),
                    html.Div(
                        id="pane-calibration",
                        className="pane",
                        children=[
                            dcc.Graph(id="cal-plot", config=GRAPH_CONFIG),
                            html.Div(id="cal-versions"),
                        ],
                    ),
                    html.Div(id="pane-qc", className="pane", children=[dcc.Graph(id="lj-plot")]),
                    html.Div(
                        id="pane-pools", className="pane", children=[dcc.Graph(id="pools-plot")]
                    ),
                    html.Div(id="pane-signoff", className="pane", children=signoff.pane()),
                ],
            ),
        ],
    )


def injection_table() -> list[Any]:
    return [
        html.Div(
            className="filters",
            children=[
                html.H2("Injections, newest first", className="pane-title"),
                dcc.Dropdown(
                    id="filter-type",
                    options=TYPE_OPTIONS,
                    multi=True,
                    placeholder="all sample types",
                ),
                dcc.Dropdown(id="filter-flag", multi=True, placeholder="any flags"),
            ],
        ),
        html.Div(id="injections", className="inj-table"),
        html.Div(
            className="pager",
            children=[
                html.Button("◀ newer", id="page-newer", n_clicks=0),
                html.Span(id="page-label", children="page 1 / 1"),
                html.Button("older ▶", id="page-older", n_clicks=0),
                dcc.Store(id="page", data=0),
            ],
        ),
    ]


def injection_rows_table(rows: Sequence[Mapping[str, Any]], selected: int | None = None) -> Any:
    """The table: each row clickable (pattern-matching id), flags as severity badges."""
    head = html.Tr([html.Th(name) for _, name in TABLE_COLUMNS])
    body = []
    for r in rows:
        worst = style.SEVERITY.get(r.get("worst") or "")
        cells = []
        for cid, _ in TABLE_COLUMNS:
            if cid == "badges":
                cells.append(html.Td([flag_badge(c, s, a) for c, s, a in r.get("flags", ())]))
            else:
                cells.append(html.Td(r.get(cid, "")))
        body.append(
            html.Tr(
                cells,
                id={"type": "inj-row", "injection": r["injection_id"]},
                n_clicks=0,
                className="inj-row" + (" selected" if r["injection_id"] == selected else ""),
                style={"borderLeft": f"8px solid {worst.colour}"} if worst else {},
            )
        )
    if not body:
        body = [html.Tr(html.Td("No injections match.", colSpan=len(TABLE_COLUMNS)))]
    return html.Table(className="injections", children=[html.Thead(head), html.Tbody(body)])


def flag_badge(code: str, severity: str, acks: int = 0) -> html.Span:
    look = style.severity(severity)
    return html.Span(
        f"{look.icon} {code}" + (" ✓" if acks else ""),
        className="badge",
        title=f"{look.word}" + (" (acknowledged)" if acks else ""),
        style={"background": look.colour, "color": look.text},
    )


def flags_pane(read_only: bool) -> list[Any]:
    return [*acks.ack_form(read_only), html.Div(id="flag-list")]


MAX_FLAG_CARDS = 50  # thousands of cards make a page that takes seconds to draw


def flag_cards(rows: Sequence[Mapping[str, Any]], *, read_only: bool = False) -> list[Any]:
    """One card per open flag (the first MAX_FLAG_CARDS): badge, where, message, what to do.

    ``rows`` come most urgent first (``tables.open_flags``); past the cap a line says
    how many more there are and where to find them, rather than drawing them all.
    """
    if not rows:
        return [html.P("✔ No open flags.", className="all-clear")]
    cards = []
    for f in rows[:MAX_FLAG_CARDS]:
        look = style.severity(f["severity"])
        acked = f["acks"] > 0
        cards.append(
            html.Div(
                className="flag-card" + (" acked" if acked else ""),
                style={"borderLeftColor": look.colour},
                children=[
                    html.Div(
                        className="flag-head",
                        children=[
                            html.Span(
                                f"{look.icon} {look.word}",
                                className="badge",
                                style={"background": look.colour, "color": look.text},
                            ),
                            html.Strong(f" {f['code']} "),
                            html.Span(f"— {f['where']}", className="where"),
                            html.Span(
                                f" ✓ acknowledged ×{f['acks']}" if acked else "",
                                className="acked-tag",
                            ),
                        ],
                    ),
                    html.P(f["message"], className="flag-msg"),
                    html.P(f"What to do: {f['action']}", className="flag-action")
                    if f["action"]
                    else None,
                    html.Button(
                        "Acknowledge",
                        id={"type": "ack", "flag": f["flag_id"]},
                        className="ack-btn",
                        disabled=read_only,
                        n_clicks=0,
                    ),
                ],
            )
        )
    if len(rows) > MAX_FLAG_CARDS:
        more = len(rows) - MAX_FLAG_CARDS
        cards.append(
            html.P(
                f"… and {more} more open flag(s), less urgent or older: filter the injection "
                "table by flag code to see them.",
                className="flag-more",
            )
        )
    return cards


def summarize_alarms(alarms: Sequence[str]) -> str:
    """ "IS_LOW ×18, READ_ERROR; latest IS_LOW (085.mzML)": readable from across the room."""
    counts: dict[str, int] = {}
    for a in alarms:
        code = a.split(" ", 1)[0]
        counts[code] = counts.get(code, 0) + 1
    codes = ", ".join(f"{c} ×{n}" if n > 1 else c for c, n in counts.items())
    return (
        f"{codes}; latest {alarms[-1]}"
        if len(alarms) > 1
        else codes + (alarms[0][len(alarms[0].split(" ", 1)[0]) :] if alarms else "")
    )


def banner(
    run: Mapping[str, Any] | None,
    status: Mapping[str, Any],
    fail_flags: int,
    *,
    last_injection: str | None = None,
    now: float | None = None,
    alarms: Sequence[str] = (),
    problems: Sequence[str] = (),
) -> list[Any]:
    """Verdict (icon + word + colour), why, progress, last injection, watcher health.

    ``alarms`` are unacknowledged FAIL flags: they show FAIL whatever the run's
    verdict says, until someone acknowledges them, because the banner's job is to
    get a person to the instrument. ``problems`` are the monitor's own ("DATABASE
    PROBLEM: ...", "WORKER PROBLEM: ...", "WORKLIST PROBLEM ..."): a monitor that
    cannot store results says so in the verdict's place, before anything else.
    """
    if problems:
        return problem_banner(problems, run)
    if run is None:
        look = style.verdict("pending")
        return [
            html.Div(
                className="verdict",
                style={"background": look.colour, "color": look.text},
                children=[html.Span(look.icon, className="icon"), html.Span("WAITING")],
            ),
            html.Div(className="facts", children=[html.Div("No run in the database yet.")]),
        ]
    look = style.verdict(run.get("verdict"))
    reason = str(run.get("verdict_reason") or "")
    if alarms and look.word != "FAIL":
        look = style.verdict("fail")
        reason = (
            f"{len(alarms)} unacknowledged FAIL flag(s): {summarize_alarms(alarms)} — run "
            f"verdict {str(run.get('verdict') or 'pending').upper()}: {reason}"
        )
    done = run.get("injections") or 0
    planned = run.get("planned")
    progress = f"{done} / {planned}" if planned else f"{done}"
    watcher, watcher_detail, watcher_alert = _watcher(status, now)
    facts = [
        html.Div(
            className="reason",
            children=f"{run.get('name') or run.get('run_id')}: {reason}",
        ),
        html.Div(
            className="stats",
            children=[
                _stat("Injections", progress),
                _stat("Last injection", last_injection or "—"),
                _stat(
                    "Open FAIL flags",
                    f"✖ {fail_flags}" if fail_flags else "0",
                    alert=fail_flags > 0,
                ),
                _stat("Watcher", watcher, watcher_detail, alert=watcher_alert),
            ],
        ),
    ]
    return [
        html.Div(
            className="verdict",
            id="verdict",
            style={"background": look.colour, "color": look.text},
            children=[html.Span(look.icon, className="icon"), html.Span(look.word)],
        ),
        html.Div(className="facts", children=facts),
    ]


def problem_banner(problems: Sequence[str], run: Mapping[str, Any] | None = None) -> list[Any]:
    """The monitor's own problems in the verdict's place: the word, then each problem."""
    look = style.verdict("fail")
    word = problems[0].split(":", 1)[0].split(" in run ", 1)[0].strip()
    facts: list[Any] = [
        html.Div(className="reason problem", children=p, id={"type": "problem", "index": i})
        for i, p in enumerate(problems)
    ]
    if run is not None:
        facts.append(
            html.Div(
                className="stat-detail",
                children=f"run {run.get('name') or run.get('run_id')}: verdict "
                f"{str(run.get('verdict') or 'pending').upper()}, "
                f"{run.get('injections') or 0} injection(s) stored",
            )
        )
    return [
        html.Div(
            className="verdict",
            id="verdict",
            style={"background": look.colour, "color": look.text},
            children=[html.Span(look.icon, className="icon"), html.Span(word)],
        ),
        html.Div(className="facts", children=facts),
    ]


def _stat(label: str, value: str, detail: str = "", *, alert: bool = False) -> html.Div:
    return html.Div(
        className="stat" + (" alert" if alert else ""),
        children=[
            html.Div(label, className="stat-label"),
            html.Div(value, className="stat-value"),
            html.Div(detail, className="stat-detail") if detail else None,
        ],
    )


def _watcher(status: Mapping[str, Any], now: float | None) -> tuple[str, str, bool]:
    """(value, detail, alert) for the watcher tile; a read-only review has no watcher."""
    if not status:
        return "— review", "no live watcher", False
    state = str(status.get("watcher") or "unknown")
    queue = status.get("queue") or 0
    pending = status.get("pending") or 0
    err = status.get("last_error")
    updated = status.get("updated")
    age = (now or time.time()) - float(updated) if isinstance(updated, int | float) else None
    ok = state in ("watching", "running", "ok") and not err
    icon = "✔" if ok else "▲"
    detail = f"queue {queue}, settling {pending}"
    if age is not None and age > 120:
        detail += f"; status {age / 60:.0f} min old"
        ok = False
    if err:
        detail += f"; {err}"
    return f"{icon} {state}", detail, not ok


def versions_table(calibrations: Sequence[Mapping[str, Any]]) -> Any:
    if not calibrations:
        return html.P("No calibration versions yet.")
    head = html.Tr([html.Th(h) for h in ("Version", "Status", "Model", "Weighting", "r²", "Why")])
    rows = []
    for c in calibrations:
        look = style.verdict("pass" if c.get("accepted") else "fail")
        r2 = c.get("r2")
        rows.append(
            html.Tr(
                [
                    html.Td(f"v{c.get('version')}"),
                    html.Td(
                        f"{look.icon} {'accepted' if c.get('accepted') else 'rejected'}",
                        style={"color": look.colour if c.get("accepted") else style.VERMILION},
                    ),
                    html.Td(c.get("model")),
                    html.Td(c.get("weighting")),
                    html.Td(f"{r2:.4f}" if isinstance(r2, float) else "—"),
                    html.Td(c.get("reason") or ""),
                ]
            )
        )
    return html.Table(className="versions", children=[html.Thead(head), html.Tbody(rows)])
