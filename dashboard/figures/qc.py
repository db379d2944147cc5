"""Levey-Jennings charts per QC level with the Westgard violations marked."""

from __future__ import annotations

import math
from collections.abc import Mapping

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from asnmon.westgard import GuideSet, QcPoint, evaluate_westgard, guide_set
from dashboard import style
from dashboard.figures.base import base_figure, empty_figure
from dashboard.tables import details


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
