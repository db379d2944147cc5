"""The post-run report: one self-contained HTML file that prints cleanly to PDF.

Why HTML and not PDF directly: a browser prints it (Ctrl-P) with the print CSS
below (A4, page breaks between sections, no toolbars), and the same file opens
offline on any lab PC -- plotly.js is inlined once, figures are static
(``staticPlot``), so nothing depends on hovering.

Builders are pure functions from polars frames (the store's read methods'
shapes) to figures or HTML fragments, testable without a browser;
``write_report`` only reads the store and assembles them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from asnmon.assay import Assay, load_assay
from asnmon.westgard import GuideSet, QcPoint, evaluate_westgard, guide_set, qc_points

WIDTH, HEIGHT = 900, 380  # px: fits A4 portrait at the print scale below
_CONFIG = {"staticPlot": True, "displayModeBar": False}
SEVERITY_COLOUR = {"fail": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
.fail { color: #c62828; font-weight: bold; } .warning { color: #ef6c00; }
.info { color: #1565c0; } .pass { color: #2e7d32; font-weight: bold; }
section { page-break-inside: avoid; }
.figure { width: 900px; }
@page { size: A4; margin: 12mm; }
@media print {
  body { margin: 0; font-size: 10pt; }
  section.break { page-break-before: always; }
  .figure { zoom: 0.75; }
  tr { page-break-inside: avoid; }
}
"""


def _esc(x: object) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if not np.isfinite(x) else f"{x:.4g}"
    return html.escape(str(x))


