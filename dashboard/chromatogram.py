"""The chromatogram view: one injection's peak group, drawn beside its reference.

Shared boundaries, each trace's baseline, the cut where a trace's acquisition
ends and the group's flags on their panel; on each panel what a reviewer reads
first — RT, area in plain numbers (``66,512``, never ``6.65e+04``), S/N, the
ion ratio on the qualifier, Q1→Q3 and the unit. A manually integrated group
shows the automatic boundaries and area beside the manual ones. An injection
that could not be read shows its error text instead of empty panels. Pure
builders of Plotly figures from store frames, like ``dashboard.figures``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboard import style
from dashboard.chromatogram_marks import (
    axis,
    cuts,
    flag_notes,
    flags_by_transition,
    integration,
    shared_bounds,
    shared_lines,
)
from dashboard.figures import base_figure, empty_figure

CHROM_ROLES = ("analyte_quant", "analyte_qual", "is_quant")
AREA_UNIT = "counts·min"  # intensity (counts per second) x minutes, as integrated


@dataclass(frozen=True, slots=True)
class Panel:
    """One row of the view: an injection's traces, peaks and what a reviewer did to them."""

    label: str
    traces: pl.DataFrame
    peaks: pl.DataFrame
    flags: pl.DataFrame | None = None
    auto: pl.DataFrame | None = None  # the automatic integration, when ``peaks`` are manual
    note: str = ""  # "manually integrated by … because …"
    error: str | None = None  # why the file has no traces (READ_ERROR, INCOMPLETE …)


@dataclass(frozen=True, slots=True)
class TransitionInfo:
    """What a panel's title says of its trace."""

    name: str
    q1: float | None
    q3: float | None


