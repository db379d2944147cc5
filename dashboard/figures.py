"""Figure builders: pure functions from store frames (polars) to Plotly figures.

No database, no Dash: each builder is tested without a browser. The two run
plots keep one trace per sample type in ``style.SAMPLE_TYPES`` order, so the
live view can append new injections with ``extendData`` (``run_extension``)
instead of shipping whole figures every second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from asnmon.assay import Assay
from asnmon.westgard import GuideSet, QcPoint, evaluate_westgard, guide_set
from dashboard import style
from dashboard.tables import details, is_reference

BIG = 18  # base font px: the run plots are read from across a room
CAL_LEVEL_TOLERANCE = 15.0


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


# ---------------------------------------------------------------- run series


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
    fig.update_yaxes(
        type="log", title=assay.unit, range=[math.log10(lo) - 0.1, math.log10(hi) + 0.1]
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


# ---------------------------------------------------------------- calibration


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


# ---------------------------------------------------------------- QC


def levey_jennings_figure(
    results: pl.DataFrame,
    flags: pl.DataFrame | None = None,
    guides: Mapping[str, GuideSet] | None = None,
) -> go.Figure:
    """Per QC level: accuracy % in run order with mean ± 1/2/3 SD and Westgard violations.

    ``guides``: the guide set per level the QC rules judge against (other runs); a
    level without one falls back to the run's own QCs (a within-run chart, said in
    its title). Stored WESTGARD_* flags are marked as well.
    """
    qc = (
        results.filter((pl.col("sample_type") == "qc") & pl.col("accuracy_pct").is_not_null())
        .sort("injection_id")
        .with_row_index("n", offset=1)
        if not results.is_empty()
        else results
    )
    if qc.is_empty():
        return empty_figure("No QC results yet", uirevision="lj")
    levels = sorted(set(qc["level"].fill_null("?").to_list()))
    chosen = {level: (guides or {}).get(level) for level in levels}
    titles = [
        f"{level}: guide {g.basis}, n = {g.n}" + (" (< 5 points)" if g.small else "")
        if (g := chosen[level]) is not None
        else f"{level}: within this run"
        for level in levels
    ]
    fig = make_subplots(
        rows=len(levels), cols=1, shared_xaxes=False, subplot_titles=titles, vertical_spacing=0.12
    )
    base_figure(fig, uirevision="lj", height=260 * len(levels) + 60)
    stored = (
        flags.filter(pl.col("code").str.starts_with("WESTGARD"))
        if flags is not None and not flags.is_empty()
        else None
    )
    for row, level in enumerate(levels, start=1):
        part = qc.filter(pl.col("level").fill_null("?") == level)
        values = part["accuracy_pct"].to_list()
        ids = part["injection_id"].to_list()
        xs = list(range(1, len(values) + 1))
        points = [QcPoint("run", f"{i:09d}", level, v) for i, v in zip(ids, values, strict=True)]
        guide = chosen[level] or guide_set(points, level)
        if guide is not None and guide.sd > 0:
            # One trace for all the SD lines: add_hline per line costs ~10 ms each.
            right = len(values) + 0.5
            levels_y = [guide.mean + k * guide.sd for k in (-3, -2, -1, 0, 1, 2, 3)]
            lx: list[float | None] = []
            ly: list[float | None] = []
            for y in levels_y:
                lx += [0.5, right, None]
                ly += [y, y, None]
            fig.add_trace(
                go.Scatter(
                    x=lx,
                    y=ly,
                    mode="lines",
                    line={"color": style.GREY, "width": 1.2, "dash": "dash"},
                    hoverinfo="skip",
                    showlegend=False,
                    name="SD lines",
                ),
                row=row,
                col=1,
            )
            fig.add_trace(
                go.Scatter(
                    x=[right] * 7,
                    y=levels_y,
                    mode="text",
                    text=["−3 SD", "−2 SD", "−1 SD", "mean", "+1 SD", "+2 SD", "+3 SD"],
                    textposition="middle right",
                    textfont={"size": 12, "color": style.GREY},
                    hoverinfo="skip",
                    showlegend=False,
                    name="SD labels",
                ),
                row=row,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=values,
                mode="lines+markers",
                name=level,
                text=part["sample_id"].to_list(),
                customdata=ids,
                marker={"color": style.BLUE, "size": 10, "symbol": "diamond"},
                line={"color": style.GREY, "width": 1},
                showlegend=False,
                hovertemplate="%{text}: %{y:.1f} %<extra></extra>",
            ),
            row=row,
            col=1,
        )
        bad: dict[int, set[str]] = {}
        if guide is not None and guide.sd > 0:
            index = {p: i for i, p in enumerate(points)}
            for v in evaluate_westgard(points, guide):
                bad.setdefault(index[v.point], set()).add(v.rule.removeprefix("WESTGARD_"))
        if stored is not None:
            for f in stored.iter_rows(named=True):
                if details(f.get("details")).get("level") != level or f.get("value") is None:
                    continue
                for i, v in enumerate(values):
                    if math.isclose(v, f["value"], rel_tol=1e-9):
                        bad.setdefault(i, set()).add(f["code"].removeprefix("WESTGARD_"))
        if bad:
            idx = sorted(bad)
            fig.add_trace(
                go.Scatter(
                    x=[xs[i] for i in idx],
                    y=[values[i] for i in idx],
                    mode="markers+text",
                    text=[" ".join(sorted(bad[i])) for i in idx],
                    textposition="top center",
                    marker={
                        "color": style.VERMILION,
                        "size": 16,
                        "symbol": "x",
                        "line": {"width": 2},
                    },
                    name="Westgard",
                    showlegend=False,
                    hovertemplate="%{text}<extra>Westgard</extra>",
                ),
                row=row,
                col=1,
            )
        fig.update_xaxes(title="QC number in run", row=row, col=1, dtick=1)
        fig.update_yaxes(title="accuracy %", row=row, col=1)
    return fig


# ---------------------------------------------------------------- pools


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
