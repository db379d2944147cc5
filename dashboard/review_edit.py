"""The review panel under the chromatograms: reintegrate, exclude, correct, link.

Layout builders are pure; ``register`` adds the callbacks to the app, each a
few lines over ``ReviewViews`` (queries and the core's review actions). Every
change is done as the person the dashboard knows (``who``: the logged-in
account, or the single bench without accounts) and is refused in words when
that person may not, when the run is approved (locked) or when the database
is open read-only. The chromatograms of the selected injection are drawn here
too, because a change must redraw them at once.
"""

from __future__ import annotations

import html as html_text
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from asnmon.review import EDITABLE_FIELDS
from asnmon.review_actions import (
    reasons,
)
from dashboard import inputs
from dashboard.chromatogram import plain
from dashboard.review_views import (
    FIELD_LABELS,
    Bench,
    ReviewViews,
    WhoLike,
    bench_who,
    describe,
)

__all__ = [
    "Bench",
    "ReviewViews",
    "WhoLike",
    "bench_who",
    "describe",
    "register",
    "review_panel",
]

# the callback output that changes data: it needs the page's session token
WRITES = frozenset({"rv-result.children"})
ACTIONS = ("rv-apply", "rv-revert", "rv-exclude", "rv-save", "rv-link-save")


# ---------------------------------------------------------------- layout


def _reason(id_: str, placeholder: str = "reason (required)") -> dcc.Dropdown:
    return dcc.Dropdown(id=id_, placeholder=placeholder, clearable=True, className="rv-reason")


def _comment(id_: str) -> dcc.Input:
    return dcc.Input(
        id=id_,
        type="text",
        placeholder="comment",
        maxLength=inputs.MAX_COMMENT,
        debounce=False,
        className="rv-comment",
    )


def review_panel(read_only: bool = False) -> html.Div:
    """Options for the view, and the forms for each kind of change."""
    disabled = {"disabled": True} if read_only else {}
    return html.Div(
        className="review-panel",
        children=[
            html.Div(
                className="rv-view",
                children=[
                    dcc.Checklist(
                        id="chrom-share-y",
                        options=[{"label": " same y scale as the reference", "value": "on"}],
                        value=[],
                        className="rv-check",
                    ),
                    dcc.Dropdown(
                        id="chrom-overlay",
                        multi=True,
                        placeholder="overlay other injections' traces…",
                        className="rv-overlay-pick",
                    ),
                ],
            ),
            dcc.Graph(
                id="chrom-overlay-plot",
                config={"displaylogo": False},
                style={"display": "none"},
            ),
            html.Div(id="rv-info", className="rv-info"),
            html.Details(
                open=True,
                className="rv-box",
                children=[
                    html.Summary("Reintegrate (drag across a panel, or type the times)"),
                    html.Div(
                        className="rv-row",
                        children=[
                            html.Label("start", htmlFor="rv-start"),
                            dcc.Input(
                                id="rv-start", type="number", step=0.001, className="rv-time"
                            ),
                            html.Label("end", htmlFor="rv-end"),
                            dcc.Input(id="rv-end", type="number", step=0.001, className="rv-time"),
                            html.Span("min", className="hint"),
                        ],
                    ),
                    html.Div(
                        className="rv-row",
                        children=[_reason("rv-reason"), _comment("rv-comment")],
                    ),
                    html.Div(
                        className="rv-row",
                        children=[
                            html.Button("Reintegrate", id="rv-apply", n_clicks=0, **disabled),
                            html.Button(
                                "Back to automatic", id="rv-revert", n_clicks=0, **disabled
                            ),
                        ],
                    ),
                ],
            ),
            html.Details(
                className="rv-box",
                children=[
                    html.Summary("Calibrator: exclude from / include in the curve"),
                    html.Div(
                        className="rv-row",
                        children=[_reason("rv-ex-reason"), _comment("rv-ex-comment")],
                    ),
                    html.Button("Exclude from the curve", id="rv-exclude", n_clicks=0, **disabled),
                ],
            ),
            html.Details(
                className="rv-box",
                children=[
                    html.Summary("Correct the batch table"),
                    html.Div(
                        className="rv-row",
                        children=[
                            dcc.Dropdown(
                                id="rv-field",
                                options=[
                                    {"label": FIELD_LABELS[f], "value": f} for f in EDITABLE_FIELDS
                                ],
                                value="dilution",
                                clearable=False,
                                className="rv-field",
                            ),
                            dcc.Input(
                                id="rv-value",
                                type="text",
                                placeholder="new value",
                                maxLength=inputs.MAX_NAME,
                                className="rv-value",
                            ),
                        ],
                    ),
                    html.Div(
                        className="rv-row",
                        children=[_reason("rv-ed-reason"), _comment("rv-ed-comment")],
                    ),
                    html.Button("Save the correction", id="rv-save", n_clicks=0, **disabled),
                    html.Div(
                        className="rv-row",
                        children=[
                            dcc.Dropdown(
                                id="rv-link",
                                placeholder="re-injection of… (original injection)",
                                className="rv-link",
                            ),
                            html.Button("Link", id="rv-link-save", n_clicks=0, **disabled),
                        ],
                    ),
                ],
            ),
            html.Div(id="rv-result", className="rv-result", role="status"),
        ],
    )


