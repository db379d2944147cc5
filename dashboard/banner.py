"""The banner: the part of the page read from across the room at 3 a.m.

One word, one icon, one colour, large; under it ONE headline (the most urgent
open cause and its action, ``asnmon.qc.headline``), the live forecasts that
escalate as they shorten, and counters that all come from one ``RunCounts``.
Pure builders: rows in, components out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dash import html

from asnmon.heartbeat import clock, minutes, monitor_seen
from asnmon.qc.headline import Forecast, Headline, RunCounts
from dashboard import style

# A monitor without a heartbeat timer (a database written before it existed) wrote its
# status only when something changed: it is judged against the run's own pace, this
# many injection intervals without a word, never less than STALE_MIN_S.
STALE_INTERVALS = 3.0
STALE_MIN_S = 120.0


@dataclass(frozen=True, slots=True)
class Tile:
    """One stat tile: value, a detail line, and whether it is an alert."""

    value: str
    detail: str = ""
    alert: bool = False


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _legacy_seen(
    status: Mapping[str, Any], now: float, interval_s: float | None
) -> tuple[bool, str]:
    """Running? for a status without ``heartbeat_every``: judged by the run's pace."""
    updated = _num(status.get("updated"))
    if updated is None:
        return False, "monitor not running (never seen writing this database)"
    age = now - updated
    limit = max(STALE_MIN_S, STALE_INTERVALS * interval_s) if interval_s else STALE_MIN_S
    if age <= limit:
        return True, f"monitor running (status {age:.0f} s old)"
    return False, f"monitor not running (last seen {clock(updated)}, {minutes(age)} ago)"


def watcher_tile(
    status: Mapping[str, Any],
    *,
    live: bool,
    now: float | None = None,
    interval_s: float | None = None,
    since_file_s: float | None = None,
) -> Tile:
    """The watcher / heartbeat tile.

    With the monitor's heartbeat (``heartbeat_every`` in the status) the judgement
    is ``asnmon.heartbeat.monitor_seen``, the same as the review's and the JSON
    status file's: three missed beats and the monitor is not running; the
    instrument's own state (acquiring / stalled / finished) comes from the
    monitor, which judges a stall against the run's median interval. Without it
    (an older database), the status is judged against ``interval_s``, the run's
    median interval from the stored injections. ``live``: served by the running
    monitor (False: ``asnmon dashboard --db``, a read-only review).
    """
    now = time.time() if now is None else now
    if not status:
        if live:
            return Tile("… starting", "no status from the monitor yet")
        return Tile("— review", "no monitor status in this database")
    beat = _num(status.get("heartbeat_every")) is not None
    interval = _num(status.get("median_interval")) or interval_s
    running, said = monitor_seen(status, now) if beat else _legacy_seen(status, now, interval)
    pace = f"; one file every ≈ {_span(interval)}" if interval else ""
    if not running:
        stopped = said.startswith("monitor stopped")
        word = "■ stopped" if stopped else ("✖ not running" if not live else "▲ no heartbeat")
        return Tile(word, said + pace, alert=live or not stopped)
    # A clock time, not "N s ago": the tile is drawn on a change, and a heartbeat
    # records none, so a relative age would freeze at its first value.
    last_file = _num(status.get("last_file_at"))
    if last_file is None and since_file_s is not None:
        last_file = now - since_file_s
    quiet = f"; last file at {clock(last_file)}" if last_file is not None and interval else ""
    instrument = str(status.get("instrument") or "")
    note = str(status.get("instrument_note") or "")
    state = str(status.get("watcher") or "unknown")
    err = status.get("last_error")
    detail = f"queue {status.get('queue') or 0}, settling {status.get('pending') or 0}"
    detail += quiet + pace
    if err:
        detail += f"; {err}"
    if instrument == "stalled":
        return Tile("▲ instrument stalled", note or detail, alert=True)
    if instrument == "finished" and not err:
        return Tile("✔ run finished", note or detail)
    if not live:
        return Tile(f"review ({state})", f"{said}; {detail}")
    ok = state in ("watching", "running", "ok") and not err
    return Tile(f"{'✔' if ok else '▲'} {state}", detail, alert=not ok)