def table_html(df: pl.DataFrame, columns: Sequence[str], classes: str | None = None) -> str:
    """A plain HTML table of ``columns``; a ``severity`` or ``verdict`` column colours its row."""
    cols = [c for c in columns if c in df.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for rec in df.select(cols).iter_rows(named=True):
        cls = rec.get("severity") or rec.get("verdict") or classes or ""
        cells = "".join(f"<td>{_esc(rec[c])}</td>" for c in cols)
        rows.append(f'<tr class="{_esc(cls)}">{cells}</tr>')
    if not rows:
        return "<p>None.</p>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _layout(fig: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title=title,
        width=WIDTH,
        height=height,
        template="simple_white",
        margin={"l": 70, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def calibration_figure(points: pl.DataFrame, calibration: dict[str, Any]) -> go.Figure:
    """Curve with its standards (excluded ones hollow) and the back-calculated residuals."""
    fig = make_subplots(rows=2, cols=1, row_heights=[0.65, 0.35], vertical_spacing=0.12)
    pts = points.filter(pl.col("nominal") > 0) if points.height else points
    if pts.height:
        used = pts.filter(~pl.col("excluded").fill_null(False))
        excl = pts.filter(pl.col("excluded").fill_null(False))
        for part, name, symbol in ((used, "standards", "circle"), (excl, "excluded", "x")):
            if part.height:
                fig.add_trace(
                    go.Scatter(
                        x=part["nominal"].to_list(),
                        y=part["area_ratio"].to_list(),
                        mode="markers",
                        name=name,
                        marker={"symbol": symbol, "size": 8},
                    ),
                    row=1,
                    col=1,
                )
                fig.add_trace(
                    go.Scatter(
                        x=part["nominal"].to_list(),
                        y=(part["accuracy_pct"] - 100).to_list(),
                        mode="markers",
                        name=f"{name} residual",
                        marker={"symbol": symbol, "size": 8},
                        showlegend=False,
                    ),
                    row=2,
                    col=1,
                )
        lo, hi = float(pts["nominal"].min()), float(pts["nominal"].max())  # type: ignore[arg-type]
        xs = np.geomspace(max(lo, 1e-9), hi, 200)
        c0, c1, c2 = (float(calibration.get(k) or 0.0) for k in ("c0", "c1", "c2"))
        fig.add_trace(
            go.Scatter(x=xs, y=c0 + c1 * xs + c2 * xs**2, mode="lines", name="fit"),
            row=1,
            col=1,
        )
        for y in (-15, 15, 0):
            fig.add_hline(y=y, line_dash="dot" if y else "solid", line_color="#888", row=2, col=1)
    fig.update_xaxes(type="log", title_text="nominal concentration", row=2, col=1)
    fig.update_xaxes(type="log", row=1, col=1)
    fig.update_yaxes(title_text="area ratio", row=1, col=1)
    fig.update_yaxes(title_text="deviation %", row=2, col=1)
    title = (
        f"Calibration v{calibration.get('version')}: {calibration.get('model')}, "
        f"{calibration.get('weighting')}, r² = {float(calibration.get('r2') or 0):.4f}, "
        f"{'accepted' if calibration.get('accepted') else 'REJECTED'}"
    )
    return _layout(fig, title, 520)


def is_response_figure(results: pl.DataFrame, low_pct: float, high_pct: float) -> go.Figure:
    """IS area over the run, with the 50-150 % window around the final cal/QC mean."""
    df = results.filter(pl.col("is_area").is_not_null()).with_row_index("order")
    ref_rows = df.filter(pl.col("sample_type").is_in(["calibrator", "qc"]))
    ref = float(ref_rows["is_area"].mean()) if ref_rows.height else None  # type: ignore[arg-type]
    fig = go.Figure()
    x_col = "position" if df.height and df["position"].null_count() == 0 else "order"
    for stype in ("calibrator", "qc", "sample", "zero"):
        part = df.filter(pl.col("sample_type") == stype)
        if part.height:
            fig.add_trace(
                go.Scatter(
                    x=part[x_col].to_list(),
                    y=part["is_area"].to_list(),
                    mode="markers",
                    name=stype,
                    text=part["sample_id"].to_list(),
                )
            )
    if ref:
        for pct, dash in ((low_pct, "dash"), (100.0, "solid"), (high_pct, "dash")):
            fig.add_hline(
                y=ref * pct / 100,
                line_dash=dash,
                line_color="#c62828" if pct != 100 else "#888",
                annotation_text=f"{pct:g} %",
            )
    fig.update_xaxes(title_text="injection")
    fig.update_yaxes(title_text="IS area", rangemode="tozero")
    return _layout(fig, "Internal standard response (window: % of the cal/QC mean)")


def levey_jennings_figure(points: Sequence[QcPoint], guide: GuideSet, run_id: str) -> go.Figure:
    """One QC level across runs: mean ± 1/2/3 SD of the guide set, violations marked."""
    pts = sorted(
        (p for p in points if p.level == guide.level), key=lambda p: (p.acquired, p.run_id)
    )
    viol = {id(v.point): v.rule for v in evaluate_westgard(pts, guide) if v.rule}
    fig = go.Figure()
    x = list(range(1, len(pts) + 1))
    colours = [
        "#c62828" if id(p) in viol else ("#1565c0" if p.run_id == run_id else "#555") for p in pts
    ]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[p.value for p in pts],
            mode="lines+markers",
            name=guide.level,
            marker={"color": colours, "size": 7},
            line={"color": "#aaa"},
            text=[f"{p.run_id} {viol.get(id(p), '')}" for p in pts],
        )
    )
    for k in (-3, -2, -1, 0, 1, 2, 3):
        fig.add_hline(
            y=guide.mean + k * guide.sd,
            line_dash="solid" if k == 0 else "dot",
            line_color="#c62828" if abs(k) == 3 else "#ef6c00" if abs(k) == 2 else "#888",
            annotation_text=f"{k:+d} SD" if k else "mean",
        )
    small = " (guide set < 5 points: SD uncertain)" if guide.small else ""
    fig.update_xaxes(title_text="QC injection (acquisition order across runs)")
    fig.update_yaxes(title_text="value")
    return _layout(
        fig, f"Levey-Jennings {guide.level}: guide {guide.basis}, n = {guide.n}{small}", 340
    )


def figure_html(fig: go.Figure, include_js: bool) -> str:
    body = fig.to_html(full_html=False, include_plotlyjs=include_js, config=_CONFIG)
    return f'<div class="figure">{body}</div>'


