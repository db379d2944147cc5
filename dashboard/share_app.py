"""All instruments side by side, read-only, from the shared Parquet folder.

Each monitor owns its DuckDB file, so a site-wide view cannot open them; it
reads what the monitors export (``asnmon.share.write_share``) instead. The
folder may sit on a slow network share, so each tick only stats it and a file
is re-read only when its mtime or size moved. Files are replaced atomically,
but a reader can still catch one mid-replace over SMB: such a file is skipped,
named on the page, and retried on the next tick rather than breaking the page.

Modules: ``share_folder`` (reading the folder), ``share_summary`` (one summary
per run), ``share_views`` (cards, table, plots); this one builds the app.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from asnmon.assay import Assay
from dashboard import inputs
from dashboard.guard import MAX_REQUEST_KB
from dashboard.layout import RUN_PLOT_CONFIG
from dashboard.share_folder import (
    ShareCache,
    ShareState,
    folder_message,
    folder_signature,
)
from dashboard.share_summary import FAIL_CODES, newest_per_instrument, run_summaries
from dashboard.share_views import (
    RUN_COLUMNS,
    instrument_card,
    instrument_cards,
    run_plots,
    run_results,
    run_rows,
    runs_table,
)

__all__ = [
    "FAIL_CODES",
    "GRAPH_CONFIG",
    "RUN_COLUMNS",
    "ShareCache",
    "ShareState",
    "build_share_layout",
    "create_share_app",
    "folder_message",
    "folder_signature",
    "instrument_card",
    "instrument_cards",
    "newest_per_instrument",
    "run_plots",
    "run_results",
    "run_rows",
    "run_summaries",
    "runs_table",
]

GRAPH_CONFIG = {"displaylogo": False}


def _selected(value: object) -> dict[str, str] | None:
    """The ``share-selected`` store as ``on_select`` writes it (a crafted one is a 400)."""
    sel = inputs.opt_dict(value, "selected run")
    if not sel:
        return None
    inst = inputs.opt_str(sel.get("instrument"), "selected instrument")
    run = inputs.opt_str(sel.get("run_id"), "selected run")
    if inst is None or run is None:
        raise inputs.BadInput("a selected run needs an instrument and a run_id")
    return {"instrument": inst, "run_id": run}


def build_share_layout(share_dir: Path, refresh_ms: int) -> html.Div:
    return html.Div(
        id="root",
        children=[
            dcc.Interval(id="share-tick", interval=refresh_ms, n_intervals=0),
            dcc.Store(id="share-version"),
            dcc.Store(id="share-selected"),
            html.Header(
                className="topbar",
                children=[
                    html.Span("asnmon · all instruments", className="brand"),
                    html.Span(f"shared folder: {share_dir.name or share_dir}"),
                    html.Span("read-only", className="mode-tag"),
                ],
            ),
            html.Div(
                id="share-status",
                role="status",
                style={"fontSize": "20px", "fontWeight": 700, "margin": "6px 0"},
            ),
            html.Section(
                id="share-cards",
                style={
                    "display": "grid",
                    "gridTemplateColumns": "repeat(auto-fit, minmax(560px, 1fr))",
                    "gap": "12px",
                    "marginBottom": "12px",
                },
            ),
            html.Section(
                className="table-pane",
                children=[
                    html.H2("Runs, newest first (click one)", className="pane-title"),
                    html.Div(id="share-runs"),
                ],
            ),
            html.Section(
                className="run-plots",
                style={"marginTop": "12px"},
                children=[
                    dcc.Graph(id="share-is-plot", className="run-plot", config=RUN_PLOT_CONFIG),
                    dcc.Graph(id="share-asn-plot", className="run-plot", config=RUN_PLOT_CONFIG),
                ],
            ),
        ],
    )


def create_share_app(share_dir: Path, assay: Assay, *, refresh_ms: int = 5000) -> dash.Dash:
    """The site-wide view over ``share_dir``; serve it with ``dashboard.server.serve``."""
    share_dir = Path(share_dir)
    cache = ShareCache(share_dir)
    app = dash.Dash(
        __name__,
        title="asnmon — all instruments",
        update_title=None,
        suppress_callback_exceptions=True,
    )
    app.layout = build_share_layout(share_dir, refresh_ms)
    app.share_cache = cache  # type: ignore[attr-defined]  # for tests
    inputs.protect(app, max_bytes=MAX_REQUEST_KB * 1024)  # read-only: no writes, no token

    @app.server.route("/healthz")
    def healthz() -> Any:
        import flask

        state = cache.get()
        body = {
            "share": state.signature is not None,
            "files": len(state.signature or ()),
            "skipped": list(state.skipped),
        }
        return flask.jsonify(body), 200 if body["share"] else 503

    @app.callback(
        Output("share-version", "data"),
        Input("share-tick", "n_intervals"),
        State("share-version", "data"),
    )
    def on_tick(_n: int, seen: str | None) -> str:
        seen = inputs.opt_str(seen, "version")
        version = cache.get().version
        if version == seen:
            raise PreventUpdate
        return version

    @app.callback(
        Output("share-status", "children"),
        Output("share-cards", "children"),
        Output("share-runs", "children"),
        Input("share-version", "data"),
        Input("share-selected", "data"),
    )
    def on_render(_version: Any, selected: Any) -> tuple[Any, ...]:
        selected = _selected(selected)
        state = cache.get()
        summaries = run_summaries(state.results, state.runs)
        return (
            folder_message(share_dir, state),
            instrument_cards(summaries),
            runs_table(run_rows(summaries), selected),
        )

    @app.callback(
        Output("share-selected", "data"),
        Input({"type": "share-run", "instrument": ALL, "run": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def on_select(_clicks: list[int | None]) -> dict[str, str]:
        # Re-rendered rows arrive with n_clicks 0: only a real click selects.
        if not any(t.get("value") for t in ctx.triggered):
            raise PreventUpdate
        tid = ctx.triggered_id
        if not isinstance(tid, Mapping):
            raise PreventUpdate
        return {
            "instrument": str(inputs.opt_str(tid["instrument"], "instrument")),
            "run_id": str(inputs.opt_str(tid["run"], "run")),
        }

    @app.callback(
        Output("share-is-plot", "figure"),
        Output("share-asn-plot", "figure"),
        Input("share-version", "data"),
        Input("share-selected", "data"),
    )
    def on_plots(_version: Any, selected: Any) -> tuple[Any, Any]:
        return run_plots(cache.get().results, _selected(selected), assay)

    return app
