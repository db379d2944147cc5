"""The chromatogram view: one injection's peak group, drawn beside its reference.

Shared boundaries, each trace's baseline, the cut where a trace's acquisition
ends and the group's flags on their panel. A pure builder of Plotly figures from
store frames, like ``dashboard.figures``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from dashboard import style
from dashboard.figures import base_figure, empty_figure
from dashboard.tables import details

CHROM_ROLES = ("analyte_quant", "analyte_qual", "is_quant")
CUT_COLOUR = style.VERMILION


def chromatogram_figure(
    panels: Sequence[tuple[Any, ...]],
) -> go.Figure:
    """Rows of (label, traces, peaks[, flags]): one peak group per row, a column per trace.

    Each column shows its trace, the area shaded above *its own* baseline
    (dashed), the group's shared boundaries (dotted, the same in every column
    of the row), where the trace's acquisition window cuts the peak
    (vermilion), and the flags raised on that trace. The first row is the
    selected injection; the second, a reference calibrator, so an odd peak
    shape is judged against a known good one.
    """
    if not panels:
        return empty_figure("Click an injection (table row or plot point)", uirevision="chrom")
    titles = [f"{p[0]}: {style.ROLE_LOOK[r][0]}" for p in panels for r in CHROM_ROLES]
    fig = make_subplots(
        rows=len(panels),
        cols=3,
        subplot_titles=titles,
        horizontal_spacing=0.06,
        vertical_spacing=0.16,
    )
    base_figure(
        fig, uirevision="chrom-" + "|".join(p[0] for p in panels), height=300 * len(panels) + 60
    )
    fig.update_layout(showlegend=False, font={"size": 13}, margin={"t": 60})
    fig.update_annotations(font_size=14)
    for row, panel in enumerate(panels, start=1):
        traces, peaks = panel[1], panel[2]
        flags = panel[3] if len(panel) > 3 else None
        roles = (
            dict(zip(peaks["role"].to_list(), peaks.iter_rows(named=True), strict=True))
            if not peaks.is_empty()
            else {}
        )
        by_transition = {
            t: (rt, inten)
            for t, rt, inten in (
                traces.select("transition", "rt", "intensity").iter_rows()
                if not traces.is_empty()
                else []
            )
        }
        shared = _shared_bounds(roles)
        by_flag = _flags_by_transition(flags)
        for col, role in enumerate(CHROM_ROLES, start=1):
            name, colour = style.ROLE_LOOK[role]
            peak = roles.get(role)
            transition = peak["transition"] if peak else _transition_for(role, by_transition)
            data = by_transition.get(transition) if transition else None
            if data is None:
                fig.add_annotation(
                    text="no trace",
                    showarrow=False,
                    xref=f"x{_axis(row, col)} domain",
                    yref=f"y{_axis(row, col)} domain",
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
                    hovertemplate="%{x:.3f} min, %{y:.3g}<extra></extra>",
                ),
                row=row,
                col=col,
            )
            if shared is not None:
                _shared_lines(fig, shared, rt, inten, row, col)
            if peak:
                _integration(fig, peak, rt, inten, colour, row, col)
            own = by_flag.get(transition or "", [])
            _cuts(fig, peak, own if flags is not None else None, rt, inten, row, col)
            _flag_notes(fig, own + (by_flag.get("", []) if col == 1 else []), row, col)
            fig.update_xaxes(title_text="min" if row == len(panels) else None, row=row, col=col)
    return fig


def _shared_bounds(roles: Mapping[str, Mapping[str, Any]]) -> tuple[float, float] | None:
    """The group's boundaries: the quantifiers', which group integration makes one."""
    for role in ("is_quant", "analyte_quant"):
        p = roles.get(role)
        if p and p.get("start_rt") is not None and p.get("end_rt") is not None:
            return float(p["start_rt"]), float(p["end_rt"])
    return None


def _shared_lines(
    fig: go.Figure,
    bounds: tuple[float, float],
    rt: Sequence[float],
    inten: Sequence[float],
    row: int,
    col: int,
) -> None:
    """Dotted verticals at the shared boundaries, as one hoverable trace."""
    if not inten:
        return
    lo, hi = min(inten), max(inten)
    xs: list[float | None] = []
    ys: list[float | None] = []
    for x in bounds:
        xs += [x, x, None]
        ys += [lo, hi, None]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            line={"color": style.GREY, "width": 1, "dash": "dot"},
            name="shared boundaries",
            hovertemplate="shared boundary %{x:.3f} min<extra></extra>",
        ),
        row=row,
        col=col,
    )


def _flags_by_transition(flags: pl.DataFrame | None) -> dict[str, list[dict[str, Any]]]:
    """An injection's flags by the transition they name ('' for the whole injection)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if flags is None or flags.is_empty():
        return out
    for f in flags.iter_rows(named=True):
        d = details(f.get("details"))
        out.setdefault(str(d.get("transition") or ""), []).append({**f, "details": d})
    return out


