"""The calibration curve with its standards and their back-calculated accuracy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboard import style
from dashboard.figures.base import base_figure, empty_figure

CAL_LEVEL_TOLERANCE = 15.0


def calibration_figure(
    calibration: Mapping[str, Any] | None, points: pl.DataFrame, unit: str
) -> go.Figure:
    """The curve with its standards (excluded ones marked) and back-calculated accuracy."""
    if calibration is None or points.is_empty():
        return empty_figure("No calibration curve yet", uirevision="cal")
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        subplot_titles=("Area ratio vs nominal", "Back-calculated accuracy"),
    )
    base_figure(fig, uirevision=f"cal-{calibration['calibration_id']}")
    used = points.filter(~pl.col("excluded").fill_null(False))
    excl = points.filter(pl.col("excluded").fill_null(False))
    lo = float(points["nominal"].min())  # type: ignore[arg-type]
    hi = float(points["nominal"].max())  # type: ignore[arg-type]
    xs = (
        [lo * (hi / lo) ** (i / 60) for i in range(61)]
        if lo > 0
        else [hi * i / 60 for i in range(61)]
    )
    c0, c1, c2 = (calibration.get(k) or 0.0 for k in ("c0", "c1", "c2"))
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[c0 + c1 * x + c2 * x * x for x in xs],
            mode="lines",
            name=f"{calibration.get('model')} fit",
            line={"color": style.BLUE, "width": 2},
        ),
        row=1,
        col=1,
    )
    for frame, name, colour, symbol in (
        (used, "standard", style.BLUE, "square"),
        (excl, "excluded", style.VERMILION, "x"),
    ):
        if frame.is_empty():
            continue
        fig.add_trace(
            go.Scatter(
                x=frame["nominal"].to_list(),
                y=frame["area_ratio"].to_list(),
                mode="markers",
                name=name,
                text=frame["sample_id"].to_list(),
                marker={"color": colour, "symbol": symbol, "size": 12},
                hovertemplate="%{text}: %{x:g} → ratio %{y:.4g}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=frame["nominal"].to_list(),
                y=[a - 100 if a is not None else None for a in frame["accuracy_pct"].to_list()],
                mode="markers",
                name=f"{name} residual",
                showlegend=False,
                text=frame["sample_id"].to_list(),
                marker={"color": colour, "symbol": symbol, "size": 12},
                hovertemplate="%{text}: %{y:+.1f} %<extra></extra>",
            ),
            row=1,
            col=2,
        )
    fig.add_hrect(
        y0=-CAL_LEVEL_TOLERANCE,
        y1=CAL_LEVEL_TOLERANCE,
        fillcolor=style.BAND_FILL,
        line_width=0,
        row=1,
        col=2,
    )
    fig.add_hline(y=0, line={"color": style.GREY}, row=1, col=2)
    fig.update_xaxes(type="log", title=f"nominal, {unit}")
    fig.update_yaxes(type="log", title="area ratio", row=1, col=1)
    fig.update_yaxes(title="accuracy − 100, %", row=1, col=2)
    look = style.VERDICT["pass" if calibration.get("accepted") else "fail"]
    r2 = calibration.get("r2")
    fig.update_layout(
        title={
            "text": f"{look.icon} v{calibration.get('version')} {calibration.get('model')}, "
            f"weighting {calibration.get('weighting')}, r² = {r2:.4f}"
            if isinstance(r2, float)
            else f"v{calibration.get('version')}",
            "font": {"size": 20},
        },
        height=480,
    )
    return fig
