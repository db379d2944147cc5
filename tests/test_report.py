"""Report builders from frames: the lines are drawn, the record is complete, words for BLQ."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import plotly.io as pio
import polars as pl
import pytest

from asnmon.assay import Assay
from asnmon.cli import main
from asnmon.errors import AsnmonError
from asnmon.report import (
    ReportData,
    build_report_html,
    calibration_figure,
    is_response_figure,
    levey_jennings_figure,
    table_html,
)
from asnmon.report.data import Lock
from asnmon.report.figures import LIMIT, SD1, SD2
from asnmon.report.format import result_text, round_for_export, sig
from asnmon.report.pdf import print_pdf
from asnmon.store import Store
from asnmon.westgard import GuideSet, QcPoint


def results() -> pl.DataFrame:
    rows = []
    table: list[tuple[str, float | None, str | None, float | None, str, float | None]] = [
        ("calibrator", 1.5e5, "CAL01", 101.0, "ok", 1.01),
        ("qc", 1.4e5, "QC-M", 99.0, "ok", 198.0),
        ("sample", 1.45e5, None, None, "ok", 12.345678),
        ("sample", 0.6e5, None, None, "BLQ", None),
        ("qc", 1.5e5, "QC-M", 130.0, "ok", 260.0),
        ("sample", None, None, None, "no_result", None),
        ("blank", 10.0, None, None, "ok", None),
    ]
    for i, (stype, area, level, acc, status, conc) in enumerate(table, start=1):
        rows.append(
            {
                "run_id": "R1",
                "position": i,
                "file": f"{i:03d}_X{i}.mzML",
                "sample_id": f"X{i}",
                "sample_type": stype,
                "level": level,
                "matrix": "plasma" if stype == "sample" else None,
                "acquired_at": f"2024-05-06T08:{i:02d}:00Z",
                "ingested_at": None,
                "analyte_area": 66512.4 if area else None,
                "is_area": area,
                "area_ratio": 0.123456789 if area else None,
                "analyte_rt": 3.2012345 if area else None,
                "conc_vial": conc,
                "conc": conc * 2 if conc and stype == "sample" else conc,
                "unit": "µM",
                "dilution": 2.0 if stype == "sample" else 1.0,
                "normalized_value": None,
                "normalized_unit": None,
                "nominal": 200.0 if stype == "qc" else None,
                "accuracy_pct": acc,
                "status": status,
                "flags": "IS_LOW;PEAK_TRUNCATED" if i == 2 else "",
                "injection_id": 100 + i,
                "error": "the closing tag is missing" if status == "no_result" else None,
                "is_pct": area / 1.45e3 if area else None,
            }
        )
    return pl.DataFrame(rows)


def flags() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "flag_id": [1, 2, 3],
            "run_id": ["R1"] * 3,
            "injection_id": [102, None, 104],
            "position": [2, None, 4],
            "sample_id": ["X2", None, "X4"],
            "code": ["IS_LOW", "RUN_FAIL", "OLD_ONE"],
            "severity": ["fail", "fail", "warning"],
            "message": ["IS 40 % of the reference", "2 of 3 QCs failed", "withdrawn"],
            "action": ["re-inject", "reject the run", ""],
            "active": [True, True, False],
            "deactivated_at": [None, None, datetime(2024, 5, 6, 9)],
            "acks": [1, 0, 0],
        }
    )


def make_data(assay: Assay, **over: Any) -> ReportData:
    fields: dict[str, Any] = {
        "run": {"run_id": "R1", "name": "R1", "verdict": "fail", "verdict_reason": "QC"},
        "results": results(),
        "all_results": results(),
        "flags": flags(),
        "acknowledgements": pl.DataFrame(
            {
                "flag_id": [1],
                "by_name": ["Dana Reviewer"],
                "comment": ["short injection seen on the vial"],
                "acked_at": [datetime(2024, 5, 6, 10, 15)],
            }
        ),
        "calibrations": pl.DataFrame(),
        "cal_points": pl.DataFrame(),
        "audit": pl.DataFrame(),
        "signatures": pl.DataFrame(),
        "lock": Lock(False),
        "audit_problems": (),
        "assay": assay,
    }
    fields.update(over)
    return ReportData(**fields)


def text_of(doc: str) -> str:
    """What a reader sees: tags and the inlined script removed."""
    doc = re.sub(r"<(script|style).*?</\1>", " ", doc, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", doc))


def visible_lines(fig: Any) -> list[dict[str, Any]]:
    """The figure's shapes as plotly.js draws them: template defaults applied."""
    full = json.loads(pio.to_json(fig))
    defaults = full["layout"]["template"]["layout"].get("shapedefaults", {})
    out = []
    for shape in full["layout"].get("shapes", []):
        width = shape.get("line", {}).get("width", defaults.get("line", {}).get("width", 2))
        opacity = shape.get("opacity", defaults.get("opacity", 1))
        if width > 0 and opacity > 0.9:
            out.append(shape)
    return out


