"""The report's figures: pure functions of store frames to plotly figures.

Every reference line is drawn with an explicit width and colour: plotly's
``simple_white`` template sets ``layout.shapedefaults.line.width = 0`` (see
plotly's template docs, "Theming and templates"), so an ``add_hline`` that
names no width is invisible in it — which is how the earlier report's mean,
SD and limit lines vanished. Colours are Okabe-Ito (readable with colour
blindness); every line also carries a text label, so nothing is said by
colour alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from asnmon.report.format import rt, whole
from asnmon.westgard import GuideSet, QcPoint, evaluate_westgard, ordered

WIDTH = 700  # px: A4 portrait less 12 mm margins is 186 mm = 703 CSS px
HEIGHT = 360

# Okabe-Ito. One colour per kind of line, so a test (and a reader) can tell them apart.
LIMIT = "#D55E00"  # vermilion: acceptance limits, ±3 SD
SD2 = "#E69F00"  # orange: ±2 SD (warning)
SD1 = "#56B4E9"  # sky blue: ±1 SD
CENTRE = "#000000"  # mean, 0 % deviation, 100 % IS reference
FIT = "#0072B2"  # blue: the fitted curve
TYPE_COLOUR: Mapping[str, str] = {
    "calibrator": "#0072B2",
    "qc": "#009E73",
    "sample": "#999999",
    "zero": "#CC79A7",
    "blank": "#F0E442",
    "double_blank": "#F0E442",
}
LINE_WIDTH = 2.0
NO_IS_TYPES = ("blank", "double_blank")  # prepared without internal standard


def _layout(fig: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        width=WIDTH,
        height=height,
        template="simple_white",
        margin={"l": 70, "r": 80, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.22},
        font={"size": 11},
    )
    return fig


def _hline(fig: go.Figure, y: float, colour: str, dash: str, text: str, **where: Any) -> None:
    """A labelled horizontal line with a width the template cannot zero."""
    fig.add_hline(
        y=y,
        line={"color": colour, "width": LINE_WIDTH, "dash": dash},
        opacity=1.0,  # the template's shapedefaults also set 0.3
        layer="below",
        annotation_text=text,
        annotation_position="right",
        annotation_font={"size": 10, "color": colour},
        **where,
    )


def calibration_figure(
    points: pl.DataFrame,
    calibration: Mapping[str, Any],
    accuracy_pct: float = 15.0,
    unit: str = "µM",
) -> go.Figure:
    """The curve on linear axes over its standards, and their deviations with the limits.

    Linear x and y: a linear fit must look like a line (on a log x axis it looks
    exponential). The deviation panel uses a log x axis, said in its title, so
    the low standards are not crowded at zero; its y is in %, so nothing bends.
    """
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.62, 0.38],
        vertical_spacing=0.16,
    )
    pts = points.filter(pl.col("nominal") > 0) if points.height else points
    if pts.height:
        used = pts.filter(~pl.col("excluded").fill_null(False))
        excl = pts.filter(pl.col("excluded").fill_null(False))
        for part, name, marker in (
            (used, "standards", {"symbol": "circle", "size": 8, "color": FIT}),
            (excl, "excluded", {"symbol": "x", "size": 9, "color": "#555555"}),
        ):
            if not part.height:
                continue
            text = [str(s or "") for s in part["level"].to_list()]
            fig.add_trace(
                go.Scatter(
                    x=part["nominal"].to_list(),
                    y=part["area_ratio"].to_list(),
                    mode="markers",
                    name=name,
                    marker=marker,
                    text=text,
                ),
                row=1,
                col=1,
            )
            dev = part.filter(pl.col("accuracy_pct").is_not_null())
            fig.add_trace(
                go.Scatter(
                    x=dev["nominal"].to_list(),
                    y=(dev["accuracy_pct"] - 100.0).to_list(),
                    mode="markers",
                    name=f"{name} deviation",
                    marker=marker,
                    showlegend=False,
                ),
                row=2,
                col=1,
            )
        hi = float(pts["nominal"].max())  # type: ignore[arg-type]
        xs = np.linspace(0.0, hi * 1.03, 200)
        c0, c1, c2 = (float(calibration.get(k) or 0.0) for k in ("c0", "c1", "c2"))
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=c0 + c1 * xs + c2 * xs**2,
                mode="lines",
                name="fit",
                line={"color": FIT, "width": 1.5},
            ),
            row=1,
            col=1,
        )
        lim = float(accuracy_pct)
        _hline(fig, lim, LIMIT, "solid", f"+{lim:g} %", row=2, col=1)
        _hline(fig, -lim, LIMIT, "solid", f"−{lim:g} %", row=2, col=1)
        _hline(fig, 0.0, CENTRE, "dot", "0 %", row=2, col=1)
        spread = [abs(v) for v in (pts["accuracy_pct"] - 100.0).drop_nulls().to_list()]
        top = max([lim * 1.6, *(v * 1.15 for v in spread)])
        fig.update_yaxes(range=[-top, top], row=2, col=1)
    fig.update_xaxes(
        title_text=f"nominal concentration ({unit}, linear axis)", rangemode="tozero", row=1, col=1
    )
    fig.update_yaxes(title_text="area ratio (analyte / IS)", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(
        type="log", title_text=f"nominal concentration ({unit}, log scale)", row=2, col=1
    )
    fig.update_yaxes(title_text="back-calc. deviation (%)", row=2, col=1)
    r2 = calibration.get("r2")
    fit_text = f"r² = {float(r2):.4f}" if r2 is not None else "r² not computed"
    title = (
        f"Calibration v{calibration.get('version')}: {calibration.get('model')}, "
        f"weighting {calibration.get('weighting')}, {fit_text}, "
        + ("accepted" if calibration.get("accepted") else "REJECTED")
    )
    return _layout(fig, title, 560)


def is_response_figure(results: pl.DataFrame, low_pct: float, high_pct: float) -> go.Figure:
    """IS response per injection in % of its reference, with the acceptance window.

    The percentage is the one the QC rules judged on arrival (``is_pct``, against
    the reference known at that time), so the plot shows the number behind each
    IS_LOW/IS_HIGH flag; rows without it use the final cal/QC mean.
    """
    df = results.filter(
        pl.col("is_area").is_not_null() & ~pl.col("sample_type").is_in(NO_IS_TYPES)
    ).with_row_index("order", offset=1)
    if "is_pct" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.Float64).alias("is_pct"))
    ref_rows = df.filter(pl.col("sample_type").is_in(["calibrator", "qc"]))
    ref = float(ref_rows["is_area"].mean()) if ref_rows.height else None  # type: ignore[arg-type]
    if ref:
        df = df.with_columns(
            pl.coalesce(pl.col("is_pct"), pl.col("is_area") / ref * 100.0).alias("is_pct")
        )
    x_col = "position" if df.height and df["position"].null_count() == 0 else "order"
    fig = go.Figure()
    for stype in dict.fromkeys(df["sample_type"].to_list()) if df.height else ():
        part = df.filter(pl.col("sample_type") == stype)
        fig.add_trace(
            go.Scatter(
                x=part[x_col].to_list(),
                y=part["is_pct"].to_list(),
                mode="markers",
                name=str(stype),
                marker={"color": TYPE_COLOUR.get(str(stype), "#999999"), "size": 7},
                text=part["sample_id"].to_list(),
            )
        )
    _hline(fig, high_pct, LIMIT, "dash", f"{high_pct:g} %")
    _hline(fig, 100.0, CENTRE, "dot", "100 %")
    _hline(fig, low_pct, LIMIT, "dash", f"{low_pct:g} %")
    fig.update_xaxes(title_text="injection (position)")
    fig.update_yaxes(
        title_text="IS response (% of reference)",
        range=[0, max([high_pct * 1.15, *(v * 1.05 for v in df["is_pct"].drop_nulls())])],
    )
    return _layout(
        fig,
        f"Internal standard response: window {low_pct:g}–{high_pct:g} % of the cal/QC reference",
    )


def levey_jennings_figure(points: Sequence[QcPoint], guide: GuideSet, run_id: str) -> go.Figure:
    """One QC level across runs: the guide set's mean and ±1/2/3 SD, violations marked."""
    pts = ordered(points, guide.level)
    viol: dict[int, str] = {}
    for v in evaluate_westgard(pts, guide):
        viol.setdefault(id(v.point), v.rule.replace("WESTGARD_", ""))
    x = list(range(1, len(pts) + 1))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[p.value for p in pts],
            mode="lines",
            line={"color": "#BBBBBB", "width": 1},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    for name, keep, marker in (
        ("other runs", lambda p: p.run_id != run_id, {"color": "#777777", "size": 6}),
        ("this run", lambda p: p.run_id == run_id, {"color": FIT, "size": 9}),
    ):
        sel = [(i, p) for i, p in zip(x, pts, strict=True) if keep(p)]
        if sel:
            fig.add_trace(
                go.Scatter(
                    x=[i for i, _ in sel],
                    y=[p.value for _, p in sel],
                    mode="markers",
                    name=name,
                    marker=marker,
                )
            )
    bad = [(i, p) for i, p in zip(x, pts, strict=True) if id(p) in viol]
    if bad:
        fig.add_trace(
            go.Scatter(
                x=[i for i, _ in bad],
                y=[p.value for _, p in bad],
                mode="markers+text",
                name="Westgard violation",
                marker={"symbol": "x-open", "size": 14, "color": "#CC79A7", "line": {"width": 2}},
                text=[viol[id(p)] for _, p in bad],
                textposition="top center",
            )
        )
    for k, colour, dash in (
        (3, LIMIT, "solid"),
        (2, SD2, "dash"),
        (1, SD1, "dot"),
    ):
        for sign in (1, -1):
            _hline(
                fig,
                guide.mean + sign * k * guide.sd,
                colour,
                dash,
                f"{'+' if sign > 0 else '−'}{k} SD",
            )
    _hline(fig, guide.mean, CENTRE, "solid", f"mean {guide.mean:.1f}")
    small = " (guide set < 5 points: SD uncertain)" if guide.small else ""
    # plotly's autorange ignores the lines: the ±3 SD band is always in view
    values = [p.value for p in pts]
    low = min([guide.mean - 3.4 * guide.sd, *values])
    high = max([guide.mean + 3.4 * guide.sd, *values])
    pad = 0.06 * (high - low) or 1.0
    fig.update_xaxes(title_text="QC injection (acquisition order across runs)", dtick=1)
    fig.update_yaxes(title_text="accuracy (% of nominal)", range=[low - pad, high + pad])
    return _layout(
        fig,
        f"Levey-Jennings {guide.level}: mean {guide.mean:.1f} %, SD {guide.sd:.2f} % "
        f"(n = {guide.n}, {guide.basis}){small}",
        330,
    )


