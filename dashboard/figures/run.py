"""The two run plots (IS % and asparagine per injection) and their live extension.

One trace per sample type in ``style.SAMPLE_TYPES`` order, so the live view
can append new injections with ``extendData`` (``run_extension``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl

from asnmon.assay import Assay
from dashboard import style
from dashboard.figures.base import base_figure
from dashboard.tables import details, is_reference


def run_series(results: pl.DataFrame, reference: float | None = None) -> pl.DataFrame:
    """Acquisition position, IS % of the reference and concentration, per injection.

    ``order`` is the worklist position (the number the table and the flags use);
    an injection outside the worklist sits half a step after the one acquired
    before it. ``oor`` says "BLQ"/"ALQ" for a result outside the curve, whose
    ``conc`` is None: the plots draw it at the limit instead of dropping it.
    """
    if results.is_empty():
        return pl.DataFrame(
            schema={
                "order": pl.Float64,
                "injection_id": pl.Int64,
                "sample_type": pl.String,
                "sample_id": pl.String,
                "is_pct": pl.Float64,
                "conc": pl.Float64,
                "oor": pl.String,
                "dilution": pl.Float64,
            }
        )
    ref = reference if reference is not None else is_reference(results)
    frame = results.sort("injection_id")
    fallback = (
        (100.0 * pl.col("is_area").cast(pl.Float64) / ref) if ref else pl.lit(None, pl.Float64)
    )
    has = set(frame.columns)
    order = _acquisition_x(frame["position"].to_list() if "position" in has else [])
    status = pl.col("status") if "status" in has else pl.lit(None, pl.String)
    return frame.select(
        pl.Series("order", order or list(range(1, frame.height + 1)), dtype=pl.Float64),
        pl.col("injection_id").cast(pl.Int64),
        pl.col("sample_type").fill_null("sample"),
        pl.col("sample_id").fill_null(""),
        (
            # As judged on arrival (asnmon.qc.is_context) where stored, else of the run mean.
            pl.coalesce(pl.col("is_pct").cast(pl.Float64), fallback)
            if "is_pct" in has
            else fallback
        ).alias("is_pct"),
        pl.col("conc").cast(pl.Float64),
        pl.when(status.is_in(["BLQ", "ALQ"]) & pl.col("conc").is_null())
        .then(status)
        .otherwise(None)
        .alias("oor"),
        (pl.col("dilution").cast(pl.Float64) if "dilution" in has else pl.lit(1.0))
        .fill_null(1.0)
        .alias("dilution"),
    )


def _acquisition_x(positions: Sequence[int | None]) -> list[float]:
    """Worklist positions; an unlisted injection half a step after the previous one."""
    out: list[float] = []
    last = 0.0
    for p in positions:
        x = float(p) if p is not None else math.floor(last) + 0.5
        out.append(x)
        last = x
    return out


def _type_arrays(series: pl.DataFrame, y: str) -> list[dict[str, list[Any]]]:
    """Per sample type (style order): x, y, customdata (injection id) and hover text."""
    out = []
    for kind, *_ in style.SAMPLE_TYPES:
        part = series.filter((pl.col("sample_type") == kind) & pl.col(y).is_not_null())
        out.append(
            {
                "x": part["order"].to_list(),
                "y": part[y].to_list(),
                "customdata": part["injection_id"].to_list(),
                "text": part["sample_id"].to_list(),
            }
        )
    return out


# Results outside the curve, drawn AT the limit (ICH M10: never an extrapolated number).
OUT_OF_RANGE = (("ALQ", "> ULOQ", "triangle-up"), ("BLQ", "< LLOQ", "triangle-down"))


def _oor_arrays(series: pl.DataFrame, assay: Assay) -> list[dict[str, list[Any]]]:
    """One array set per OUT_OF_RANGE kind: y at the limit times the sample's dilution."""
    cal = assay.calibration
    out = []
    for status, label, _ in OUT_OF_RANGE:
        part = series.filter(pl.col("oor") == status)
        limit = cal.uloq if status == "ALQ" else cal.lloq
        out.append(
            {
                "x": part["order"].to_list(),
                "y": [limit * d for d in part["dilution"].to_list()],
                "customdata": part["injection_id"].to_list(),
                "text": [f"{sid} {label}" for sid in part["sample_id"].to_list()],
            }
        )
    return out


def _type_traces(fig: go.Figure, series: pl.DataFrame, y: str, unit: str) -> None:
    for (kind, label, colour, symbol), arr in zip(
        style.SAMPLE_TYPES, _type_arrays(series, y), strict=True
    ):
        fig.add_trace(
            go.Scatter(
                name=label,
                mode="markers",
                marker={
                    "color": colour,
                    "symbol": symbol,
                    "size": 10,
                    "line": {"width": 1, "color": style.PAPER},
                },
                hovertemplate=f"%{{text}}<br>injection %{{x}}<br>%{{y:.3g}} {unit}"
                f"<extra>{label}</extra>",
                meta=kind,
                **arr,
            )
        )


def _oor_traces(fig: go.Figure, series: pl.DataFrame, assay: Assay) -> None:
    for (status, label, symbol), arr in zip(OUT_OF_RANGE, _oor_arrays(series, assay), strict=True):
        fig.add_trace(
            go.Scatter(
                name=label,
                mode="markers+text",
                marker={
                    "color": style.VERMILION,
                    "symbol": symbol,
                    "size": 16,
                    "line": {"width": 2, "color": style.INK},
                },
                textposition="top center" if status == "ALQ" else "bottom center",
                textfont={"size": 14, "color": style.INK},
                hovertemplate=f"%{{text}}<br>injection %{{x}}<br>drawn at the limit "
                f"(%{{y:.3g}} {assay.unit})<extra>{label}</extra>",
                meta=status,
                **arr,
            )
        )


