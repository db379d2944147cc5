"""The look every figure shares: fonts read across a room, ``uirevision`` kept."""

from __future__ import annotations

import plotly.graph_objects as go

from dashboard import style

BIG = 18  # base font px: the run plots are read from across a room


def base_figure(fig: go.Figure, *, uirevision: str, height: int | None = None) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        font={"family": style.FONT, "size": BIG, "color": style.INK},
        margin={"l": 70, "r": 55, "t": 90, "b": 50},
        title={"y": 0.97, "yanchor": "top", "x": 0.01, "font": {"size": 20}},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "font": {"size": 15}},
        uirevision=uirevision,
        hovermode="closest",
    )
    if height:
        fig.update_layout(height=height)
    return fig


def empty_figure(message: str, *, uirevision: str = "empty") -> go.Figure:
    fig = base_figure(go.Figure(), uirevision=uirevision)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(
        text=message, showarrow=False, font={"size": 22, "color": style.GREY}, x=0.5, y=0.5
    )
    return fig