def build_report_html(
    run: dict[str, Any],
    results_all: pl.DataFrame,
    flags: pl.DataFrame,
    calibration: dict[str, Any] | None,
    cal_points: pl.DataFrame,
    assay: Assay,
    guide_runs: Sequence[str] | None = None,
) -> str:
    """The whole document from frames; ``guide_runs`` None: all other runs (or this one)."""
    run_id = str(run["run_id"])
    results = results_all.filter(pl.col("run_id") == run_id)
    first = True

    def fig(f: go.Figure) -> str:
        nonlocal first
        out = figure_html(f, include_js=first)
        first = False
        return out

    verdict = str(run.get("verdict") or "pending")
    parts = [
        f"<h1>asnmon run report: {_esc(run.get('name') or run_id)}</h1>",
        f"<p>Run <b>{_esc(run_id)}</b>, assay {_esc(assay.name)}; {results.height} injections; "
        f"generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>",
        f'<p>Verdict: <span class="{_esc(verdict.replace(" ", "-"))} '
        f'{"fail" if verdict == "fail" else "pass" if verdict == "pass" else "warning"}">'
        f"{_esc(verdict.upper())}</span> - {_esc(run.get('verdict_reason'))}</p>",
        "<section><h2>Calibration</h2>",
    ]
    if calibration is not None:
        parts.append(fig(calibration_figure(cal_points, calibration)))
        parts.append(f"<p>{_esc(calibration.get('reason'))}</p>")
        excl = cal_points.filter(pl.col("excluded").fill_null(False) & (pl.col("nominal") > 0))
        if excl.height:
            parts.append("<p>Excluded standards:</p>")
            parts.append(
                table_html(excl, ["sample_id", "level", "nominal", "accuracy_pct", "reason"])
            )
    else:
        parts.append("<p>No calibration curve was fitted in this run.</p>")
    parts.append("</section>")

    qc = results.filter(pl.col("sample_type") == "qc")
    parts.append('<section class="break"><h2>Quality controls</h2>')
    parts.append(
        table_html(
            qc,
            [
                "position",
                "sample_id",
                "level",
                "nominal",
                "conc_vial",
                "accuracy_pct",
                "status",
                "flags",
            ],
        )
    )
    pts = qc_points(results_all)
    others = sorted({p.run_id for p in pts if p.run_id != run_id})
    for level in sorted({p.level for p in pts}):
        runs = list(guide_runs) if guide_runs is not None else (others or [run_id])
        guide = guide_set(pts, level, runs=runs)
        if guide is None:
            parts.append(f"<p>{_esc(level)}: too few points for a guide set.</p>")
            continue
        parts.append(fig(levey_jennings_figure(pts, guide, run_id)))
    parts.append("</section>")

    parts.append('<section class="break"><h2>Internal standard</h2>')
    parts.append(
        fig(is_response_figure(results, assay.limits.is_low_pct, assay.limits.is_high_pct))
    )
    parts.append("</section>")

    parts.append('<section class="break"><h2>Flags</h2>')
    run_flags = flags.filter(pl.col("injection_id").is_null()) if flags.height else flags
    inj_flags = flags.filter(pl.col("injection_id").is_not_null()) if flags.height else flags
    parts.append("<h3>Run</h3>")
    parts.append(table_html(run_flags, ["code", "severity", "message", "action"]))
    parts.append("<h3>Injections</h3>")
    if inj_flags.height:
        inj_flags = inj_flags.sort(["position", "flag_id"], nulls_last=True)
    parts.append(
        table_html(
            inj_flags,
            ["position", "sample_id", "code", "severity", "message", "action", "acks"],
        )
    )
    parts.append("</section>")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>asnmon report {_esc(run_id)}</title><style>{CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )


def write_report(
    store: Any,
    run_id: str,
    out: Path,
    *,
    assay: Assay | None = None,
    guide_runs: Sequence[str] | None = None,
) -> Path:
    """Write the run's report to ``out`` (a file, or a directory: ``<run_id>_report.html``)."""
    out = Path(out)
    if out.is_dir():
        out = out / f"{run_id}_report.html"
    assay = assay or load_assay()
    runs = store.runs()
    match = runs.filter(pl.col("run_id") == run_id)
    if match.height == 0:
        raise ValueError(f"no run {run_id!r} in {store.path}")
    run = match.row(0, named=True)
    cals = store.calibrations(run_id)
    calibration = cals.row(cals.height - 1, named=True) if cals.height else None
    cal_points = (
        store.calibration_points(int(calibration["calibration_id"]))
        if calibration is not None
        else pl.DataFrame()
    )
    doc = build_report_html(
        run, store.results(), store.flags(run_id), calibration, cal_points, assay, guide_runs
    )
    out.write_text(doc, encoding="utf-8")
    return out


__all__ = [
    "build_report_html",
    "calibration_figure",
    "is_response_figure",
    "levey_jennings_figure",
    "table_html",
    "write_report",
]
