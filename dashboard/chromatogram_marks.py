"""What the chromatogram view draws on a panel besides the trace itself.

The integrated area above its baseline, the group's shared boundaries, the cut
where a trace's acquisition window ends on its peak (from PEAK_TRUNCATED), and
the panel's own flags. Split from ``dashboard.chromatogram`` (the layout and
the numbers); pure builders on a Plotly figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl

from dashboard import style
from dashboard.tables import details

CUT_COLOUR = style.VERMILION


def shared_bounds(roles: Mapping[str, Mapping[str, Any]]) -> tuple[float, float] | None:
    """The group's boundaries: the quantifiers', which group integration makes one."""
    for role in ("is_quant", "analyte_quant"):
        p = roles.get(role)
        if p and p.get("start_rt") is not None and p.get("end_rt") is not None:
            return float(p["start_rt"]), float(p["end_rt"])
    return None


def shared_lines(
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


def flags_by_transition(flags: pl.DataFrame | None) -> dict[str, list[dict[str, Any]]]:
    """An injection's flags by the transition they name ('' for the whole injection)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if flags is None or flags.is_empty():
        return out
    for f in flags.iter_rows(named=True):
        d = details(f.get("details"))
        out.setdefault(str(d.get("transition") or ""), []).append({**f, "details": d})
    return out


def cuts(
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
            xref=f"x{axis(row, col)}",
            yref=f"y{axis(row, col)} domain",
            text="acquisition<br>ends",
            showarrow=False,
            xanchor="right" if x >= rt[-1] - 1e-6 else "left",
            font={"size": 11, "color": CUT_COLOUR},
        )


def flag_notes(fig: go.Figure, flags: Sequence[Mapping[str, Any]], row: int, col: int) -> None:
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
        xref=f"x{axis(row, col)} domain",
        yref=f"y{axis(row, col)} domain",
        x=0.99,
        y=0.9,
        xanchor="right",
        yanchor="top",
        font={"size": 11, "color": style.INK},
        bgcolor="rgba(255,255,255,0.8)",
    )


def axis(row: int, col: int) -> str:
    n = (row - 1) * 3 + col
    return "" if n == 1 else str(n)


def integration(
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
