"""The Dash app: ``create_app`` wires thin callbacks to ``Views`` (queries + builders).

Live updates: ONE ``dcc.Interval`` polls ``Store.last_change()`` (one tiny
query); when nothing changed the tick stops there (PreventUpdate) and nothing
redraws. When something did, the views that depend on it refresh, new run
points are appended with ``extendData`` and ``uirevision`` keeps any zoom.
What each callback computes lives in ``dashboard.views.Views``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import dash
from dash import ALL, Input, Output, State, ctx, html
from dash.exceptions import PreventUpdate
from werkzeug.http import parse_cookie

from asnmon.assay import Assay
from asnmon.store import Store
from dashboard import inputs, layout, signoff
from dashboard.auth import Auth
from dashboard.guard import MAX_REQUEST_KB
from dashboard.inputs import BadInput
from dashboard.shared import TickFastPath
from dashboard.views import REDRAW_KINDS, Health, Views, health_body

__all__ = ["REDRAW_KINDS", "Health", "Views", "create_app", "health_body"]

log = logging.getLogger("asnmon.dashboard")

PAGE_SIZE = 15
# Callbacks that change data: they need the page's session token (dashboard.inputs).
WRITES = frozenset({"ack-result.children"}) | signoff.WRITES
TAB_VALUES = frozenset(v for v, _ in layout.TABS)
# The page's AudioContext: window.__asnmonAudio() in assets/asnmon.js.
BEEP_JS = """
function(count, sound, prev) {
    const last = window.__asnmonFails;
    window.__asnmonFails = count;
    if (!sound || sound.length === 0 || last === undefined || !(count > last)) {
        return window.dash_clientside.no_update;
    }
    try {
        const ac = window.__asnmonAudio();
        const o = ac.createOscillator(); const g = ac.createGain();
        o.type = "square"; o.frequency.value = 880; g.gain.value = 0.2;
        o.connect(g); g.connect(ac.destination); o.start(); o.stop(ac.currentTime + 0.6);
    } catch (e) {}
    return "beep " + count;
}
"""
SOUND_JS = """
function(sound) {
    const on = !!(sound && sound.length);
    if (on) {
        const ac = window.__asnmonAudio && window.__asnmonAudio();
        if (!ac || ac.state !== "running") {
            document.addEventListener("click", () => window.__asnmonAudio(), {once: true});
            return "sound on: click anywhere once to let the browser play it";
        }
        return "sound on";
    }
    return "";
}
"""
KIOSK_JS = """
function(search, kioskDefault) {
    const q = search || "";
    if (/(^|[?&])kiosk=(0|false|no)/.test(q)) { return ""; }
    const on = kioskDefault || /(^|[?&])kiosk=(1|true|yes)/.test(q);
    return on ? "kiosk" : "";
}
"""


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
    idle_minutes: float = 30.0,
    approver_not_reviewer: bool = True,
) -> dash.Dash:
    """The dashboard over ``store``; serve it with ``dashboard.server.serve``.

    ``guide``: ``runs``, ``start``, ``end`` of the Westgard guide set, as in the settings.
    ``shared_views``: one change counter and one computation of each view per change
    for all open pages (``dashboard.shared``); False only to measure without it.
    ``health``: the live monitor's ``Monitor.health`` (for ``/healthz`` and the banner).
    ``idle_minutes``, ``approver_not_reviewer``: the ``[review]`` settings (log-in, sign-off).
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
    auth = Auth(store, idle_minutes=idle_minutes, cookie=cookie.replace("token", "session"))
    auth.install(app)
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
    app.auth = auth  # type: ignore[attr-defined]
    signoff.register(
        app,
        store,
        auth,
        lambda run_id: views.snapshot(run_id).run_id,
        approver_not_reviewer=approver_not_reviewer,
    )

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
        Input("show-acked", "value"),
    )
    def on_tabs(
        _changed: Any, run_id: str | None, tab: str, root_class: str | None, show: Any
    ) -> Any:
        run_id = inputs.opt_str(run_id, "run")
        tab = inputs.choice(tab, "tab", TAB_VALUES)
        show_acked = bool(inputs.str_list(show, "show acknowledged"))
        if "kiosk" in (inputs.opt_str(root_class, "class") or ""):
            raise PreventUpdate  # kiosk shows none of these: spare the queries
        return views.shared(
            "tabs", (run_id, tab, show_acked), lambda: tab_outputs(run_id, tab, show_acked)
        )

    def tab_outputs(run_id: str | None, tab: str, show_acked: bool) -> Any:
        nu = dash.no_update
        if tab == "flags":
            return views.flag_cards(run_id, show_acked), nu, nu, nu, nu
        if tab == "calibration":
            fig, versions = views.calibration(run_id)
            return nu, fig, versions, nu, nu
        if tab == "qc":
            return nu, nu, nu, views.levey_jennings(run_id), nu
        if tab == "pools":
            return nu, nu, nu, nu, views.pools(run_id)
        return nu, nu, nu, nu, nu  # the sign-off tab has its own callbacks

    @app.callback(
        Output("flag-summary", "children"),
        Output("tab-flags", "label"),
        Input("changed", "data"),
        Input("run", "value"),
    )
    def on_flag_summary(_changed: Any, run_id: str | None) -> tuple[str, str]:
        run_id = inputs.opt_str(run_id, "run")
        return views.shared("flag-summary", run_id, lambda: views.flag_summary(run_id))

    @app.callback(
        Output("ack-result", "children"),
        Input({"type": "ack", "flag": ALL}, "n_clicks"),
        State("ack-comment", "value"),
        prevent_initial_call=True,
    )
    def on_ack(clicks: list[int | None], comment: str | None) -> Any:
        trig = ctx.triggered_id
        if not isinstance(trig, dict) or not any(inputs.clicks(clicks, "clicks")):
            raise PreventUpdate
        # a re-rendered list fires with n_clicks 0: only a real click acknowledges
        value = next((t["value"] for t in ctx.triggered if t["prop_id"].startswith("{")), None)
        if not value:
            raise PreventUpdate
        flag_id = inputs.positive_int(trig["flag"], "flag id")
        comment = inputs.opt_str(comment, "comment", inputs.MAX_COMMENT)
        # done as the logged-in person (or the bench without accounts), never a typed name
        return html.Span(views.acknowledge(flag_id, auth.who(), comment))

    app.clientside_callback(
        KIOSK_JS,
        Output("root", "className"),
        Input("url", "search"),
        State("kiosk-default", "data"),
    )
    app.clientside_callback(SOUND_JS, Output("sound-note", "children"), Input("sound", "value"))
    app.clientside_callback(
        BEEP_JS,
        Output("beep", "children"),
        Input("fail-count", "data"),
        State("sound", "value"),
        State("beep", "children"),
    )
    return app