def _cuts(
    fig: go.Figure,
    peak: Mapping[str, Any] | None,
    flags: Sequence[Mapping[str, Any]] | None,
    rt: Sequence[float],
    inten: Sequence[float],
    row: int,
    col: int,
) -> None:
    """A vermilion vertical where this trace's acquisition window cuts its peak.

    From the trace's PEAK_TRUNCATED flag; without any flags to go by (``None``),
    a truncated peak that ends on the first/last stored point.
    """
    where = [
        float(f["details"]["cut_rt"])
        for f in flags or ()
        if f.get("code") == "PEAK_TRUNCATED" and f["details"].get("cut_rt") is not None
    ]
    if flags is None and peak and peak.get("truncated") and rt:
        for x in (peak.get("start_rt"), peak.get("end_rt")):
            if x is not None and (abs(x - rt[0]) < 1e-6 or abs(x - rt[-1]) < 1e-6):
                where.append(float(x))
    if not where or not inten:
        return
    lo, hi = min(inten), max(inten)
    for x in where:
        fig.add_trace(
            go.Scatter(
                x=[x, x],
                y=[lo, hi],
                mode="lines",
                line={"color": CUT_COLOUR, "width": 2.5},
                name="acquisition ends",
                hovertemplate="acquisition window ends %{x:.3f} min<extra></extra>",
            ),
            row=row,
            col=col,
        )
        fig.add_annotation(
            x=x,
            y=0.5,
            xref=f"x{_axis(row, col)}",
            yref=f"y{_axis(row, col)} domain",
            text="acquisition<br>ends",
            showarrow=False,
            xanchor="right" if x >= rt[-1] - 1e-6 else "left",
            font={"size": 11, "color": CUT_COLOUR},
        )


def _flag_notes(fig: go.Figure, flags: Sequence[Mapping[str, Any]], row: int, col: int) -> None:
    """The flags raised on this trace, icon + code + the numbers that matter, top right."""
    lines = []
    for f in sorted(flags, key=lambda f: -style.SEVERITY_RANK.get(str(f.get("severity")), 0)):
        if f.get("severity") == "info":
            continue
        look = style.severity(f.get("severity"))
        d = f["details"]
        extra = ""
        if f.get("code") == "PEAK_TRUNCATED" and d.get("pct_of_apex") is not None:
            extra = f" {d.get('side', '')}, {float(d['pct_of_apex']):.0f} % of apex"
        elif f.get("code") == "COELUTION" and f.get("value") is not None:
            extra = f" {d.get('kind', '')} {float(f['value']):.3g}"
        lines.append(f"{look.icon} {f.get('code')}{extra}")
    if not lines:
        return
    fig.add_annotation(
        text="<br>".join(lines[:4]),
        showarrow=False,
        align="left",
        xref=f"x{_axis(row, col)} domain",
        yref=f"y{_axis(row, col)} domain",
        x=0.99,
        y=0.9,
        xanchor="right",
        yanchor="top",
        font={"size": 11, "color": style.INK},
        bgcolor="rgba(255,255,255,0.8)",
    )


def _axis(row: int, col: int) -> str:
    n = (row - 1) * 3 + col
    return "" if n == 1 else str(n)


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


def _integration(
    fig: go.Figure,
    peak: Mapping[str, Any],
    rt: Sequence[float],
    inten: Sequence[float],
    colour: str,
    row: int,
    col: int,
) -> None:
    """Shade the integrated area above the straight baseline; mark the boundaries."""
    s, e = peak["start_rt"], peak["end_rt"]
    b0, b1 = peak["baseline_start"], peak["baseline_end"]
    if s is None or e is None:
        return
    inside = [(x, y) for x, y in zip(rt, inten, strict=False) if s <= x <= e]
    if inside and b0 is not None and b1 is not None and e > s:
        xs = [x for x, _ in inside]
        base = [b0 + (b1 - b0) * (x - s) / (e - s) for x in xs]
        fig.add_trace(
            go.Scatter(
                x=xs + xs[::-1],
                y=[y for _, y in inside] + base[::-1],
                fill="toself",
                fillcolor="rgba(0,0,0,0.10)",
                line={"width": 0},
                hoverinfo="skip",
            ),
            row=row,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=[s, e],
                y=[b0, b1],
                mode="lines+markers",
                line={"color": style.BLACK, "width": 1.5, "dash": "dash"},
                marker={"symbol": "line-ns-open", "size": 14, "color": style.BLACK},
                hovertemplate="baseline<extra></extra>",
            ),
            row=row,
            col=col,
        )
    area = peak.get("area")
    apex = peak.get("apex_rt")
    if isinstance(area, float) and isinstance(apex, float):
        fig.add_annotation(
            x=apex,
            y=1.0,
            yref=f"y{_axis(row, col)} domain",
            xref=f"x{_axis(row, col)}",
            text=f"area {area:.3g}",
            showarrow=False,
            font={"size": 12, "color": colour},
        )
