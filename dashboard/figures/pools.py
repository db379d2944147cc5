"""Media beside lysate per culture: the extracellular and intracellular pools."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from asnmon.assay import Assay
from dashboard import style
from dashboard.figures.base import base_figure, empty_figure


def pools_figure(results: pl.DataFrame, assay: Assay) -> go.Figure:
    """Media (µM) beside the lysate's normalized amount, per culture (worklist group)."""
    paired = (
        results.filter(pl.col("group_name").is_not_null() & (pl.col("sample_type") == "sample"))
        if not results.is_empty()
        else results
    )
    if paired.is_empty():
        return empty_figure("No paired media/lysate samples in this run", uirevision="pools")
    cal = assay.calibration
    limit = {"ALQ": (cal.uloq, "> ULOQ"), "BLQ": (cal.lloq, "< LLOQ")}
    status = pl.col("status") if "status" in paired.columns else pl.lit(None, pl.String)
    dilution = (
        pl.col("dilution").cast(pl.Float64).fill_null(1.0)
        if "dilution" in paired.columns
        else pl.lit(1.0)
    )
    paired = paired.with_columns(status.alias("_status"), dilution.alias("_dilution"))
    media = paired.filter(pl.col("matrix") == "media").select(
        "group_name", pl.col("conc").alias("media"), "_status", "_dilution"
    )
    lysate = paired.filter(
        pl.col("normalized_value").is_not_null() | pl.col("_status").is_in(list(limit))
    ).filter(pl.col("matrix").fill_null("") != "media")
    lysate = lysate.select(
        "group_name",
        pl.col("normalized_value").alias("lysate"),
        pl.col("normalized_unit").alias("unit"),
        pl.col("_status").alias("_lstatus"),
    )
    both = media.join(lysate, on="group_name", how="full", coalesce=True).sort("group_name")
    unit = next((u for u in both["unit"].to_list() if u), "nmol/mg protein")
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(f"Extracellular (media), {assay.unit}", f"Intracellular, {unit}"),
    )
    base_figure(fig, uirevision="pools", height=460)
    groups = both["group_name"].to_list()
    # Outside the curve: the media bar drawn at the limit, hatched and labelled; the lysate
    # has no normalized amount then, so its label stands where the bar would be.
    media_y, media_text = [], []
    for v, st, dil in both.select("media", "_status", "_dilution").iter_rows():
        if v is None and st in limit:
            media_y.append(limit[st][0] * (dil or 1.0))
            media_text.append(limit[st][1])
        else:
            media_y.append(v)
            media_text.append("")
    fig.add_trace(
        go.Bar(
            x=groups,
            y=media_y,
            name="media",
            marker_color=style.BLUE,
            marker_pattern_shape=["x" if t else "" for t in media_text],
            text=media_text,
            textposition="outside",
            textfont={"size": 15, "color": style.INK},
            cliponaxis=False,
        ),
        row=1,
        col=1,
    )
    lys_text = [
        limit[st][1] + " (no value)" if v is None and st in limit else ""
        for v, st in both.select("lysate", "_lstatus").iter_rows()
    ]
    fig.add_trace(
        go.Bar(
            x=groups,
            y=both["lysate"].to_list(),
            name="lysate",
            marker_color=style.ORANGE,
            marker_pattern_shape="/",
        ),
        row=1,
        col=2,
    )
    if any(lys_text):
        fig.add_trace(
            go.Scatter(
                x=[g for g, t in zip(groups, lys_text, strict=True) if t],
                y=[0.0 for t in lys_text if t],
                text=[t for t in lys_text if t],
                mode="markers+text",
                marker={"symbol": "x", "size": 14, "color": style.VERMILION},
                textposition="top center",
                textfont={"size": 15, "color": style.INK},
                name="outside the curve",
                showlegend=False,
            ),
            row=1,
            col=2,
        )
    for col, name in ((1, "media"), (2, "intracellular")):
        m = assay.matrix(name)
        if m is not None and m.ref_low is not None and m.ref_high is not None:
            fig.add_hrect(
                y0=m.ref_low,
                y1=m.ref_high,
                fillcolor=style.BAND_FILL,
                line_width=0,
                layer="below",
                row=1,
                col=col,
                annotation_text="reference",
                annotation_position="top left",
            )
    fig.update_xaxes(title="culture (group)")
    return fig