def _stat(label: str, tile: Tile, sid: str | None = None) -> html.Div:
    kw = {"id": sid} if sid else {}
    return html.Div(
        className="stat" + (" alert" if tile.alert else ""),
        children=[
            html.Div(label, className="stat-label"),
            html.Div(tile.value, className="stat-value"),
            html.Div(tile.detail, className="stat-detail") if tile.detail else None,
        ],
        **kw,
    )


def _verdict_box(look: style.Look, word: str | None = None) -> html.Div:
    return html.Div(
        className="verdict",
        id="verdict",
        style={"background": look.colour, "color": look.text},
        children=[html.Span(look.icon, className="icon"), html.Span(word or look.word)],
    )


def headline_line(head: Headline | None, counts: RunCounts, reason: str) -> html.Div:
    """The one line under the verdict: the most urgent open cause and its action."""
    if head is None:
        look = style.verdict(counts.verdict)
        return html.Div(
            id="headline",
            className="headline quiet",
            children=[html.Span(f"{look.icon} ", className="hl-icon"), html.Span(reason)],
        )
    look = style.severity(head.severity)
    return html.Div(
        id="headline",
        className=f"headline {head.severity}",
        style={"borderLeftColor": look.colour},
        children=[
            html.Span(f"{look.icon} ", className="hl-icon"),
            html.Strong(head.text, className="hl-text"),
            html.Span(f" → {head.short_action}", className="hl-action", title=head.action)
            if head.action
            else None,
        ],
    )


def forecast_lines(items: Sequence[Forecast]) -> html.Div | None:
    """The live forecasts, each coloured by its urgency (icon and word too)."""
    if not items:
        return None
    rows = []
    for fc in items:
        look = style.severity(fc.urgency)
        rows.append(
            html.Div(
                className=f"forecast {fc.urgency}",
                style={"borderLeftColor": look.colour},
                children=[
                    html.Span(
                        f"{look.icon} {fc.code} forecast",
                        className="badge",
                        style={"background": look.colour, "color": look.text},
                    ),
                    html.Span(f" {fc.text}", className="fc-text"),
                ],
            )
        )
    return html.Div(id="forecasts", className="forecasts", children=rows)


def banner(
    run: Mapping[str, Any] | None,
    counts: RunCounts,
    *,
    head: Headline | None = None,
    forecasts: Sequence[Forecast] = (),
    watcher: Tile | None = None,
    last_injection: str | None = None,
    problems: Sequence[str] = (),
) -> list[Any]:
    """Verdict, headline, forecasts, and the counters — all from ``counts``.

    The verdict is FAIL while a fail flag is unacknowledged (the banner's job is
    to get a person to the instrument), else the run's own; the open-fail tile,
    the flags tab and the beep count the same unacknowledged fails. ``problems``
    (the monitor's own: DATABASE PROBLEM, WORKER PROBLEM ...) take the verdict's
    place, before anything else.
    """
    if problems:
        return problem_banner(problems, run)
    if run is None:
        return [
            _verdict_box(style.verdict("pending"), "WAITING"),
            html.Div(className="facts", children=[html.Div("No run in the database yet.")]),
        ]
    look = style.verdict(counts.verdict)
    reason = str(run.get("verdict_reason") or "")
    name = run.get("name") or run.get("run_id")
    own = style.verdict(counts.run_verdict).word
    context = f"{name}: run verdict {own}" + (f" — {reason}" if reason else "")
    fails = counts.open_fail
    stats = [
        _stat("Injections", Tile(counts.progress), "stat-progress"),
        _stat("Last injection", Tile(last_injection or "—")),
        _stat(
            "Open FAIL flags",
            Tile(
                f"✖ {fails}" if fails else "0", f"{counts.unacknowledged} unacknowledged", fails > 0
            ),
            "stat-open-fail",
        ),
        _stat("Watcher", watcher or Tile("—")),
    ]
    facts = [
        headline_line(head, counts, context),
        forecast_lines(forecasts),
        html.Div(className="reason context", children=context) if head is not None else None,
        html.Div(className="stats", children=stats),
    ]
    return [_verdict_box(look), html.Div(className="facts", children=[f for f in facts if f])]


def problem_banner(problems: Sequence[str], run: Mapping[str, Any] | None = None) -> list[Any]:
    """The monitor's own problems in the verdict's place: the word, then each problem."""
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
    return [_verdict_box(style.verdict("fail"), word), html.Div(className="facts", children=facts)]
