"""All instruments side by side, read-only, from the shared Parquet folder.

Each monitor owns its DuckDB file, so a site-wide view cannot open them; it
reads what the monitors export (``asnmon.share.write_share``) instead. The
folder may sit on a slow network share, so each tick only stats it and a file
is re-read only when its mtime or size moved. Files are replaced atomically,
but a reader can still catch one mid-replace over SMB: such a file is skipped,
named on the page, and retried on the next tick rather than breaking the page.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dash
import polars as pl
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from asnmon.assay import Assay
from asnmon.share import RUNS_SUFFIX
from dashboard import figures, inputs, style
from dashboard.guard import MAX_REQUEST_KB
from dashboard.tables import _clock

log = logging.getLogger("asnmon.dashboard.share")

# The share keeps flag codes, not severities. These codes are raised as FAIL
# (CARRYOVER and SATURATION only sometimes: counted, because a wall display
# should err towards sending someone to look).
FAIL_CODES = frozenset(
    {
        "NO_PEAK",
        "IS_LOW",
        "IS_HIGH",
        "SATURATION",
        "CARRYOVER",
        "QC_FAIL",
        "CAL_FAIL",
        "RUN_FAIL",
        "READ_ERROR",
        "TRACE_INVALID",
        "WINDOW_NOT_COVERED",
        "CONVERT_ERROR",
        "INCOMPLETE",
        "ERROR",
        "WESTGARD_1_3S",
        "WESTGARD_2_2S",
        "WESTGARD_R_4S",
        "WESTGARD_4_1S",
        "WESTGARD_10X",
    }
)
RUN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("instrument", "Instrument"),
    ("run", "Run"),
    ("verdict", "Verdict"),
    ("injections", "Injections"),
    ("flagged", "Flagged injections"),
    ("updated", "Last update"),
)
GRAPH_CONFIG = {"displaylogo": False}
FileKey = tuple[str, int, int]  # name, mtime_ns, size


# ---------------------------------------------------------------- reading the folder


def folder_signature(share_dir: Path) -> tuple[FileKey, ...] | None:
    """(name, mtime_ns, size) of every visible Parquet file; None when unreachable."""
    try:
        entries = []
        for p in share_dir.iterdir():
            if p.name.startswith(".") or not p.name.endswith(".parquet"):
                continue  # temp files of a writer in progress
            try:
                st = p.stat()
            except OSError:  # replaced or removed between listing and stat
                continue
            entries.append((p.name, st.st_mtime_ns, st.st_size))
    except OSError:
        return None
    return tuple(sorted(entries))


@dataclass(frozen=True, slots=True)
class ShareState:
    """One consistent reading of the folder."""

    signature: tuple[FileKey, ...] | None
    results: pl.DataFrame
    runs: pl.DataFrame
    skipped: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        raw = repr((self.signature, self.skipped)).encode()
        return hashlib.sha1(raw, usedforsecurity=False).hexdigest()[:16]


@dataclass(slots=True)
class ShareCache:
    """Parsed frames per file, re-read only when the file's (mtime, size) changed."""

    share_dir: Path
    _files: dict[str, tuple[FileKey, pl.DataFrame]] = field(default_factory=dict)
    _state: ShareState | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> ShareState:
        """The current state; the folder is only stat'ed unless something moved."""
        sig = folder_signature(self.share_dir)
        with self._lock:
            st = self._state
            if st is not None and st.signature == sig and not st.skipped:
                return st
            self._state = self._load(sig)
            return self._state

    def _load(self, sig: tuple[FileKey, ...] | None) -> ShareState:
        if sig is None:
            self._files.clear()
            return ShareState(None, pl.DataFrame(), pl.DataFrame())
        fresh: dict[str, tuple[FileKey, pl.DataFrame]] = {}
        skipped: list[str] = []
        for key in sig:
            cached = self._files.get(key[0])
            if cached is not None and cached[0] == key:
                fresh[key[0]] = cached
                continue
            try:
                fresh[key[0]] = (key, pl.read_parquet(self.share_dir / key[0]))
            except (OSError, pl.exceptions.PolarsError) as exc:
                log.info("skipping %s for now: %s", key[0], exc)
                skipped.append(key[0])
        self._files = fresh
        results = [f for n, (_, f) in fresh.items() if not n.endswith(RUNS_SUFFIX)]
        runs = [f for n, (_, f) in fresh.items() if n.endswith(RUNS_SUFFIX)]
        return ShareState(sig, _concat(results), _concat(runs), tuple(skipped))