def plain(value: float | None) -> str:
    """A number as a person reads it: thousands separators, no exponent ("66,512")."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _as_panel(p: Panel | Sequence[Any]) -> Panel:
    if isinstance(p, Panel):
        return p
    return Panel(p[0], p[1], p[2], p[3] if len(p) > 3 else None)


def _mz(info: TransitionInfo | None) -> str:
    if info is None or info.q1 is None:
        return ""
    return f" {info.q1:g}→{info.q3:g}" if info.q3 is not None else f" {info.q1:g}"


def _title(label: str, role: str, transition: str | None, infos: Mapping[str, Any]) -> str:
    """'S1: Asn quantifier' and, on a second line, its Q1→Q3."""
    info = infos.get(transition or "")
    mz = _mz(info).strip()
    return f"{label}: {style.ROLE_LOOK[role][0]}" + (f"<br>{mz}" if mz else "")


def _role_rows(frame: pl.DataFrame | None) -> dict[str, dict[str, Any]]:
    if frame is None or frame.is_empty() or "role" not in frame.columns:
        return {}
    return {str(r["role"]): r for r in frame.iter_rows(named=True)}


def chromatogram_figure(
    panels: Sequence[Panel | Sequence[Any]],
    *,
    transitions: Mapping[str, TransitionInfo] | None = None,
    share_y: bool = False,
    select: bool = False,
) -> go.Figure:
    """Rows of panels (or (label, traces, peaks[, flags]) tuples): one peak group per row.

    Each column shows its trace, the area shaded above *its own* baseline
    (dashed), the group's shared boundaries (dotted, the same in every column
    of the row), where the trace's acquisition window cuts the peak
    (vermilion), the flags raised on that trace and the peak's numbers. The
    first row is the selected injection; the second, a reference calibrator,
    so an odd peak shape is judged against a known good one. ``share_y``: each
    column's rows on one intensity scale, so an IS at 47 % looks it beside its
    reference. ``select``: a drag selects a time range (for manual bounds).
    """
    if not panels:
        return empty_figure("Click an injection (table row or plot point)", uirevision="chrom")
    rows_ = [_as_panel(p) for p in panels]
    infos = transitions or {}
    titles = []
    for p in rows_:
        roles = _role_rows(p.peaks)
        by_t = _by_transition(p.traces)
        for r in CHROM_ROLES:
            peak = roles.get(r)
            t = peak["transition"] if peak else _transition_for(r, by_t)
            titles.append(_title(p.label, r, t, infos))
    fig = make_subplots(
        rows=len(rows_),
        cols=3,
        subplot_titles=titles,
        horizontal_spacing=0.06,
        vertical_spacing=0.2,
    )
    base_figure(
        fig,
        uirevision="chrom-" + "|".join(p.label for p in rows_) + ("-y" if share_y else ""),
        height=330 * len(rows_) + 60,
    )
    fig.update_layout(showlegend=False, font={"size": 13}, margin={"t": 80})
    if select:
        fig.update_layout(dragmode="select", selectdirection="h")
    fig.update_annotations(font_size=13)
    for row, panel in enumerate(rows_, start=1):
        _draw_row(fig, panel, row, len(rows_), infos)
    if share_y and len(rows_) > 1:
        for col in range(1, 4):
            for row in range(2, len(rows_) + 1):
                fig.update_yaxes(matches=f"y{axis(1, col)}", row=row, col=col)
    for row in range(1, len(rows_) + 1):
        for col in range(1, 4):
            fig.update_yaxes(tickformat="~s", row=row, col=col)
    return fig


def _by_transition(traces: pl.DataFrame) -> dict[str, tuple[list[float], list[float]]]:
    if traces.is_empty():
        return {}
    return {
        str(t): (list(rt), list(inten))
        for t, rt, inten in traces.select("transition", "rt", "intensity").iter_rows()
    }


def _draw_row(
    fig: go.Figure, panel: Panel, row: int, n_rows: int, infos: Mapping[str, TransitionInfo]
) -> None:
    roles = _role_rows(panel.peaks)
    auto = _role_rows(panel.auto)
    by_transition = _by_transition(panel.traces)
    if panel.error and not by_transition:
        _error_text(fig, panel.error, row)
        return
    shared = shared_bounds(roles)
    by_flag = flags_by_transition(panel.flags)
    quant = roles.get("analyte_quant")
    for col, role in enumerate(CHROM_ROLES, start=1):
        name, colour = style.ROLE_LOOK[role]
        peak = roles.get(role)
        transition = peak["transition"] if peak else _transition_for(role, by_transition)
        data = by_transition.get(transition) if transition else None
        if data is None:
            fig.add_annotation(
                text="no trace",
                showarrow=False,
                xref=f"x{axis(row, col)} domain",
                yref=f"y{axis(row, col)} domain",
                x=0.5,
                y=0.5,
            )
            continue
        rt, inten = data
        fig.add_trace(
            go.Scatter(
                x=rt,
                y=inten,
                mode="lines",
                line={"color": colour, "width": 2},
                name=name,
                hovertemplate="%{x:.3f} min, %{y:,.0f} counts<extra></extra>",
            ),
            row=row,
            col=col,
        )
        if shared is not None:
            shared_lines(fig, shared, rt, inten, row, col)
        if peak:
            integration(fig, peak, rt, inten, colour, row, col)
        before = auto.get(role)
        if before is not None and peak is not None:
            _automatic(fig, before, inten, row, col)
        own = by_flag.get(transition or "", [])
        cuts(fig, peak, own if panel.flags is not None else None, rt, inten, row, col)
        flag_notes(fig, own + (by_flag.get("", []) if col == 1 else []), row, col)
        _numbers(fig, peak, before, quant if role == "analyte_qual" else None, row, col)
        fig.update_xaxes(title_text="min" if row == n_rows else None, row=row, col=col)
    if panel.note:
        fig.add_annotation(
            text="✎ " + panel.note,
            showarrow=False,
            xref=f"x{axis(row, 1)} domain",
            yref=f"y{axis(row, 1)} domain",
            x=0.0,
            y=-0.22,
            xanchor="left",
            yanchor="top",
            font={"size": 12, "color": style.VERMILION},
        )


def _error_text(fig: go.Figure, error: str, row: int) -> None:
    """The reason a file has no chromatograms, where its panels would be."""
    wrapped = "<br>".join(textwrap.wrap(error, 90)[:6])
    for col in range(1, 4):
        fig.update_xaxes(visible=False, row=row, col=col)
        fig.update_yaxes(visible=False, row=row, col=col)
    fig.add_annotation(
        text=f"✖ No chromatograms: {wrapped}",
        showarrow=False,
        xref=f"x{axis(row, 2)} domain",
        yref=f"y{axis(row, 2)} domain",
        x=0.5,
        y=0.5,
        align="left",
        font={"size": 15, "color": style.VERMILION},
        bgcolor="rgba(213,94,0,0.06)",
        bordercolor=style.VERMILION,
    )


def _numbers(
    fig: go.Figure,
    peak: Mapping[str, Any] | None,
    auto: Mapping[str, Any] | None,
    quant: Mapping[str, Any] | None,
    row: int,
    col: int,
) -> None:
    """RT, area, S/N (and the ion ratio on the qualifier), top left of the panel."""
    if not peak:
        lines = ["no peak"]
    else:
        lines = [
            f"RT {_num(peak.get('apex_rt'), '.3f')} min",
            f"area {plain(_f(peak.get('area')))} {AREA_UNIT}",
            f"S/N {plain(_f(peak.get('sn')))}",
        ]
        q_area = _f(quant.get("area")) if quant else None
        area = _f(peak.get("area"))
        if q_area and area is not None:
            lines.append(f"ion ratio {area / q_area:.3f}")
        if auto:
            lines.append(
                f"automatic: {plain(_f(auto.get('area')))} "
                f"({_num(auto.get('start_rt'), '.3f')}–{_num(auto.get('end_rt'), '.3f')} min)"
            )
    fig.add_annotation(
        text="<br>".join(lines),
        showarrow=False,
        align="left",
        xref=f"x{axis(row, col)} domain",
        yref=f"y{axis(row, col)} domain",
        x=0.01,
        y=0.99,
        xanchor="left",
        yanchor="top",
        font={"size": 11, "color": style.INK},
        bgcolor="rgba(255,255,255,0.8)",
    )


def _f(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _num(value: object, fmt: str) -> str:
    v = _f(value)
    return "—" if v is None else format(v, fmt)


def _automatic(
    fig: go.Figure, auto: Mapping[str, Any], inten: Sequence[float], row: int, col: int
) -> None:
    """The automatic boundaries (grey, long dashes) beside a manual integration."""
    s, e = _f(auto.get("start_rt")), _f(auto.get("end_rt"))
    if s is None or e is None or not inten:
        return
    lo, hi = min(inten), max(inten)
    fig.add_trace(
        go.Scatter(
            x=[s, s, None, e, e],
            y=[lo, hi, None, lo, hi],
            mode="lines",
            line={"color": style.GREY, "width": 1.5, "dash": "longdash"},
            name="automatic integration",
            hovertemplate="automatic boundary %{x:.3f} min, area "
            + plain(_f(auto.get("area")))
            + "<extra></extra>",
        ),
        row=row,
        col=col,
    )


def _transition_for(role: str, by_transition: Mapping[str, Any]) -> str | None:
    """Without a peak row the role is unknown; guess from the simulator's/assay's naming."""
    key = {"analyte_quant": "quant", "analyte_qual": "qual", "is_quant": "is"}[role]
    for t in by_transition:
        low = t.lower()
        if role == "is_quant" and low.startswith("is") and "qual" not in low:
            return t
        if role != "is_quant" and not low.startswith("is") and key in low:
            return t
    return None
