"""The site view's pieces: an instrument card, the runs table and the selected run's plots.

Pure functions of the summaries and frames; the app wires them to callbacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
from dash import html

from asnmon.assay import Assay
from dashboard import figures, style
from dashboard.share_summary import newest_per_instrument
from dashboard.tables import clock_time

RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("instrument", "Instrument"),
    ("run", "Run"),
    ("verdict", "Verdict"),
    ("injections", "Injections"),
    ("flagged", "Flagged injections"),
    ("updated", "Last update"),
)


def _when(stamp: str) -> str:
    """'2024-05-06 08:16' from an ISO stamp: dates matter once runs span days."""
    if not stamp:
        return "—"
    day, _, time_part = stamp.replace(" ", "T").partition("T")
    return f"{day} {time_part[:5]}".strip()


def instrument_card(s: Mapping[str, Any]) -> html.Div:
    """One instrument's newest run, large: verdict icon + word + colour, then the facts."""
    look = style.verdict(s.get("verdict"))
    fails = int(s.get("fails") or 0)
    planned = s.get("planned")
    done = s.get("injections") or 0
    updated = str(s.get("updated") or "")
    return html.Div(
        className="share-card",
        id={"type": "share-card", "instrument": s["instrument"]},
        style={
            "background": style.PAPER,
            "border": f"3px solid {style.INK}",
            "borderRadius": "8px",
            "overflow": "hidden",
        },
        children=[
            html.Div(
                className="share-verdict",
                style={
                    "background": look.colour,
                    "color": look.text,
                    "display": "flex",
                    "alignItems": "center",
                    "gap": "16px",
                    "padding": "8px 18px",
                },
                children=[
                    html.Span(look.icon, style={"fontSize": "64px", "lineHeight": "1"}),
                    html.Span(
                        look.word,
                        className="share-word",
                        style={"fontSize": "60px", "fontWeight": 900, "lineHeight": "1"},
                    ),
                    html.Span(
                        s["instrument"],
                        className="share-instrument",
                        style={
                            "marginLeft": "auto",
                            "fontSize": "34px",
                            "fontWeight": 800,
                            "textAlign": "right",
                        },
                    ),
                ],
            ),
            html.Div(
                style={"padding": "8px 18px 12px"},
                children=[
                    html.Div(
                        f"{s.get('name') or s['run_id']}: {s.get('reason') or ''}",
                        className="share-reason",
                        style={"fontSize": "22px", "fontWeight": 600, "margin": "4px 0 8px"},
                    ),
                    html.Div(
                        className="stats",
                        children=[
                            _stat("Injections", f"{done} / {planned}" if planned else f"{done}"),
                            _stat("Last injection", clock_time(s.get("last_injection")) or "—"),
                            _stat(
                                "FAIL flags",
                                f"✖ {fails}" if fails else "0",
                                alert=fails > 0,
                            ),
                            _stat("Exported", _when(updated)[-5:] if updated else "—"),
                        ],
                    ),
                ],
            ),
        ],
    )


def _stat(label: str, value: str, *, alert: bool = False) -> html.Div:
    return html.Div(
        className="stat" + (" alert" if alert else ""),
        children=[
            html.Div(label, className="stat-label"),
            html.Div(value, className="stat-value"),
        ],
    )


def instrument_cards(summaries: Sequence[Mapping[str, Any]]) -> list[Any]:
    newest = newest_per_instrument(summaries)
    if not newest:
        return [html.P("No instrument has exported a run yet.", className="share-empty")]
    return [instrument_card(s) for s in newest]


def run_rows(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The runs table's rows (plain values; the verdict as icon + word)."""
    rows = []
    for s in summaries:
        look = style.verdict(s.get("verdict"))
        rows.append(
            {
                "instrument": s["instrument"],
                "run_id": s["run_id"],
                "run": str(s.get("name") or s["run_id"]),
                "verdict": f"{look.icon} {look.word}",
                "verdict_key": str(s.get("verdict") or "pending").lower(),
                "injections": int(s.get("injections") or 0),
                "flagged": int(s.get("flagged") or 0),
                "updated": _when(str(s.get("updated") or s.get("last_injection") or "")),
            }
        )
    return rows


def runs_table(rows: Sequence[Mapping[str, Any]], selected: Mapping[str, Any] | None) -> Any:
    """Clickable rows (pattern-matching ids); the selected run is marked."""
    head = html.Tr([html.Th(name) for _, name in RUN_COLUMNS])
    body = []
    sel = (selected or {}).get("instrument"), (selected or {}).get("run_id")
    for r in rows:
        look = style.verdict(r["verdict_key"])
        cells = [
            html.Td(
                html.Span(
                    r["verdict"],
                    className="badge",
                    style={"background": look.colour, "color": look.text},
                )
            )
            if cid == "verdict"
            else html.Td(r[cid])
            for cid, _ in RUN_COLUMNS
        ]
        is_sel = (r["instrument"], r["run_id"]) == sel
        body.append(
            html.Tr(
                cells,
                id={"type": "share-run", "instrument": r["instrument"], "run": r["run_id"]},
                n_clicks=0,
                className="share-run inj-row" + (" selected" if is_sel else ""),
                style={
                    "cursor": "pointer",
                    "borderLeft": f"8px solid {look.colour}",
                    "background": "#DDEEFF" if is_sel else None,
                },
            )
        )
    if not body:
        body = [html.Tr(html.Td("No runs.", colSpan=len(RUN_COLUMNS)))]
    return html.Table(className="injections", children=[html.Thead(head), html.Tbody(body)])


def run_results(results: pl.DataFrame, instrument: str, run_id: str) -> pl.DataFrame:
    """One run's rows, with an ``injection_id`` even from exports that lacked one."""
    if results.is_empty() or not {"instrument", "run_id"} <= set(results.columns):
        return pl.DataFrame()
    part = results.filter((pl.col("instrument") == instrument) & (pl.col("run_id") == run_id))
    if "injection_id" not in part.columns:
        part = part.with_row_index("injection_id", offset=1)
    return part


def run_plots(
    results: pl.DataFrame, selected: Mapping[str, Any] | None, assay: Assay
) -> tuple[Any, Any]:
    """IS % and asparagine figures of the selected run (the single-run builders)."""
    if not selected:
        msg = "Select a run in the table to see its IS response and asparagine"
        return figures.empty_figure(msg), figures.empty_figure(msg)
    inst, rid = str(selected["instrument"]), str(selected["run_id"])
    part = run_results(results, inst, rid)
    if part.is_empty():
        msg = f"No results for {inst} / {rid} in the shared folder"
        return figures.empty_figure(msg), figures.empty_figure(msg)
    series = figures.run_series(part)
    uirev = f"{inst}/{rid}"
    is_fig = figures.is_figure(series, assay, uirevision=uirev, height=420)
    asn_fig = figures.asn_figure(series, assay, uirevision=uirev, height=420)
    is_fig.update_layout(title_text=f"{inst} · {rid} — IS, % of calibrator/QC mean")
    asn_fig.update_layout(title_text=f"{inst} · {rid} — {asn_fig.layout.title.text}")
    return is_fig, asn_fig