def chromatogram_figure(
    traces: pl.DataFrame,
    peaks: pl.DataFrame,
    names: Mapping[str, str],
    order: Sequence[str],
) -> go.Figure:
    """One injection's traces, two per row, each with its integration boundaries and baseline.

    ``names`` maps a transition id to its label, ``order`` gives the panels'
    order (analyte quantifier first); a transition without a stored trace is
    left out.
    """
    stored = {str(t): i for i, t in enumerate(traces["transition"].to_list())}
    panels = [t for t in order if t in stored] or list(stored)
    peak_of = {str(r["transition"]): r for r in peaks.iter_rows(named=True)} if peaks.height else {}
    titles = []
    for t in panels:
        p = peak_of.get(t)
        detail = (
            f"RT {rt(p.get('apex_rt'))} min, area {whole(p.get('area'))}"
            if p and p.get("area") is not None
            else "no peak"
        )
        titles.append(f"{names.get(t, t)}: {detail}")
    n_rows = max((len(panels) + 1) // 2, 1)
    fig = make_subplots(
        rows=n_rows,
        cols=2,
        subplot_titles=titles or None,
        vertical_spacing=0.5 / n_rows,
        horizontal_spacing=0.12,
    )
    for k, t in enumerate(panels):
        where = {"row": k // 2 + 1, "col": k % 2 + 1}
        trace = traces.row(stored[t], named=True)
        fig.add_trace(
            go.Scatter(
                x=trace["rt"],
                y=trace["intensity"],
                mode="lines",
                line={"color": FIT, "width": 1.2},
                showlegend=False,
            ),
            **where,
        )
        p = peak_of.get(t)
        if p and p.get("start_rt") is not None and p.get("end_rt") is not None:
            fig.add_trace(
                go.Scatter(
                    x=[p["start_rt"], p["end_rt"]],
                    y=[p.get("baseline_start") or 0.0, p.get("baseline_end") or 0.0],
                    mode="lines+markers",
                    line={"color": LIMIT, "width": 1.5, "dash": "dash"},
                    marker={"symbol": "line-ns-open", "size": 16, "color": LIMIT},
                    showlegend=False,
                ),
                **where,
            )
        fig.update_xaxes(title_text="RT (min)", **where)
        fig.update_yaxes(title_text="intensity (cps)", rangemode="tozero", **where)
    fig.update_annotations(font_size=11)
    return _layout(fig, "", 280 * n_rows + 40).update_layout(margin={"t": 40, "r": 20})