def info_block(info: Mapping[str, Any]) -> list[Any]:
    """The selected injection: what it is, its result, and every change made to it."""
    if not info:
        return [html.P("Select an injection to review it.", className="hint")]
    head = html.P(
        [
            html.Strong(info["label"]),
            f" · {info['sample_type']}",
            f" · level {info['level']}" if info.get("level") else "",
            f" · nominal {plain(info['nominal'])}" if info.get("nominal") is not None else "",
            f" · dilution {plain(info['dilution'])}",
            f" · matrix {info['matrix']}" if info.get("matrix") else "",
            " · result ",
            html.Strong(info["result"]),
        ]
    )
    lines: list[Any] = [head]
    if info.get("note"):
        lines.append(html.P("✎ " + info["note"], className="rv-note"))
    if info.get("error"):
        lines.append(html.P("✖ " + info["error"], className="rv-error"))
    edits: Sequence[Mapping[str, Any]] = info.get("edits", ())
    if edits:
        lines.append(
            html.Ul(
                className="rv-history",
                children=[
                    html.Li(
                        f"{e['when']} · {e['actor']} ({e['role']}): {e['what']} — {e['reason']}"
                    )
                    for e in edits
                ],
            )
        )
    return lines


# ---------------------------------------------------------------- callbacks