def run_extension(
    new: pl.DataFrame, y: str, assay: Assay | None = None
) -> tuple[dict[str, list[list[Any]]], list[int]]:
    """``extendData`` payload appending new injections to a run plot's traces.

    The asparagine plot (``y`` "conc", with ``assay``) also has the two out-of-range
    traces after the type traces.
    """
    arrays = _type_arrays(new, y)
    if y == "conc" and assay is not None:
        arrays += _oor_arrays(new, assay)
    payload = {k: [a[k] for a in arrays] for k in ("x", "y", "customdata", "text")}
    return payload, list(range(len(arrays)))


def is_figure(
    series: pl.DataFrame,
    assay: Assay,
    drift_flags: pl.DataFrame | None = None,
    *,
    uirevision: str = "is",
    height: int | None = None,
) -> go.Figure:
    """IS response over the run with its acceptance window and IS_DRIFT marks."""
    lim = assay.limits
    fig = base_figure(go.Figure(), uirevision=uirevision, height=height)
    fig.add_hrect(
        y0=lim.is_low_pct,
        y1=lim.is_high_pct,
        fillcolor=style.BAND_FILL,
        line_width=0,
        layer="below",
    )
    fig.add_hline(y=100, line={"color": style.GREEN, "width": 2})
    for y in (lim.is_low_pct, lim.is_high_pct):
        fig.add_hline(
            y=y,
            line={"color": style.VERMILION, "width": 2, "dash": "dash"},
            annotation_text=f"{y:g} %",
            annotation_position="right",
        )
    _type_traces(fig, series, "is_pct", "%")
    title = "Internal standard response, % of calibrator/QC mean"
    if drift_flags is not None and not drift_flags.is_empty():
        orders = dict(zip(series["injection_id"], series["order"], strict=True))
        latest = ""
        for row in drift_flags.sort("flag_id").iter_rows(named=True):
            d = details(row.get("details"))
            x = orders.get(row["injection_id"])
            rate = row.get("value")
            text = f"▲ IS drift {rate:+.1f} %/inj" if isinstance(rate, float) else "▲ IS drift"
            latest = text
            start = d.get("started_at")
            if isinstance(start, int | float) and x is not None:
                fig.add_vrect(
                    x0=start, x1=x, fillcolor="rgba(230,159,0,0.15)", line_width=0, layer="below"
                )
            if x is not None:
                fig.add_vline(
                    x=x,
                    line={"color": style.ORANGE, "width": 3},
                    annotation_text=text,
                    annotation_position="top left",
                    annotation_font={"size": 16, "color": style.INK},
                )
        if latest:
            title += f" — {latest}"
    top = max([lim.is_high_pct + 30, *[v for v in series["is_pct"].to_list() if v is not None]])
    fig.update_layout(title_text=title)
    fig.update_yaxes(title="IS %", range=[0, min(top * 1.05, 400)])
    fig.update_xaxes(title="injection", rangemode="tozero")
    return fig


def asn_figure(
    series: pl.DataFrame,
    assay: Assay,
    *,
    uirevision: str = "asn",
    height: int | None = None,
) -> go.Figure:
    """Asparagine per injection (log axis), with LLOQ/ULOQ and matrix reference bands."""
    cal = assay.calibration
    fig = base_figure(go.Figure(), uirevision=uirevision, height=height)
    fills = [style.BAND_FILL, "rgba(86,180,233,0.15)", "rgba(204,121,167,0.15)"]
    # Annotations on a log axis take log10 positions (shapes take data values), so the
    # labels are placed by hand rather than through add_hrect/add_hline annotations.
    k = 0
    for m in assay.matrices:
        if m.ref_low is None or m.ref_high is None or m.name.endswith("_pediatric"):
            continue
        fig.add_hrect(
            y0=m.ref_low,
            y1=m.ref_high,
            fillcolor=fills[k % len(fills)],
            line_width=0,
            layer="below",
        )
        _log_label(fig, math.sqrt(m.ref_low * m.ref_high), f"{m.name} ref.", x=0.01, left=True)
        k += 1
    for y, name in ((cal.lloq, "LLOQ"), (cal.uloq, "ULOQ")):
        fig.add_hline(y=y, line={"color": style.VERMILION, "width": 2, "dash": "dash"})
        _log_label(fig, y, f"{name} {y:g}", x=1.0, left=False)
    _type_traces(fig, series, "conc", assay.unit)
    _oor_traces(fig, series, assay)
    n_out = series.filter(pl.col("oor").is_not_null()).height
    fig.update_layout(
        title_text=f"Asparagine, {assay.unit}"
        + (f" — {n_out} outside the curve, drawn at the limit" if n_out else "")
    )
    values = [v for v in series["conc"].to_list() if v is not None and v > 0]
    values += [y for a in _oor_arrays(series, assay) for y in a["y"] if y > 0]
    lo = min([cal.lloq / 2, *values])
    hi = max([cal.uloq * 2, *values])
    fig.update_yaxes(  # one label per decade: "2" and "5" between them are noise from 3 m
        type="log",
        title=assay.unit,
        range=[math.log10(lo) - 0.1, math.log10(hi) + 0.1],
        dtick=1,
    )
    fig.update_xaxes(title="injection", rangemode="tozero")
    return fig


def _log_label(fig: go.Figure, y: float, text: str, *, x: float, left: bool) -> None:
    fig.add_annotation(
        x=x,
        xref="paper",
        y=math.log10(y),
        yref="y",
        text=text,
        showarrow=False,
        xanchor="left" if left else "right",
        yanchor="bottom",
        font={"size": 14, "color": style.GREY},
    )
