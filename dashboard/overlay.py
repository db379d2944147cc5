"""Several injections' traces on one set of panels, one colour each (Okabe-Ito)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboard import style
from dashboard.chromatogram import (
    CHROM_ROLES,
    TransitionInfo,
    _by_transition,
    _mz,
    _role_rows,
    _transition_for,
)
from dashboard.figures import base_figure, empty_figure

OVERLAY_COLOURS = (
    style.BLUE,
    style.ORANGE,
    style.GREEN,
    style.VERMILION,
    style.PURPLE,
    style.SKY,
    style.BLACK,
    style.YELLOW,
)
MAX_OVERLAY = 8


def overlay_figure(
    series: Sequence[tuple[str, pl.DataFrame, pl.DataFrame]],
    *,
    transitions: Mapping[str, TransitionInfo] | None = None,
) -> go.Figure:
    """Several injections' traces on one set of panels (label, traces, peaks), one colour each."""
    if not series:
        return empty_figure("Choose injections to overlay", uirevision="overlay")
    infos = transitions or {}
    first_roles = _role_rows(series[0][2])
    titles = []
    for r in CHROM_ROLES:
        peak = first_roles.get(r)
        t = peak["transition"] if peak else _transition_for(r, _by_transition(series[0][1]))
        info = infos.get(t or "")
        titles.append(f"{style.ROLE_LOOK[r][0]}{_mz(info)}")
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, horizontal_spacing=0.06)
    base_figure(fig, uirevision="overlay-" + "|".join(s[0] for s in series), height=380)
    fig.update_layout(font={"size": 13}, margin={"t": 90})
    for k, (label, traces, peaks) in enumerate(series[:MAX_OVERLAY]):
        colour = OVERLAY_COLOURS[k % len(OVERLAY_COLOURS)]
        roles = _role_rows(peaks)
        by_t = _by_transition(traces)
        for col, role in enumerate(CHROM_ROLES, start=1):
            peak = roles.get(role)
            t = peak["transition"] if peak else _transition_for(role, by_t)
            data = by_t.get(t) if t else None
            if data is None:
                continue
            fig.add_trace(
                go.Scatter(
                    x=data[0],
                    y=data[1],
                    mode="lines",
                    line={"color": colour, "width": 2},
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    hovertemplate=f"{label}: " + "%{x:.3f} min, %{y:,.0f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="min")
    fig.update_yaxes(tickformat="~s")
    return fig