def register(
    app: dash.Dash,
    views: ReviewViews,
    who: Callable[[], WhoLike],
    shared: Callable[[str, object, Callable[[], Any]], Any] | None = None,
) -> None:
    """The review panel's and the chromatograms' callbacks; ``who``: the request's person."""
    assay = views.assay

    def once(name: str, args: object, compute: Callable[[], Any]) -> Any:
        return shared(name, args, compute) if shared is not None else compute()

    @app.callback(
        Output("chrom", "figure"),
        Input("selected", "data"),
        Input("changed", "data"),
        Input("chrom-share-y", "value"),
        State("run", "value"),
    )
    def on_chrom(injection_id: Any, changed: Any, share: Any, run_id: Any) -> Any:
        if ctx.triggered_id == "changed" and not _redraw(changed):
            raise PreventUpdate
        args = (
            inputs.opt_int(injection_id, "injection id", minimum=1),
            inputs.opt_str(run_id, "run"),
            bool(inputs.str_list(share, "options")),
        )
        return once(
            "chromatograms",
            args,
            lambda: views.chromatograms(args[0], args[1], share_y=args[2]),
        )

    @app.callback(
        Output("chrom-overlay-plot", "figure"),
        Output("chrom-overlay-plot", "style"),
        Input("chrom-overlay", "value"),
        Input("selected", "data"),
    )
    def on_overlay(chosen: Any, selected: Any) -> Any:
        if chosen is not None and (not isinstance(chosen, list) or len(chosen) > inputs.MAX_ITEMS):
            raise inputs.BadInput(f"overlay: a list of at most {inputs.MAX_ITEMS} injection ids")
        ids = [inputs.positive_int(v, "overlay injection") for v in (chosen or [])]
        iid = inputs.opt_int(selected, "injection id", minimum=1)
        if not ids:
            return dash.no_update, {"display": "none"}
        pick = ([iid] if iid is not None and iid not in ids else []) + ids
        return views.overlay(pick), {}

    @app.callback(
        Output("rv-info", "children"),
        Output("rv-start", "value"),
        Output("rv-end", "value"),
        Output("rv-reason", "options"),
        Output("rv-ex-reason", "options"),
        Output("rv-ed-reason", "options"),
        Output("rv-exclude", "children"),
        Output("rv-link", "options"),
        Output("chrom-overlay", "options"),
        Input("selected", "data"),
        Input("changed", "data"),
        Input("chrom", "selectedData"),
        State("run", "value"),
    )
    def on_info(selected: Any, changed: Any, dragged: Any, run_id: Any) -> Any:
        iid = inputs.opt_int(selected, "injection id", minimum=1)
        nu = dash.no_update
        if ctx.triggered_id == "chrom":  # a drag across a panel proposes the bounds
            span = _x_range(inputs.opt_dict(dragged, "selection"))
            if span is None:
                raise PreventUpdate
            return (nu, round(span[0], 3), round(span[1], 3), *([nu] * 6))
        if ctx.triggered_id == "changed" and not _redraw(changed):
            raise PreventUpdate
        info = views.info(iid)
        keep = ctx.triggered_id == "changed"  # a refresh never overwrites typed times
        start, end = info.get("bounds", (None, None)) if info else (None, None)
        run = info.get("run_id") or inputs.opt_str(run_id, "run")
        opts = views.options(run, iid)
        return (
            info_block(info),
            nu if keep else start,
            nu if keep else end,
            _choices(reasons(assay, "reintegration")),
            _choices(reasons(assay, "exclusion"))
            if not info.get("excluded")
            else _choices(("reason for including it again (comment)",)),
            _choices(reasons(assay, "edit")),
            "Include in the curve again" if info.get("excluded") else "Exclude from the curve",
            opts,
            opts,
        )

    @app.callback(
        Output("rv-result", "children"),
        *(Input(a, "n_clicks") for a in ACTIONS),
        State("selected", "data"),
        State("rv-start", "value"),
        State("rv-end", "value"),
        State("rv-reason", "value"),
        State("rv-comment", "value"),
        State("rv-ex-reason", "value"),
        State("rv-ex-comment", "value"),
        State("rv-field", "value"),
        State("rv-value", "value"),
        State("rv-ed-reason", "value"),
        State("rv-ed-comment", "value"),
        State("rv-link", "value"),
        prevent_initial_call=True,
    )
    def on_action(*values: Any) -> Any:
        action = ctx.triggered_id
        if action not in ACTIONS or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        state = values[len(ACTIONS) :]
        iid = inputs.opt_int(state[0], "injection id", minimum=1)
        if iid is None:
            return html.Span("▲ Select an injection first (a table row or a plot point).")
        c = inputs.MAX_COMMENT
        form = {
            "start": inputs.opt_number(state[1], "start"),
            "end": inputs.opt_number(state[2], "end"),
            "reason": inputs.opt_str(state[3], "reason", c),
            "comment": inputs.opt_str(state[4], "comment", c),
            "ex_reason": inputs.opt_str(state[5], "reason", c),
            "ex_comment": inputs.opt_str(state[6], "comment", c),
            "field": inputs.opt_str(state[7], "field"),
            "value": inputs.opt_str(state[8], "value", inputs.MAX_NAME),
            "ed_reason": inputs.opt_str(state[9], "reason", c),
            "ed_comment": inputs.opt_str(state[10], "comment", c),
            "link": inputs.opt_int(state[11], "original injection", minimum=1),
        }
        return html.Span(views.act(str(action), who(), iid, form))


def _choices(items: Sequence[str]) -> list[dict[str, str]]:
    return [{"label": html_text.unescape(t), "value": t} for t in items]


def _redraw(changed: Any) -> bool:
    """Only a change of numbers or edits redraws the review panel (not every new file)."""
    kinds = changed.get("kinds", []) if isinstance(changed, dict) else []
    return bool({"edit", "calibration", "superseded"} & set(kinds))


def _x_range(selected: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The time range of a horizontal box selection on any panel."""
    rng = (selected or {}).get("range")
    if not isinstance(rng, dict):
        return None
    for key, value in rng.items():
        if (
            isinstance(key, str)
            and key.startswith("x")
            and isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) for v in value)
        ):
            lo, hi = sorted(float(v) for v in value)
            return lo, hi
    return None