def test_is_figure_window_lines_are_visible() -> None:
    fig = is_response_figure(results(), 50.0, 150.0)
    lines = visible_lines(fig)
    assert sorted(s["y0"] for s in lines) == [50.0, 100.0, 150.0]
    assert {s["line"]["color"] for s in lines if s["y0"] != 100.0} == {LIMIT}
    plotted = {t.name for t in fig.data}
    assert "blank" not in plotted  # prepared without IS: no point at 0 %


def test_calibration_figure_linear_axes_and_limit_lines() -> None:
    pts = pl.DataFrame(
        {
            "nominal": [0.0, 1.0, 10.0, 100.0],
            "level": ["ZERO", "CAL01", "CAL02", "CAL03"],
            "area_ratio": [0.0, 0.005, 0.05, 0.6],
            "accuracy_pct": [None, 100.0, 100.0, 120.0],
            "excluded": [True, False, False, True],
        }
    )
    cal = {"version": 2, "model": "linear", "weighting": "1/x^2", "c0": 0.0, "c1": 0.005}
    cal |= {"c2": 0.0, "r2": 0.999, "accepted": True}
    fig = calibration_figure(pts, cal, 15.0)
    assert fig.layout.xaxis.type in (None, "linear")  # the curve: a line looks like a line
    assert fig.layout.yaxis.type in (None, "linear")
    assert sorted(s["y0"] for s in visible_lines(fig)) == [-15.0, 0.0, 15.0]
    assert fig.layout.yaxis2.range[1] > 20  # the 120 % standard is inside the panel
    assert {"excluded", "fit"} <= {t.name for t in fig.data}
    assert "v2" in fig.layout.title.text


def test_levey_jennings_draws_mean_and_three_sd_pairs() -> None:
    g = GuideSet("QC-M", 100.0, 5.0, 4, "runs A")
    p = [QcPoint("A", "1", "QC-M", 100.0), QcPoint("B", "2", "QC-M", 120.0)]
    fig = levey_jennings_figure(p, g, "B")
    lines = visible_lines(fig)
    assert sorted(s["y0"] for s in lines) == [85, 90, 95, 100, 105, 110, 115]
    colour = {s["y0"]: s["line"]["color"] for s in lines}
    assert (colour[85], colour[90], colour[95]) == (LIMIT, SD2, SD1)
    assert "< 5 points" in fig.layout.title.text
    low, high = fig.layout.yaxis.range
    assert low < 85 and high > 120  # every line and point in view, whatever the autorange
    assert any("violation" in (t.name or "") for t in fig.data)  # +4 SD is marked


@pytest.mark.parametrize(
    ("row", "text"),
    [
        ({"status": "ok", "conc": 12.345678, "unit": "µM"}, "12.3 µM"),
        ({"status": "BLQ", "unit": "µM", "dilution": 5.0}, "< LLOQ (5.00 µM)"),
        (
            {"status": "ALQ", "unit": "µM", "sample_type": "sample"},
            "> ULOQ (500 µM): dilute and re-inject",
        ),
        ({"status": "ALQ", "unit": "µM", "sample_type": "calibrator"}, "> ULOQ (500 µM)"),
        ({"status": "no_result", "error": "truncated"}, "no result: truncated"),
        ({"status": "provisional", "conc": 3.0}, "no accepted curve: not reported"),
        ({"status": "ok", "conc": None}, "—"),
    ],
)
def test_result_in_words(row: dict[str, object], text: str) -> None:
    assert result_text(row, 1.0, 500.0) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(12.345678, "12.3"), (0.0012345, "0.00123"), (1234.5, "1,230"), (0.0, "0"), (None, "")],
)
def test_three_significant_figures(value: float | None, text: str) -> None:
    assert sig(value) == text


def test_export_rounding_rule() -> None:
    frame = results().select("conc", "analyte_area", "accuracy_pct", "area_ratio", "nominal")
    out = round_for_export(frame)
    assert out["conc"][2] == pytest.approx(24.7)  # 24.691356 to 3 significant figures
    assert out.schema["analyte_area"] == pl.Int64 and out["analyte_area"][0] == 66512
    assert out["area_ratio"][0] == pytest.approx(0.1235)
    assert out["nominal"].to_list() == frame["nominal"].to_list()  # the lab's value, as typed


def test_table_escapes_and_uses_human_headings() -> None:
    df = pl.DataFrame({"code": ["<b>"], "severity": ["fail"], "conc_vial": [1.23456]})
    out = table_html(df, ["code", "severity", "conc_vial"])
    assert "&lt;b&gt;" in out
    assert 'class="fail"' in out
    assert "In vial (µM)" in out and "conc_vial" not in out
    assert ">1.23<" in out
    assert table_html(df.head(0), ["code"]) == "<p>None.</p>"