def _concat(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def folder_message(share_dir: Path, state: ShareState) -> str:
    """The plain sentence under the title; empty when all is well."""
    if state.signature is None:
        return (
            f"✖ The shared folder {share_dir} cannot be reached (missing, unmounted or no "
            "permission). Retrying."
        )
    parts = []
    if state.results.is_empty() and state.runs.is_empty():
        parts.append(
            f"No runs in {share_dir} yet: each monitor exports here every few minutes "
            "([share] share_dir in its settings)."
        )
    if state.skipped:
        parts.append(
            f"▲ Skipped {len(state.skipped)} file(s) being rewritten, retried next refresh: "
            + ", ".join(state.skipped)
        )
    return " ".join(parts)


# ---------------------------------------------------------------- summaries


def _fail_count(codes: str | None) -> int:
    return sum(1 for c in (codes or "").split(";") if c in FAIL_CODES)


def run_summaries(results: pl.DataFrame, runs: pl.DataFrame) -> list[dict[str, Any]]:
    """One dict per (instrument, run), newest first: what the cards and table show."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if not runs.is_empty() and {"instrument", "run_id"} <= set(runs.columns):
        for r in runs.iter_rows(named=True):
            out[(str(r["instrument"]), str(r["run_id"]))] = {
                "instrument": str(r["instrument"]),
                "run_id": str(r["run_id"]),
                "name": r.get("name") or r["run_id"],
                "verdict": r.get("verdict") or "pending",
                "reason": r.get("verdict_reason") or "",
                "injections": int(r.get("injections") or 0),
                "planned": r.get("planned"),
                "created": str(r.get("created_at") or ""),
                "updated": str(r.get("exported_at") or ""),
            }
    if not results.is_empty() and {"instrument", "run_id"} <= set(results.columns):
        order = "injection_id" if "injection_id" in results.columns else "acquired_at"
        for (inst, rid), part in results.sort(order).group_by(
            ["instrument", "run_id"], maintain_order=True
        ):
            codes = part["flags"].to_list() if "flags" in part.columns else []
            row = out.setdefault(
                (str(inst), str(rid)),
                {
                    "instrument": str(inst),
                    "run_id": str(rid),
                    "name": str(rid),
                    "verdict": "pending",
                    "reason": "no runs table exported yet",
                    "injections": part.height,
                    "planned": None,
                    "created": "",
                    "updated": "",
                },
            )
            acquired = [a for a in part["acquired_at"].to_list() if a] if part.height else []
            row["last_injection"] = str(acquired[-1]) if acquired else ""
            row["flagged"] = sum(1 for c in codes if c)
            row["fails"] = sum(_fail_count(c) for c in codes)
            if not row["injections"]:
                row["injections"] = part.height
            if not row["created"]:
                row["created"] = row["last_injection"]
            if not row["updated"] and "ingested_at" in part.columns:
                row["updated"] = str(part["ingested_at"].cast(pl.String).max() or "")
    rows = list(out.values())
    for r in rows:
        r.setdefault("last_injection", "")
        r.setdefault("flagged", 0)
        r.setdefault("fails", 0)
    rows.sort(key=lambda r: (r["created"], r["last_injection"]), reverse=True)
    return rows


def newest_per_instrument(summaries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Each instrument's newest run (summaries come newest first), instruments by name."""
    seen: dict[str, Mapping[str, Any]] = {}
    for s in summaries:
        seen.setdefault(s["instrument"], s)
    return [seen[k] for k in sorted(seen)]


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
                            _stat("Last injection", _clock(s.get("last_injection")) or "—"),
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


# ---------------------------------------------------------------- the app


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
                    dcc.Graph(id="share-is-plot", className="run-plot", config=GRAPH_CONFIG),
                    dcc.Graph(id="share-asn-plot", className="run-plot", config=GRAPH_CONFIG),
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
