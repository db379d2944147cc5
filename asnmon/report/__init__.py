"""The post-run report, which is the run's record: one self-contained HTML file.

Why HTML and not PDF directly: a browser prints it (Ctrl-P, or ``asnmon report
--pdf`` through headless Chromium) with the print stylesheet (A4, a footer with
the run and "page N of M" on every page, nothing split), and the same file opens
offline on any lab PC — plotly.js is inlined once and figures are static.

What it holds (README "The report"): every injection's result, the calibration
curve on linear axes with its deviations and limits, the QC table and
Levey-Jennings charts, the IS response with its window, every flag with its
acknowledgements, every change a person made (from the audit trail), the
signatures and the lock, and optionally one chromatogram page per injection.

Modules: ``data`` reads the store (the only part that does), ``format`` holds
the rounding and the column names people read, ``figures`` the plotly
builders, ``sections``/``record`` the HTML of each part, ``html`` the
stylesheet and tables, ``pdf`` the Chromium print.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asnmon.assay import Assay, load_assay
from asnmon.report.data import ReportData, load_report_data
from asnmon.report.figures import (
    calibration_figure,
    chromatogram_figure,
    is_response_figure,
    levey_jennings_figure,
)
from asnmon.report.html import Figures, document, table_html
from asnmon.report.record import (
    audit_section,
    chromatogram_pages,
    flags_section,
    signatures_section,
)
from asnmon.report.sections import (
    calibration_section,
    header,
    is_section,
    qc_section,
    results_section,
)


def build_report_html(data: ReportData) -> str:
    """The whole document from the run's record (no store access)."""
    fig = Figures()
    body = [
        header(data),
        results_section(data),
        calibration_section(data, fig),
        qc_section(data, fig),
        is_section(data, fig),
        flags_section(data),
        audit_section(data),
        signatures_section(data),
        chromatogram_pages(data, fig),
    ]
    name = str(data.run.get("name") or data.run_id)
    footer = f"asnmon run report: {name} — generated {data.generated_at:%Y-%m-%d %H:%M} UTC"
    return document(f"asnmon report {name}", footer, body)


def report_path(out: Path, run_id: str) -> Path:
    """``out`` itself, or ``<run>_report.html`` inside it when it is a folder."""
    out = Path(out)
    if out.is_dir():
        from asnmon.store import Store

        return out / f"{Store.archive_folder_name(run_id)}_report.html"
    return out


def write_report(
    store: Any,
    run_id: str,
    out: Path,
    *,
    assay: Assay | None = None,
    guide_runs: Sequence[str] | None = None,
    chromatograms: bool = False,
) -> Path:
    """Write the run's report to ``out`` (a file, or a folder: ``<run>_report.html``)."""
    data = load_report_data(
        store,
        run_id,
        assay or load_assay(),
        guide_runs=tuple(guide_runs) if guide_runs is not None else None,
        chromatograms=chromatograms,
    )
    path = report_path(out, run_id)
    path.write_text(build_report_html(data), encoding="utf-8")
    return path


__all__ = [
    "ReportData",
    "build_report_html",
    "calibration_figure",
    "chromatogram_figure",
    "is_response_figure",
    "levey_jennings_figure",
    "load_report_data",
    "table_html",
    "write_report",
]
