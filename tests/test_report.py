"""Report builders from frames, and one report written from a real store."""

from __future__ import annotations

import polars as pl
import pytest

from asnmon.report import (
    build_report_html,
    calibration_figure,
    is_response_figure,
    levey_jennings_figure,
    table_html,
)
from asnmon.westgard import GuideSet, QcPoint


def results() -> pl.DataFrame:
    rows = []
    for i, (stype, area, level, acc) in enumerate(
        [
            ("calibrator", 1.5e5, "CAL01", 101.0),
            ("qc", 1.4e5, "QC-M", 99.0),
            ("sample", 1.45e5, None, None),
            ("sample", 0.6e5, None, None),
            ("qc", 1.5e5, "QC-M", 130.0),
        ],
        start=1,
    ):
        rows.append(
            {
                "run_id": "R1",
                "position": i,
                "sample_id": f"X{i}",
                "sample_type": stype,
                "level": level,
                "nominal": 200.0 if stype == "qc" else None,
                "is_area": area,
                "accuracy_pct": acc,
                "conc_vial": None,
                "status": "ok",
                "flags": "",
                "acquired_at": f"2024-05-06T08:{i:02d}:00Z",
                "ingested_at": None,
            }
        )
    return pl.DataFrame(rows)


def test_is_figure_has_window_lines() -> None:
    fig = is_response_figure(results(), 50.0, 150.0)
    ys = sorted(s["y0"] for s in fig.layout.shapes)
    ref = (1.5e5 + 1.4e5 + 1.5e5) / 3
    assert ys == pytest.approx([0.5 * ref, ref, 1.5 * ref])


def test_calibration_figure_marks_excluded() -> None:
    pts = pl.DataFrame(
        {
            "nominal": [0.0, 1.0, 10.0, 100.0],
            "area_ratio": [0.0, 0.005, 0.05, 0.6],
            "accuracy_pct": [None, 100.0, 100.0, 120.0],
            "excluded": [True, False, False, True],
        }
    )
    cal = {
        "version": 2,
        "model": "linear",
        "weighting": "1/x^2",
        "c0": 0.0,
        "c1": 0.005,
        "c2": 0.0,
        "r2": 0.999,
        "accepted": True,
    }
    fig = calibration_figure(pts, cal)
    names = [t.name for t in fig.data]
    assert "excluded" in names
    assert "fit" in names
    assert "v2" in fig.layout.title.text


def test_levey_jennings_limits() -> None:
    g = GuideSet("QC-M", 100.0, 5.0, 4, "runs A")
    p = [QcPoint("A", "1", "QC-M", 100.0), QcPoint("B", "2", "QC-M", 120.0)]
    fig = levey_jennings_figure(p, g, "B")
    assert len(fig.layout.shapes) == 7
    assert "< 5 points" in fig.layout.title.text


def test_table_escapes_and_colours() -> None:
    df = pl.DataFrame({"code": ["<b>"], "severity": ["fail"]})
    out = table_html(df, ["code", "severity"])
    assert "&lt;b&gt;" in out
    assert 'class="fail"' in out
    assert table_html(df.head(0), ["code"]) == "<p>None.</p>"


def test_document_is_self_contained_and_printable(assay) -> None:
    flags = pl.DataFrame(
        {
            "flag_id": [1, 2],
            "injection_id": [4, None],
            "position": [4, None],
            "sample_id": ["X4", None],
            "code": ["IS_LOW", "RUN_FAIL"],
            "severity": ["fail", "fail"],
            "message": ["IS 40 %", "QC"],
            "action": ["", ""],
            "acks": [0, 0],
        }
    )
    doc = build_report_html(
        {"run_id": "R1", "name": "R1", "verdict": "fail", "verdict_reason": "QC"},
        results(),
        flags,
        None,
        pl.DataFrame(),
        assay,
    )
    assert doc.count("<script") >= 1
    assert "<script src=" not in doc
    assert "@media print" in doc
    assert "page-break-before" in doc
    assert "IS_LOW" in doc
    assert '"staticPlot": true' in doc
