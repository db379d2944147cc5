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
from dataclasses import dataclass
from typing import Any, Protocol

import dash
import polars as pl
from asnmon.users import Actor
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from asnmon.assay import Assay
from asnmon.errors import AsnmonError
from asnmon.requantify import Requantified
from asnmon.review import EDITABLE_FIELDS
from asnmon.review_actions import (
    edit_batch_field,
    link_reinjection,
    reasons,
    reintegrate_injection,
    revert_to_automatic,
    set_calibrator_excluded,
)
from asnmon.store import Store
from dashboard import chromatogram, inputs
from dashboard.chromatogram import Panel, TransitionInfo, plain

# the callback output that changes data: it needs the page's session token
WRITES = frozenset({"rv-result.children"})
FIELD_LABELS = {
    "sample_type": "sample type",
    "level": "level",
    "nominal": "nominal",
    "dilution": "dilution",
    "matrix": "matrix",
}
ACTIONS = ("rv-apply", "rv-revert", "rv-exclude", "rv-save", "rv-link-save")


class WhoLike(Protocol):
    @property
    def actor(self) -> Actor | None: ...
    @property
    def note(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Bench:
    """Who a write is done as without accounts (before ``dashboard.auth`` decides)."""

    actor: Actor | None
    note: str


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


def describe(done: Requantified, label: str, what: str) -> str:
    """The confirmation a person reads: names the injection and what followed."""
    parts = [f"✔ {label}: {what}."]
    if done.calibration is not None:
        c = done.calibration
        state = "accepted" if c.accepted else "REJECTED"
        parts.append(f"Curve refitted: version {c.version}, {state} ({c.reason}).")
    if done.requantified:
        parts.append(f"{done.requantified} result(s) re-quantified.")
    return " ".join(parts)


# ---------------------------------------------------------------- views


class ReviewViews:
    """Queries for the review panel and the chromatograms; no Dash state."""

    def __init__(self, store: Store, assay: Assay) -> None:
        self.store = store
        self.assay = assay
        self.transitions = {t.id: TransitionInfo(t.name, t.q1, t.q3) for t in assay.transitions}

    def row(self, injection_id: int) -> dict[str, Any] | None:
        """The injection's results row (the export's columns), or None."""
        try:
            run_id, _ = self.store.stored_sample(injection_id)
        except AsnmonError:
            return None
        found = self.store.results(run_id).filter(pl.col("injection_id") == injection_id)
        return found.row(0, named=True) if not found.is_empty() else None

    def label(self, injection_id: int) -> str:
        r = self.row(injection_id)
        return str(r["sample_id"] or r["file"]) if r else f"injection {injection_id}"

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

    def panel(self, injection_id: int, label: str, flags: pl.DataFrame | None) -> Panel:
        r = self.row(injection_id)
        notes = self.store.review_notes(str(r["run_id"])) if r else {}
        return Panel(
            label=label,
            traces=self.store.traces(injection_id),
            peaks=self.store.peaks(injection_id),
            flags=flags,
            auto=self.store.automatic_peaks(injection_id),
            note=notes.get(injection_id, ""),
            error=str(r["error"]) if r and r.get("error") else None,
        )

    def chromatograms(
        self, injection_id: int | None, run_id: str | None, *, share_y: bool = False
    ) -> Any:
        if injection_id is None:
            return chromatogram.chromatogram_figure([])
        r = self.row(injection_id)
        run = str(r["run_id"]) if r else run_id
        flags = self.store.flags(run) if run else pl.DataFrame()

        def flags_of(iid: int) -> pl.DataFrame | None:
            return None if flags.is_empty() else flags.filter(pl.col("injection_id") == iid)

        panels = [self.panel(injection_id, self.label(injection_id), flags_of(injection_id))]
        ref = self.reference_calibrator(run)
        if ref is not None and ref != injection_id:
            panels.append(self.panel(ref, "reference " + self.label(ref), flags_of(ref)))
        editable = not self.store.read_only
        return chromatogram.chromatogram_figure(
            panels, transitions=self.transitions, share_y=share_y, select=editable
        )

    def overlay(self, injection_ids: Sequence[int]) -> Any:
        series = [
            (self.label(i), self.store.traces(i), self.store.peaks(i))
            for i in injection_ids[: chromatogram.MAX_OVERLAY]
        ]
        return chromatogram.overlay_figure(series, transitions=self.transitions)

    def options(self, run_id: str | None, exclude: int | None) -> list[dict[str, Any]]:
        """The run's injections as dropdown choices, in acquisition order."""
        if run_id is None:
            return []
        res = self.store.results(run_id)
        return [
            {
                "label": f"{r['position'] or '–'} · {r['sample_id'] or r['file']} ({r['file']})",
                "value": int(r["injection_id"]),
            }
            for r in res.iter_rows(named=True)
            if r["injection_id"] != exclude
        ]

    def info(self, injection_id: int | None) -> dict[str, Any]:
        if injection_id is None:
            return {}
        r = self.row(injection_id)
        if r is None:
            return {}
        run_id = str(r["run_id"])
        conc, unit, status = r.get("conc"), r.get("unit") or self.assay.unit, r.get("status")
        result = f"{plain(conc)} {unit}" if conc is not None else str(status or "no result")
        edits = self.store.edits(run_id, injection_id)
        return {
            "label": str(r["sample_id"] or r["file"]),
            "run_id": run_id,
            "sample_type": r["sample_type"],
            "level": r.get("level"),
            "nominal": r.get("nominal"),
            "dilution": r.get("dilution") or 1.0,
            "matrix": r.get("matrix"),
            "result": result,
            "note": self.store.review_notes(run_id).get(injection_id, ""),
            "error": r.get("error"),
            "excluded": injection_id in self.store.exclusions(run_id),
            "bounds": self._bounds(injection_id),
            "edits": [
                {
                    "when": f"{e['created_at']:%Y-%m-%d %H:%M}",
                    "actor": e["actor"],
                    "role": e["actor_role"],
                    "what": _edit_words(e),
                    "reason": e["reason"] + (f" ({e['comment']})" if e.get("comment") else ""),
                }
                for e in edits.iter_rows(named=True)
            ],
        }

    def _bounds(self, injection_id: int) -> tuple[float | None, float | None]:
        peaks = self.store.peaks(injection_id)
        for role in ("is_quant", "analyte_quant"):
            p = peaks.filter(pl.col("role") == role) if not peaks.is_empty() else peaks
            if not p.is_empty():
                return (
                    round(float(p["start_rt"][0]), 3),
                    round(float(p["end_rt"][0]), 3),
                )
        return None, None

    # ------------------------------------------------------------ the change

    def act(self, action: str, who: WhoLike, injection_id: int, form: Mapping[str, Any]) -> str:
        """Do one change as ``who``; the sentence to show, whatever happened."""
        if self.store.read_only:
            return (
                "✖ Not recorded: this database is open read-only. Changes are made in the "
                "running monitor or in a review opened for changes."
            )
        actor = who.actor
        if actor is None:
            return f"✖ Not recorded: {who.note}"
        label = self.label(injection_id)
        try:
            return self._act(action, actor, injection_id, label, form)
        except AsnmonError as err:  # not allowed, locked, a bad value: said in words
            return f"✖ Not recorded ({label}): {err}"

    def _act(self, action: str, actor: Actor, iid: int, label: str, form: Mapping[str, Any]) -> str:
        s, a = self.store, self.assay
        if action == "rv-apply":
            before = _area(s.peaks(iid))
            done = reintegrate_injection(
                s,
                a,
                actor,
                iid,
                float(form["start"]) if form.get("start") is not None else float("nan"),
                float(form["end"]) if form.get("end") is not None else float("nan"),
                reason=form.get("reason") or "",
                comment=form.get("comment") or "",
            )
            after = _area(s.peaks(iid))
            what = (
                f"manually integrated by {actor.name} because {form.get('reason')}; "
                f"analyte area {plain(before)} → {plain(after)}"
            )
            return describe(done, label, what)
        if action == "rv-revert":
            done = revert_to_automatic(
                s,
                a,
                actor,
                iid,
                reason=form.get("reason") or "automatic integration restored",
                comment=form.get("comment") or "",
            )
            return describe(done, label, f"back to the automatic integration ({actor.name})")
        if action == "rv-exclude":
            run_id = self.info(iid)["run_id"]
            exclude = iid not in s.exclusions(run_id)
            done = set_calibrator_excluded(
                s,
                a,
                actor,
                iid,
                exclude,
                reason=form.get("ex_reason") or "",
                comment=form.get("ex_comment") or "",
            )
            verb = "excluded from" if exclude else "included again in"
            return describe(done, label, f"{verb} the curve by {actor.name}")
        if action == "rv-save":
            field = str(form.get("field") or "")
            done = edit_batch_field(
                s,
                a,
                actor,
                iid,
                field,
                form.get("value"),
                reason=form.get("ed_reason") or "",
                comment=form.get("ed_comment") or "",
            )
            what = f"{FIELD_LABELS.get(field, field)} set to {form.get('value')!s} by {actor.name}"
            return describe(done, label, what)
        original = form.get("link")
        link_reinjection(
            s,
            actor,
            iid,
            int(original) if original is not None else None,
            reason=form.get("ed_reason") or "re-injection linked by hand",
            comment=form.get("ed_comment") or "",
        )
        target = self.label(int(original)) if original is not None else "nothing"
        return f"✔ {label}: linked as the re-injection of {target} by {actor.name}."


def _area(peaks: pl.DataFrame) -> float | None:
    if peaks.is_empty():
        return None
    a = peaks.filter(pl.col("role") == "analyte_quant")
    return float(a["area"][0]) if not a.is_empty() and a["area"][0] is not None else None


def _edit_words(e: Mapping[str, Any]) -> str:
    kind = e["kind"]
    if kind == "reintegrate":
        return "manual integration"
    if kind == "revert_integration":
        return "back to the automatic integration"
    if kind in ("exclude", "include"):
        return "excluded from the curve" if kind == "exclude" else "included in the curve"
    if kind == "link":
        return "re-injection link"
    return f"{e['field']} {e['old_value'] or '—'} → {e['new_value'] or '—'}"


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
        State("run", "value"),
    )
    def on_info(selected: Any, changed: Any, run_id: Any) -> Any:
        iid = inputs.opt_int(selected, "injection id", minimum=1)
        if ctx.triggered_id == "changed" and not _redraw(changed):
            raise PreventUpdate
        info = views.info(iid)
        nu = dash.no_update
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
        Output("rv-start", "value", allow_duplicate=True),
        Output("rv-end", "value", allow_duplicate=True),
        Input("chrom", "selectedData"),
        prevent_initial_call=True,
    )
    def on_drag(selected: Any) -> Any:
        span = _x_range(inputs.opt_dict(selected, "selection"))
        if span is None:
            raise PreventUpdate
        return round(span[0], 3), round(span[1], 3)

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