def test_document_lists_every_injection_and_every_acknowledgement(assay: Assay) -> None:
    doc = build_report_html(make_data(assay))
    seen = text_of(doc)
    for i in range(1, 8):
        assert f"{i:03d}_X{i}.mzML" in seen  # samples too, not only the flagged ones
    assert "24.7 µM" in seen  # 12.345678 × dilution 2, to 3 significant figures
    assert "< LLOQ (2.00 µM)" in seen  # the limit in final units
    assert "no result: the closing tag is missing" in seen
    assert "Dana Reviewer" in seen and "short injection seen on the vial" in seen
    assert "2024-05-06 10:15:00 UTC" in seen
    assert "not acknowledged" in seen  # RUN_FAIL has none
    assert "OLD_ONE" not in seen  # withdrawn and never acknowledged: not on the record
    for raw in ("conc_vial", "accuracy_pct", "is_area", "sample_type"):
        assert raw not in seen, raw
    assert "NOT SIGNED" in seen
    assert "@page" in doc and "counter(pages)" in doc
    assert doc.count("<script") >= 1 and "<script src=" not in doc


def test_audit_events_and_signatures_render_whatever_their_kind(assay: Assay) -> None:
    audit = pl.DataFrame(
        {
            "event_id": [7, 8, 9],
            "at": [datetime(2024, 5, 7, 9, m) for m in (1, 2, 3)],
            "run_id": ["R1"] * 3,
            "injection_id": [103, None, None],
            "actor": ["ana", "rev", "boss"],
            "role": ["analyst", "reviewer", "approver"],
            "action": ["reintegrate", "frobnicate", "approve"],
            "target": ["peak group asn", "run", "run"],
            "old": ['{"start_rt": 3.05, "end_rt": 3.41}', None, '"reviewed"'],
            "new": ['{"start_rt": 3.1, "end_rt": 3.38}', '"x"', '"approved"'],
            "reason": ["shoulder from an interferent", "a new kind of change", "released"],
            "hash": ["ab" * 32, "cd" * 32, "ef" * 32],
        }
    )
    sigs = pl.DataFrame(
        {
            "meaning": ["reviewed", "approved", "reopened", "approved"],
            "name": ["Rita Reviewer", "Abe Approver", "Abe Approver", "Abe Approver"],
            "role": ["reviewer", "approver", "approver", "approver"],
            "signed_at": [datetime(2024, 5, 7, 9, m) for m in (2, 3, 4, 5)],
            "reason": ["", "", "wrong dilution on X3", ""],
            "current": [True, False, False, True],
        }
    )
    data = make_data(
        assay,
        audit=audit,
        signatures=sigs,
        lock=Lock(True, "run R1 was approved by Abe Approver"),
    )
    seen = text_of(build_report_html(data))
    assert "start_rt: 3.05; end_rt: 3.41" in seen and "start_rt: 3.1; end_rt: 3.38" in seen
    assert "shoulder from an interferent" in seen
    assert "frobnicate" in seen  # an action this module never heard of still shows
    assert "3 X3" in seen  # the injection the event names, by position and sample
    assert "changed by review: reintegrate" in seen  # and its result row says so
    assert "Rita Reviewer" in seen and "Abe Approver" in seen
    assert "2024-05-07 09:03:00" in seen
    assert "wrong dilution on X3" in seen and "ended by a later reopen" in seen
    assert "LOCKED" in seen and "approved by Abe Approver" in seen
    assert "Approved by Abe Approver (approver) on 2024-05-07 09:05:00 UTC" in seen
    assert "chain verified intact" in seen


def test_results_changed_after_signing_are_said(assay: Assay) -> None:
    sigs = pl.DataFrame(
        {
            "meaning": ["reviewed"],
            "name": ["rita"],
            "role": ["reviewer"],
            "signed_at": [datetime(2024, 5, 7, 9, 2)],
            "results_digest": ["a" * 64],
            "current": [True],
        }
    )
    same = text_of(build_report_html(make_data(assay, signatures=sigs, results_digest="a" * 64)))
    assert "the results are those signed" in same and "CHANGED" not in same
    moved = text_of(build_report_html(make_data(assay, signatures=sigs, results_digest="b" * 64)))
    head = moved[: moved.index("Results: every injection")]
    assert "THE RESULTS CHANGED after the last signature" in head


def test_broken_chain_is_said_on_the_first_page(assay: Assay) -> None:
    data = make_data(assay, audit_problems=("event 3 was altered",))
    seen = text_of(build_report_html(data))
    head = seen[: seen.index("Results: every injection")]
    assert "THE CHAIN IS BROKEN" in head and "event 3 was altered" in head


def test_pdf_without_a_browser_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "r.html"
    page.write_text("<p>x</p>", encoding="utf-8")
    with pytest.raises(AsnmonError, match="no Chromium found"):
        print_pdf(page, tmp_path / "r.pdf", browser=str(tmp_path / "no-such-browser"))
    db = tmp_path / "e.duckdb"
    Store(db).close()
    args = ["report", "R1", "--db", str(db), "--pdf", "--browser", str(tmp_path / "nope")]
    assert main(args) == 2
    assert "Ctrl-P" in capsys.readouterr().err  # the way to a PDF without Chromium


def test_report_of_an_unknown_run_names_the_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "e.duckdb"
    Store(db).close()
    assert main(["report", "nosuchrun", "--db", str(db), "--out", str(tmp_path)]) == 2
    assert "no run 'nosuchrun'" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.html"))
