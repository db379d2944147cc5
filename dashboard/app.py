"""The Dash app: ``create_app`` wires thin callbacks to ``Views`` (queries + builders).

Live updates: ONE ``dcc.Interval`` polls ``Store.last_change()`` (one tiny
query); when nothing changed the tick stops there (PreventUpdate) and nothing
redraws. When something did, the views that depend on it refresh, new run
points are appended with ``extendData`` and ``uirevision`` keeps any zoom.
``Views`` holds no Dash state, so the benchmark times exactly what a callback runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import dash
import polars as pl
from dash import ALL, Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate
from werkzeug.http import parse_cookie

from asnmon.assay import Assay
from asnmon.errors import StoreError
from asnmon.store import STORE_FAILURES, Store
from asnmon.westgard import GuideSet, QcPoint, guides_for
from dashboard import chromatogram, figures, inputs, layout, tables
from dashboard.data import RunCache, Snapshot
from dashboard.guard import MAX_REQUEST_KB
from dashboard.inputs import BadInput
from dashboard.shared import ChangeCounter, PerChange, TickFastPath

log = logging.getLogger("asnmon.dashboard")

Health = Callable[[], Mapping[str, Any]]  # the live monitor's health (Monitor.health)

# Kinds of change after which stored concentrations differ: redraw, do not append.
PAGE_SIZE = 15
REDRAW_KINDS = frozenset({"calibration", "superseded", "run"})
# Callbacks that change data: they need the page's session token (dashboard.inputs).
WRITES = frozenset({"ack-result.children"})
TAB_VALUES = frozenset(v for v, _ in layout.TABS)
T = TypeVar("T")
BEEP_JS = """
function(count, sound, prev) {
    const last = window.__asnmonFails;
    window.__asnmonFails = count;
    if (!sound || sound.length === 0 || last === undefined || !(count > last)) {
        return window.dash_clientside.no_update;
    }
    try {
        const ac = new (window.AudioContext || window.webkitAudioContext)();
        const o = ac.createOscillator(); const g = ac.createGain();
        o.type = "square"; o.frequency.value = 880; g.gain.value = 0.2;
        o.connect(g); g.connect(ac.destination); o.start(); o.stop(ac.currentTime + 0.6);
    } catch (e) {}
    return "beep " + count;
}
"""
KIOSK_JS = """
function(search, kioskDefault) {
    const on = kioskDefault || /(^|[?&])kiosk=(1|true|yes)/.test(search || "");
    return on ? "kiosk" : "";
}
"""


class Views:
    """What each callback computes, as plain methods over the store (no Dash state)."""

    def __init__(
        self,
        store: Store,
        assay: Assay,
        guide: Mapping[str, Any] | None = None,
        *,
        shared: bool = True,
        health: Health | None = None,
    ) -> None:
        self.store = store
        self.assay = assay
        self.health = health  # None: a read-only review, no live monitor
        self.cache = RunCache(store)
        # shared=False: every request queries and computes for itself (the benchmark's
        # "before"); True: one change counter and one computation per change for all pages
        self.counter = ChangeCounter(store) if shared else None
        self.per_change = PerChange(self.counter) if self.counter is not None else None
        # the Westgard guide set as the monitor's settings choose it (runs or dates)
        self.guide = {k: v for k, v in (guide or {}).items() if v}

    # ---------------------------------------------------------------- tick

    def seq(self) -> int:
        return self.counter.value() if self.counter is not None else self.store.last_change()

    def shared(self, name: str, args: object, compute: Callable[[], T]) -> T:
        """``compute()``, once per change counter and ``args`` for all pages when shared."""
        if self.per_change is None or self.counter is None:
            return compute()
        try:
            seq = self.counter.value()
        except STORE_FAILURES:
            return compute()  # nothing to share while the database does not answer
        return self.per_change.get(name, args, compute, seq)

    def tick(self, seen: dict[str, Any] | None) -> dict[str, Any] | None:
        """None when nothing changed since ``seen`` (the cheap path, every second).

        A change of the monitor's problems counts too, and a database that does not
        answer is a change (seq -1): the banner must say so, not freeze.
        """
        problems = self.problems()
        try:
            seq = self.seq()
        except STORE_FAILURES:
            seq = -1
        prev = int(seen["seq"]) if seen else -1
        if seq == prev and (seen or {}).get("problems", []) == problems:
            return None
        kinds: list[str] = []
        if prev >= 0 and seq >= 0:
            try:
                kinds = self.shared(
                    "kinds",
                    prev,
                    lambda: sorted(set(self.store.changes_since(prev)["kind"].to_list())),
                )
            except STORE_FAILURES:
                kinds = []
        return {"seq": seq, "prev": prev, "kinds": kinds, "problems": problems}

    def problems(self) -> list[str]:
        """The live monitor's own problems (database, worker, worklist); none in a review."""
        if self.health is None:
            return []
        return [str(p) for p in self.health().get("problems", ())]

    def snapshot(self, run_id: str | None) -> Snapshot:
        return self.cache.get(run_id)

    # ---------------------------------------------------------------- banner

    def banner(self, run_id: str | None) -> tuple[list[Any], int, str]:
        problems = self.problems()
        try:
            children, fails, title = self._banner(run_id, problems)
        except STORE_FAILURES as exc:  # the database does not answer: say that, loudly
            problems = problems or [f"DATABASE PROBLEM: the dashboard cannot read it ({exc})"]
            return layout.problem_banner(problems), 0, f"{_word(problems)} — asnmon"
        return children, fails, (f"{_word(problems)} — asnmon" if problems else title)

    def _banner(self, run_id: str | None, problems: list[str]) -> tuple[list[Any], int, str]:
        snap = self.snapshot(run_id)
        fails = (
            int(snap.flags.filter(pl.col("severity") == "fail").height)
            if not snap.flags.is_empty()
            else 0
        )
        last = None
        if not snap.results.is_empty():
            row = snap.results.sort("injection_id").row(-1, named=True)
            last = f"{tables._clock(row['acquired_at'])}  {row['file']}"
        try:
            status = self.store.status()
        except StoreError:
            status = {}
        alarms: list[str] = []
        if fails:
            open_fails = snap.flags.filter((pl.col("severity") == "fail") & (pl.col("acks") == 0))
            alarms = [
                f"{c}" + (f" ({f})" if f else "")
                for c, f in open_fails.select("code", "file").iter_rows()
            ]
        children = layout.banner(
            snap.run, status, fails, last_injection=last, alarms=alarms, problems=problems
        )
        verdict = str((snap.run or {}).get("verdict") or "waiting").upper()
        return children, fails, f"{verdict} — asnmon"

    # ---------------------------------------------------------------- run plots

    def run_plots(
        self,
        run_id: str | None,
        meta: dict[str, Any] | None,
        changed: dict[str, Any] | None,
        *,
        kiosk: bool = False,
    ) -> dict[str, Any]:
        """Either whole figures or ``extendData`` for the new injections (keys say which)."""
        snap = self.snapshot(run_id)
        height = None if kiosk else 380  # kiosk: the CSS gives the graphs the screen
        series = figures.run_series(snap.results, snap.reference)
        drift = (
            snap.flags.filter(pl.col("code") == "IS_DRIFT") if not snap.flags.is_empty() else None
        )
        n_drift = drift.height if drift is not None else 0
        last_id = int(series["injection_id"].max()) if not series.is_empty() else 0  # type: ignore[arg-type]
        new_meta = {
            "run": snap.run_id,
            "last_id": last_id,
            "ref": snap.reference,
            "drift": n_drift,
            "kiosk": kiosk,
        }
        kinds = set((changed or {}).get("kinds") or [])
        full_asn = (
            meta is None
            or meta.get("run") != snap.run_id
            or meta.get("kiosk") != kiosk
            or bool(kinds & REDRAW_KINDS)
            or not kinds
            or last_id < int(meta.get("last_id") or 0)
        )
        old_ref = (meta or {}).get("ref")
        ref_moved = (
            snap.reference is None or not old_ref or abs(snap.reference - old_ref) / old_ref > 0.005
        )
        full_is = full_asn or ref_moved or n_drift != (meta or {}).get("drift")
        if not full_is:
            new_meta["ref"] = old_ref  # keep the scale the plotted points use
        out: dict[str, Any] = {"meta": new_meta}
        uirev = f"{snap.run_id}"
        if full_is:
            out["is_figure"] = figures.is_figure(
                series, self.assay, drift, uirevision=uirev, height=height
            )
        if full_asn:
            out["asn_figure"] = figures.asn_figure(
                series, self.assay, uirevision=uirev, height=height
            )
        old_last = int((meta or {}).get("last_id") or 0)
        new = series.filter(pl.col("injection_id") > old_last)
        if not new.is_empty():
            if not full_is:
                if old_ref != snap.reference:
                    new = figures.run_series(snap.results, old_ref).filter(
                        pl.col("injection_id") > old_last
                    )
                out["is_extend"] = figures.run_extension(new, "is_pct")
            if not full_asn:
                out["asn_extend"] = figures.run_extension(new, "conc")
        return out

    # ---------------------------------------------------------------- table

    def table(
        self,
        run_id: str | None,
        types: Sequence[str] | None,
        codes: Sequence[str] | None,
        page: int,
        page_size: int,
    ) -> tuple[list[dict[str, Any]], int, int, list[str]]:
        """One page of rows, the page shown (clamped), the page count, flag codes present."""
        snap = self.snapshot(run_id)
        rows = tables.injection_rows(
            snap.results,
            snap.flags,
            lloq=self.assay.calibration.lloq,
            types=types or (),
            codes=codes or (),
        )
        pages = max(1, -(-len(rows) // page_size))
        page = min(max(page or 0, 0), pages - 1)
        return (
            rows[page * page_size : (page + 1) * page_size],
            page,
            pages,
            tables.flag_codes(snap.flags),
        )

    # ---------------------------------------------------------------- chromatograms

    def reference_calibrator(self, run_id: str | None) -> int | None:
        """The mid-level standard of the newest accepted curve (else the newest curve)."""
        if run_id is None:
            return None
        cals = self.store.calibrations(run_id)
        if cals.is_empty():
            return None
        accepted = cals.filter(pl.col("accepted"))
        cal = (accepted if not accepted.is_empty() else cals).sort("version").row(-1, named=True)
        pts = self.store.calibration_points(int(cal["calibration_id"]))
        pts = pts.filter(
            ~pl.col("excluded").fill_null(False) & pl.col("injection_id").is_not_null()
        ).sort("nominal")
        if pts.is_empty():
            return None
        return int(pts["injection_id"][pts.height // 2])

    def chromatograms(self, injection_id: int | None, run_id: str | None) -> Any:
        if injection_id is None:
            return chromatogram.chromatogram_figure([])
        snap = self.snapshot(run_id)
        label = _label(snap.results, injection_id)

        def flags_of(iid: int) -> pl.DataFrame | None:
            f = snap.flags
            return None if f.is_empty() else f.filter(pl.col("injection_id") == iid)

        panels: list[tuple[Any, ...]] = [
            (
                label,
                self.store.traces(injection_id),
                self.store.peaks(injection_id),
                flags_of(injection_id),
            )
        ]
        ref = self.reference_calibrator(snap.run_id)
        if ref is not None and ref != injection_id:
            panels.append(
                (
                    "reference " + _label(snap.results, ref),
                    self.store.traces(ref),
                    self.store.peaks(ref),
                    flags_of(ref),
                )
            )
        return chromatogram.chromatogram_figure(panels)

    # ---------------------------------------------------------------- tabs

    def flag_cards(self, run_id: str | None) -> list[Any]:
        snap = self.snapshot(run_id)
        return layout.flag_cards(tables.open_flags(snap.flags), read_only=self.store.read_only)

    def calibration(self, run_id: str | None) -> tuple[Any, Any]:
        snap = self.snapshot(run_id)
        if snap.run_id is None:
            return figures.calibration_figure(None, pl.DataFrame(), self.assay.unit), None
        cals = self.store.calibrations(snap.run_id)
        if cals.is_empty():
            return figures.calibration_figure(None, pl.DataFrame(), self.assay.unit), (
                layout.versions_table([])
            )
        accepted = cals.filter(pl.col("accepted"))
        active = (accepted if not accepted.is_empty() else cals).sort("version").row(-1, named=True)
        points = self.store.calibration_points(int(active["calibration_id"]))
        rows = list(cals.sort("version", descending=True).iter_rows(named=True))
        return (
            figures.calibration_figure(active, points, self.assay.unit),
            layout.versions_table(rows),
        )

    def levey_jennings(self, run_id: str | None) -> Any:
        snap = self.snapshot(run_id)
        guides: dict[str, GuideSet] = {}
        if snap.run_id is not None:
            points = [QcPoint(*row) for row in self.store.qc_values()]
            guides = guides_for(points, snap.run_id, **self.guide)
            # the run judged against itself only: a within-run chart, titled as such
            if not self.guide and not any(p.run_id != snap.run_id for p in points):
                guides = {}
        return figures.levey_jennings_figure(snap.results, snap.flags, guides)

    def run_options(self) -> list[dict[str, Any]]:
        return [
            {"label": f"{r['name'] or r['run_id']} ({r['injections']} inj.)", "value": r["run_id"]}
            for r in self.store.runs().iter_rows(named=True)
        ]

    def pools(self, run_id: str | None) -> Any:
        return figures.pools_figure(self.snapshot(run_id).results, self.assay)

    def acknowledge(self, flag_id: int, name: str | None, comment: str | None) -> str:
        if self.store.read_only:
            return (
                "✖ Not recorded: this is a read-only review of a finished database "
                "(asnmon dashboard --db). Acknowledge flags in the running monitor."
            )
        if not (name or "").strip():
            return "▲ Enter your name first: an acknowledgement records who looked."
        try:
            self.store.acknowledge(flag_id, name or "", comment or "")
        except StoreError as err:
            if self.store.read_only or "read-only" in str(err).lower():
                return "✖ Not recorded: the database is open read-only for review."
            return f"✖ Not recorded: {err}"
        return f"✔ Flag {flag_id} acknowledged by {(name or '').strip()}."


def _word(problems: Sequence[str]) -> str:
    return problems[0].split(":", 1)[0].split(" in run ", 1)[0].strip()


def health_body(store: Store, health: Health | None) -> dict[str, Any]:
    """``/healthz``: the live monitor's health and whether the database answers a read.

    ``ok`` False (HTTP 503) when the database fails or the worker is dead or stuck.
    """
    body: dict[str, Any] = {"ok": True}
    if health is not None:
        body.update(health())
    try:
        status = store.status()
        last_change = store.last_change()
    except STORE_FAILURES as exc:
        body.update(ok=False, database=False, error=f"the database does not answer: {exc}")
        return body
    if health is None:
        body.update(
            database=True,
            watcher=status.get("watcher"),
            last_injection=status.get("last_injection"),
            queue=status.get("queue"),
            last_error=status.get("last_error"),
        )
    body.update(last_change=last_change, read_only=store.read_only)
    body["ok"] = bool(body["ok"] and body.get("database", True))
    return body


def _changed(value: object) -> dict[str, Any] | None:
    """The ``changed`` store as the tick writes it: seq, prev, kinds."""
    data = inputs.opt_dict(value, "changed")
    if data is None:
        return None
    inputs.opt_int(data.get("seq"), "changed.seq", minimum=-1)
    inputs.opt_int(data.get("prev"), "changed.prev", minimum=-1)
    if data.get("seq") is None:
        raise BadInput("changed.seq is missing")
    return {**data, "kinds": inputs.str_list(data.get("kinds"), "changed.kinds")}


def _plot_meta(value: object) -> dict[str, Any] | None:
    """The ``plot-meta`` store as ``Views.run_plots`` writes it."""
    meta = inputs.opt_dict(value, "plot-meta")
    if meta is None:
        return None
    inputs.opt_str(meta.get("run"), "plot-meta.run")
    inputs.opt_int(meta.get("last_id"), "plot-meta.last_id")
    ref = inputs.opt_number(meta.get("ref"), "plot-meta.ref")
    inputs.opt_int(meta.get("drift"), "plot-meta.drift")
    return {**meta, "ref": ref}


def _label(results: pl.DataFrame, injection_id: int) -> str:
    if results.is_empty():
        return f"#{injection_id}"
    row = results.filter(pl.col("injection_id") == injection_id)
    if row.is_empty():
        return f"#{injection_id}"
    r = row.row(0, named=True)
    return f"{r['sample_id'] or r['file']}"


def create_app(
    store: Store,
    assay: Assay,
    *,
    kiosk: bool = False,
    sound: bool = False,
    refresh_ms: int = 1000,
    guide: Mapping[str, Any] | None = None,
    shared_views: bool = True,
    health: Health | None = None,
) -> dash.Dash:
    """The dashboard over ``store``; serve it with ``dashboard.server.serve``.

    ``guide``: ``runs``, ``start``, ``end`` of the Westgard guide set, as in the settings.
    ``shared_views``: one change counter and one computation of each view per change
    for all open pages (``dashboard.shared``); False only to measure without it.
    ``health``: the live monitor's ``Monitor.health`` (for ``/healthz`` and the banner).
    """
    views = Views(store, assay, guide, shared=shared_views, health=health)
    cookie = inputs.token_cookie_name(store.path.resolve())
    app = dash.Dash(
        __name__,
        title="asnmon",
        update_title=None,
        suppress_callback_exceptions=True,
        csrf_token_name=cookie,  # the renderer sends it back as X-CSRFToken
    )
    tokens = inputs.SessionTokens(cookie)
    inputs.protect(app, max_bytes=MAX_REQUEST_KB * 1024, writes=WRITES, tokens=tokens)
    if views.counter is not None:

        def is_page_tick(body: object, environ: dict[str, Any]) -> bool:
            try:
                inputs.check_callback_body(body, app.callback_map)
                _changed(body["state"][0]["value"])  # type: ignore[index]
            except BadInput:
                return False
            return tokens.valid(parse_cookie(environ.get("HTTP_COOKIE", "")).get(cookie))

        app.server.wsgi_app = TickFastPath(  # type: ignore[method-assign]
            app.server.wsgi_app,
            lambda seen: views.tick(seen) is None,
            output="changed.data",
            state="changed.data",
            valid=is_page_tick,
        )
    app.layout = layout.build_layout(
        kiosk=kiosk, sound=sound, refresh_ms=refresh_ms, read_only=store.read_only
    )
    app.views = views  # type: ignore[attr-defined]  # for the benchmark and tests

    @app.server.route("/healthz")
    def healthz() -> Any:
        import flask

        try:
            body = health_body(store, health)
        # The route answers JSON whatever fails: IT monitoring parses it, never a traceback.
        except Exception as exc:  # documented HTTP boundary
            log.exception("/healthz failed")
            body = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return flask.jsonify(body), 200 if body.get("ok") else 503

    @app.callback(Output("changed", "data"), Input("tick", "n_intervals"), State("changed", "data"))
    def on_tick(_n: int, seen: dict[str, Any] | None) -> dict[str, Any]:
        changed = views.tick(_changed(seen))
        if changed is None:
            raise PreventUpdate
        return changed

    @app.callback(
        Output("run", "options"),
        Input("changed", "data"),
        State("run", "options"),
    )
    def run_options(_changed: Any, current: Any) -> Any:
        options = views.shared("run-options", None, views.run_options)
        return dash.no_update if options == current else options

    @app.callback(
        Output("banner", "children"),
        Output("fail-count", "data"),
        Input("changed", "data"),
        Input("run", "value"),
    )
    def on_banner(_changed: Any, run_id: str | None) -> tuple[Any, int]:
        run_id = inputs.opt_str(run_id, "run")
        problems = views.problems()  # the monitor's own problems change without the database
        children, fails, _title = views.shared(
            "banner", (run_id, problems), lambda: views.banner(run_id)
        )
        return children, fails

    @app.callback(
        Output("is-plot", "figure"),
        Output("is-plot", "extendData"),
        Output("asn-plot", "figure"),
        Output("asn-plot", "extendData"),
        Output("plot-meta", "data"),
        Input("changed", "data"),
        Input("run", "value"),
        Input("root", "className"),
        State("plot-meta", "data"),
    )
    def on_run_plots(
        changed: Any, run_id: str | None, root_class: str | None, meta: Any
    ) -> tuple[Any, ...]:
        run_id = inputs.opt_str(run_id, "run")
        kiosk = "kiosk" in (inputs.opt_str(root_class, "class") or "")
        meta = None if ctx.triggered_id in ("run", "root") else _plot_meta(meta)
        seen = _changed(changed)
        out = views.shared(
            "run-plots",
            (run_id, meta, seen, kiosk),
            lambda: views.run_plots(run_id, meta, seen, kiosk=kiosk),
        )
        nu = dash.no_update
        if not any(k in out for k in ("is_figure", "asn_figure", "is_extend", "asn_extend")):
            raise PreventUpdate
        return (
            out.get("is_figure", nu),
            out.get("is_extend", nu),
            out.get("asn_figure", nu),
            out.get("asn_extend", nu),
            out["meta"],
        )

    @app.callback(
        Output("page", "data"),
        Input("page-newer", "n_clicks"),
        Input("page-older", "n_clicks"),
        Input("filter-type", "value"),
        Input("filter-flag", "value"),
        Input("run", "value"),
        State("page", "data"),
        prevent_initial_call=True,
    )
    def on_page(_newer: int, _older: int, _t: Any, _f: Any, _r: Any, page: int | None) -> int:
        page = inputs.opt_int(page, "page") or 0
        if ctx.triggered_id == "page-newer":
            return max(0, page - 1)
        if ctx.triggered_id == "page-older":
            return page + 1  # clamped by the table view
        return 0

    @app.callback(
        Output("injections", "children"),
        Output("page-label", "children"),
        Output("filter-flag", "options"),
        Input("changed", "data"),
        Input("run", "value"),
        Input("filter-type", "value"),
        Input("filter-flag", "value"),
        Input("page", "data"),
        Input("selected", "data"),
    )
    def on_table(
        _changed: Any,
        run_id: str | None,
        types: list[str] | None,
        codes: list[str] | None,
        page: int | None,
        selected: int | None,
    ) -> tuple[Any, str, Any]:
        args = (
            inputs.opt_str(run_id, "run"),
            inputs.str_list(types, "sample types"),
            inputs.str_list(codes, "flag codes"),
            inputs.opt_int(page, "page") or 0,
            inputs.opt_int(selected, "selected injection"),
        )

        def compute() -> tuple[Any, str, Any]:
            rows, page_no, pages, codes_seen = views.table(*args[:4], PAGE_SIZE)
            return (
                layout.injection_rows_table(rows, args[4]),
                f"page {page_no + 1} / {pages}",
                codes_seen,
            )

        return views.shared("table", args, compute)

    @app.callback(
        Output("selected", "data"),
        Input({"type": "inj-row", "injection": ALL}, "n_clicks"),
        Input("is-plot", "clickData"),
        Input("asn-plot", "clickData"),
        prevent_initial_call=True,
    )
    def on_select(row_clicks: list[int | None], is_click: Any, asn_click: Any) -> int:
        trig = ctx.triggered_id
        if isinstance(trig, dict):
            # a re-rendered table fires with n_clicks 0: only a real click selects
            inputs.clicks(row_clicks, "row clicks")
            if not any(t["value"] for t in ctx.triggered):
                raise PreventUpdate
            return inputs.positive_int(trig["injection"], "injection id")
        click = inputs.opt_dict(is_click if trig == "is-plot" else asn_click, "click")
        points = (click or {}).get("points")
        if isinstance(points, list) and points and isinstance(points[0], dict):
            cd = points[0].get("customdata")
            if cd is not None:
                value = cd[0] if isinstance(cd, list) and cd else cd
                return inputs.positive_int(value, "clicked injection id")
        raise PreventUpdate

    @app.callback(Output("chrom", "figure"), Input("selected", "data"), State("run", "value"))
    def on_chrom(injection_id: int | None, run_id: str | None) -> Any:
        args = (
            inputs.opt_int(injection_id, "injection id", minimum=1),
            inputs.opt_str(run_id, "run"),
        )
        return views.shared("chromatograms", args, lambda: views.chromatograms(*args))

    @app.callback(
        [Output(f"pane-{v}", "style") for v, _ in layout.TABS],
        Input("tabs", "value"),
    )
    def on_tab(tab: str) -> list[dict[str, str]]:
        # hidden, not display:none: Plotly cannot size a graph inside an undisplayed div
        tab = inputs.choice(tab, "tab", TAB_VALUES)
        hidden = {"height": "0", "overflow": "hidden", "visibility": "hidden", "padding": "0"}
        return [{} if v == tab else hidden for v, _ in layout.TABS]

    @app.callback(
        Output("flag-list", "children"),
        Output("cal-plot", "figure"),
        Output("cal-versions", "children"),
        Output("lj-plot", "figure"),
        Output("pools-plot", "figure"),
        Input("changed", "data"),
        Input("run", "value"),
        Input("tabs", "value"),
        Input("root", "className"),
    )
    def on_tabs(_changed: Any, run_id: str | None, tab: str, root_class: str | None) -> Any:
        run_id = inputs.opt_str(run_id, "run")
        tab = inputs.choice(tab, "tab", TAB_VALUES)
        if "kiosk" in (inputs.opt_str(root_class, "class") or ""):
            raise PreventUpdate  # kiosk shows none of these: spare the queries
        return views.shared("tabs", (run_id, tab), lambda: tab_outputs(run_id, tab))

    def tab_outputs(run_id: str | None, tab: str) -> Any:
        nu = dash.no_update
        if tab == "flags":
            return views.flag_cards(run_id), nu, nu, nu, nu
        if tab == "calibration":
            fig, versions = views.calibration(run_id)
            return nu, fig, versions, nu, nu
        if tab == "qc":
            return nu, nu, nu, views.levey_jennings(run_id), nu
        return nu, nu, nu, nu, views.pools(run_id)

    @app.callback(
        Output("ack-result", "children"),
        Input({"type": "ack", "flag": ALL}, "n_clicks"),
        State("ack-name", "value"),
        State("ack-comment", "value"),
        prevent_initial_call=True,
    )
    def on_ack(clicks: list[int | None], name: str | None, comment: str | None) -> Any:
        trig = ctx.triggered_id
        if not isinstance(trig, dict) or not any(inputs.clicks(clicks, "clicks")):
            raise PreventUpdate
        # a re-rendered list fires with n_clicks 0: only a real click acknowledges
        value = next((t["value"] for t in ctx.triggered if t["prop_id"].startswith("{")), None)
        if not value:
            raise PreventUpdate
        flag_id = inputs.positive_int(trig["flag"], "flag id")
        name = inputs.opt_str(name, "name", inputs.MAX_NAME)
        comment = inputs.opt_str(comment, "comment", inputs.MAX_COMMENT)
        return html.Span(views.acknowledge(flag_id, name, comment))

    app.clientside_callback(
        KIOSK_JS,
        Output("root", "className"),
        Input("url", "search"),
        State("kiosk-default", "data"),
    )
    app.clientside_callback(
        BEEP_JS,
        Output("beep", "children"),
        Input("fail-count", "data"),
        State("sound", "value"),
        State("beep", "children"),
    )
    return app
