"""Dashboard builders as pure functions: frames in, figures/rows out, no browser."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from asnmon.assay import Assay
from dashboard import chromatogram, figures, layout, style, tables

pytestmark = pytest.mark.filterwarnings(
    # dash -> requests -> urllib3 warns about its deprecated [secure] extra on import
    "ignore::DeprecationWarning:urllib3.*"
)


def results_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {
        "position": None,
        "file": "x.mzML",
        "sample_id": "S",
        "sample_type": "sample",
        "level": None,
        "matrix": None,
        "acquired_at": "2024-05-06T08:00:00Z",
        "is_area": 1.0e5,
        "conc": 10.0,
        "unit": "µM",
        "dilution": 1.0,
        "status": "ok",
        "accuracy_pct": None,
        "group_name": None,
        "normalized_value": None,
        "normalized_unit": None,
    }
    out = []
    for i, r in enumerate(rows, start=1):
        out.append({**base, "injection_id": i, "position": i, "file": f"{i:03d}.mzML", **r})
    return pl.DataFrame(out, infer_schema_length=None)


def flags_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {
        "flag_id": 0,
        "injection_id": None,
        "code": "X",
        "severity": "warning",
        "message": "m",
        "action": "a",
        "value": None,
        "limit_value": None,
        "details": "{}",
        "acks": 0,
        "file": None,
        "position": None,
    }
    return pl.DataFrame(
        [{**base, "flag_id": i, **r} for i, r in enumerate(rows, start=1)],
        infer_schema_length=None,
    )


@pytest.mark.parametrize(
    ("status", "conc", "kw", "expected"),
    [
        ("ok", 12.345, {}, "12.3 µM"),
        ("ok", 0.456, {}, "0.456 µM"),
        ("BLQ", 0.4, {"lloq": 1.0, "dilution": 2.0}, "< LLOQ (2.00 µM)"),
        ("ALQ", 913.0, {"dilute_factor": 5}, "> ULOQ — dilute 1:5"),
        ("no_peak", None, {}, "—"),
        ("provisional", 50.0, {}, "50.0 µM (provisional)"),
    ],
)
def test_concentration_text(status: str, conc: float | None, kw: dict, expected: str) -> None:
    assert tables.concentration_text(status, conc, "µM", **kw) == expected


def test_table_rows_newest_first_with_is_percent_badges_and_dilution() -> None:
    res = results_frame(
        [
            {"sample_type": "calibrator", "is_area": 1.0e5},
            {"sample_type": "qc", "is_area": 3.0e5},
            {"sample_type": "sample", "is_area": 1.0e5, "status": "ALQ", "conc": 900.0},
        ]
    )
    flags = flags_frame(
        [
            {"injection_id": 3, "code": "ALQ", "details": json.dumps({"dilution": 5})},
            {"injection_id": 3, "code": "IS_LOW", "severity": "fail", "acks": 1},
        ]
    )
    rows = tables.injection_rows(res, flags, lloq=1.0)
    assert [r["injection_id"] for r in rows] == [3, 2, 1]
    top = rows[0]
    assert top["is_pct"] == "50 %"  # 1e5 / mean(1e5, 3e5)
    assert top["concentration"] == "> ULOQ — dilute 1:5"
    assert top["worst"] == "fail"
    assert top["flags"] == [("IS_LOW", "fail", 1), ("ALQ", "warning", 0)]  # worst first
    html_text = str(layout.injection_rows_table(rows, selected=3))
    assert "✖ IS_LOW ✓" in html_text
    assert style.SEVERITY["fail"].colour in html_text
    assert "selected" in html_text
    assert [r["injection_id"] for r in tables.injection_rows(res, flags, codes=["IS_LOW"])] == [3]
    assert [r["injection_id"] for r in tables.injection_rows(res, flags, types=["qc"])] == [2]


def test_every_state_has_icon_and_word_not_only_colour() -> None:
    for look in [*style.SEVERITY.values(), *style.VERDICT.values()]:
        assert look.icon
        assert look.word
        assert look.colour.startswith("#")
    assert len({look.colour for look in style.SEVERITY.values()}) == 3
    assert style.verdict("no such").word == "PENDING"


def test_run_series_order_and_is_percent() -> None:
    res = results_frame([{"sample_type": "calibrator"}, {"is_area": 5.0e4}, {"is_area": None}])
    s = figures.run_series(res)
    assert s["order"].to_list() == [1, 2, 3]
    assert s["is_pct"].to_list() == [pytest.approx(100.0), pytest.approx(50.0), None]
    assert figures.run_series(pl.DataFrame()).is_empty()


def test_is_figure_has_window_reference_types_and_drift_mark(assay: Assay) -> None:
    res = results_frame([{"sample_type": "calibrator"}, {"sample_type": "qc"}, {}, {}])
    drift = flags_frame(
        [
            {
                "code": "IS_DRIFT",
                "injection_id": 4,
                "value": -2.5,
                "details": json.dumps({"started_at": 2}),
            }
        ]
    )
    fig = figures.is_figure(figures.run_series(res), assay, drift, uirevision="r")
    names = [t.name for t in fig.data]
    assert names == [label for _, label, *_ in style.SAMPLE_TYPES]  # fixed order for extendData
    ys = {s.y0 for s in fig.layout.shapes if s.type == "line"}
    assert {50.0, 100.0, 150.0} <= ys
    assert any("IS drift -2.5 %/inj" in (a.text or "") for a in fig.layout.annotations)
    assert fig.layout.uirevision == "r"


def test_run_series_plots_the_acquisition_position_not_the_arrival_order() -> None:
    # a junk file ingested last, at position 2; a re-injection outside the worklist
    res = results_frame([{"position": 1}, {"position": 3}, {"position": None}, {"position": 2}])
    assert figures.run_series(res)["order"].to_list() == [1.0, 3.0, 3.5, 2.0]


def test_out_of_range_results_are_drawn_at_the_limit_and_labelled(assay: Assay) -> None:
    cal = assay.calibration
    res = results_frame(
        [
            {"conc": 50.0},
            {"conc": None, "status": "ALQ", "sample_id": "OVER"},
            {"conc": None, "status": "BLQ", "sample_id": "LOW", "dilution": 2.0},
            {"conc": None, "status": "no_peak", "sample_id": "GONE"},
        ]
    )
    series = figures.run_series(res)
    fig = figures.asn_figure(series, assay)
    over = next(t for t in fig.data if t.name == "> ULOQ")
    low = next(t for t in fig.data if t.name == "< LLOQ")
    assert (list(over.x), list(over.y), list(over.text)) == ([2.0], [cal.uloq], ["OVER > ULOQ"])
    assert (list(low.x), list(low.y)) == ([3.0], [cal.lloq * 2.0])  # the sample's own limit
    assert over.mode == "markers+text" and over.marker.symbol == "triangle-up"
    assert "2 outside the curve, drawn at the limit" in fig.layout.title.text
    assert not any("GONE" in str(t.text) for t in fig.data)  # no value and no limit: not drawn
    _, hi = fig.layout.yaxis.range
    assert 10**hi > cal.uloq  # the marker is inside the axis
    # appended live in the same traces, by index after the sample types
    payload, idx = figures.run_extension(series, "conc", assay)
    n = len(style.SAMPLE_TYPES)
    assert idx == list(range(n + 2))
    assert payload["y"][n] == [cal.uloq] and payload["customdata"][n] == [2]


def test_run_extension_appends_by_type(assay: Assay) -> None:
    res = results_frame([{"sample_type": "qc", "conc": 3.0}, {"conc": 7.0}])
    payload, idx = figures.run_extension(figures.run_series(res), "conc")
    qc = [k for k, *_ in style.SAMPLE_TYPES].index("qc")
    sample = [k for k, *_ in style.SAMPLE_TYPES].index("sample")
    assert idx == list(range(len(style.SAMPLE_TYPES)))
    assert payload["y"][qc] == [3.0]
    assert payload["y"][sample] == [7.0]
    assert payload["customdata"][sample] == [2]


def test_asn_figure_log_axis_with_limits_and_reference_bands(assay: Assay) -> None:
    res = results_frame([{"conc": 0.4}, {"conc": 900.0}])
    fig = figures.asn_figure(figures.run_series(res), assay)
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.dtick == 1  # a label per decade only: no "2", "5" between
    lo, hi = fig.layout.yaxis.range
    assert lo < -0.39
    assert hi > 2.95
    rects = [(s.y0, s.y1) for s in fig.layout.shapes if s.type == "rect"]
    assert (35.0, 75.0) in rects
    assert (250.0, 450.0) in rects
    labels = " ".join(a.text for a in fig.layout.annotations)
    assert "LLOQ" in labels
    assert "ULOQ" in labels


def test_calibration_figure_marks_excluded_and_residuals() -> None:
    cal = {
        "calibration_id": 1,
        "version": 2,
        "model": "linear",
        "weighting": "1/x^2",
        "c0": 0.0,
        "c1": 0.005,
        "c2": 0.0,
        "r2": 0.9991,
        "accepted": True,
    }
    pts = pl.DataFrame(
        {
            "sample_id": ["C1", "C2", "C3"],
            "nominal": [1.0, 10.0, 100.0],
            "area_ratio": [0.005, 0.05, 0.7],
            "accuracy_pct": [100.0, 101.0, 140.0],
            "excluded": [False, False, True],
        }
    )
    fig = figures.calibration_figure(cal, pts, "µM")
    excluded = [t for t in fig.data if t.name == "excluded"]
    assert excluded
    assert list(excluded[0].x) == [100.0]
    residual = next(t for t in fig.data if t.name == "excluded residual")
    assert list(residual.y) == [40.0]
    assert "r² = 0.9991" in fig.layout.title.text
    assert "1/x^2" in fig.layout.title.text
    assert "No calibration" in figures.calibration_figure(None, pl.DataFrame(), "µM").to_json()


def test_levey_jennings_sd_lines_and_westgard_marks() -> None:
    values = [100.0, 101.0, 99.0, 100.5, 99.5, 100.0, 100.2, 99.8, 100.1, 130.0]
    res = results_frame([{"sample_type": "qc", "level": "QC-M", "accuracy_pct": v} for v in values])
    fig = figures.levey_jennings_figure(res)  # no other runs: a within-run chart
    labels = next(t for t in fig.data if t.name == "SD labels")
    sd_labels = {x for x in labels.text if "SD" in x}
    assert sd_labels == {f"{s}{k} SD" for s in "+−" for k in (1, 2, 3)}
    marks = [t for t in fig.data if t.name == "Westgard"]
    assert marks
    assert list(marks[0].x) == [10]
    assert "within this run" in fig.layout.annotations[0].text
    assert "No QC" in figures.levey_jennings_figure(results_frame([{}])).to_json()


def test_levey_jennings_uses_the_guide_set_the_rules_use() -> None:
    """Against other runs' mean 100 % ± 2 %, a run whose QC-M all read 107 % breaks 1-3s."""
    from asnmon.westgard import GuideSet

    res = results_frame(
        [{"sample_type": "qc", "level": "QC-M", "accuracy_pct": 107.0} for _ in range(3)]
    )
    guide = GuideSet("QC-M", mean=100.0, sd=2.0, n=12, basis="runs A, B")
    fig = figures.levey_jennings_figure(res, guides={"QC-M": guide})
    assert "guide runs A, B, n = 12" in fig.layout.annotations[0].text
    lines = next(t for t in fig.data if t.name == "SD lines")
    assert max(y for y in lines.y if y is not None) == pytest.approx(106.0)  # mean + 3 SD
    marks = next(t for t in fig.data if t.name == "Westgard")
    assert "1_3S" in " ".join(marks.text)
    # judged within the run alone, three equal values break nothing
    assert not [t for t in figures.levey_jennings_figure(res).data if t.name == "Westgard"]


def test_chromatogram_figure_boundaries_and_reference_row() -> None:
    rt = [3.0 + i * 0.01 for i in range(41)]
    inten = [300.0 + (1e5 if 3.15 <= x <= 3.25 else 0.0) for x in rt]
    traces = pl.DataFrame(
        {
            "transition": ["asn_quant", "asn_qual", "is_quant"],
            "rt": [rt] * 3,
            "intensity": [inten] * 3,
        }
    )
    peaks = pl.DataFrame(
        {
            "transition": ["asn_quant", "asn_qual", "is_quant"],
            "role": ["analyte_quant", "analyte_qual", "is_quant"],
            "apex_rt": [3.2] * 3,
            "start_rt": [3.1] * 3,
            "end_rt": [3.3] * 3,
            "baseline_start": [300.0] * 3,
            "baseline_end": [310.0] * 3,
            "area": [1.0e4] * 3,
        }
    )
    fig = chromatogram.chromatogram_figure(
        [("S1", traces, peaks), ("reference CAL05", traces, peaks)]
    )
    baselines = [t for t in fig.data if t.hovertemplate == "baseline<extra></extra>"]
    assert len(baselines) == 6
    assert list(baselines[0].x) == [3.1, 3.3]
    assert list(baselines[0].y) == [300.0, 310.0]
    titles = [a.text for a in fig.layout.annotations]
    assert "S1: Asn quantifier" in titles
    assert "reference CAL05: IS quantifier" in titles


def test_pools_pairs_media_and_lysate_by_group(assay: Assay) -> None:
    res = results_frame(
        [
            {"group_name": "G1", "matrix": "media", "conc": 300.0},
            {
                "group_name": "G1",
                "matrix": "intracellular",
                "conc": 20.0,
                "normalized_value": 12.0,
                "normalized_unit": "nmol/mg protein",
            },
            {"group_name": "G2", "matrix": "media", "conc": 280.0},
        ]
    )
    fig = figures.pools_figure(res, assay)
    media, lysate = fig.data
    assert list(media.x) == ["G1", "G2"]
    assert list(media.y) == [300.0, 280.0]
    assert list(lysate.y) == [12.0, None]
    assert any("nmol/mg protein" in a.text for a in fig.layout.annotations)


def test_pools_bars_outside_the_curve_are_labelled_not_missing(assay: Assay) -> None:
    res = results_frame(
        [
            {"group_name": "G1", "matrix": "media", "conc": None, "status": "ALQ"},
            {"group_name": "G1", "matrix": "lysate", "conc": None, "status": "ALQ"},
            {"group_name": "G2", "matrix": "media", "conc": 280.0},
        ]
    )
    fig = figures.pools_figure(res, assay)
    media = fig.data[0]
    assert list(media.y) == [assay.calibration.uloq, 280.0]  # drawn at the limit
    assert list(media.text) == ["> ULOQ", ""]
    marks = [t for t in fig.data if t.name == "outside the curve"]
    assert marks and list(marks[0].text) == ["> ULOQ (no value)"] and list(marks[0].x) == ["G1"]


def test_chromatogram_figure_shows_the_group_its_cut_and_its_flags() -> None:
    rt = [0.8 + i * 0.01 for i in range(39)]  # the IS acquisition stops at 1.18 min
    inten = [200.0 + 6e4 * math.exp(-0.5 * ((x - 0.95) / 0.04) ** 2) for x in rt]
    traces = pl.DataFrame(
        {"transition": ["asn_quant", "is_quant"], "rt": [rt, rt], "intensity": [inten, inten]}
    )
    peaks = pl.DataFrame(
        {
            "transition": ["asn_quant", "is_quant"],
            "role": ["analyte_quant", "is_quant"],
            "apex_rt": [0.95, 0.95],
            "start_rt": [0.9, 0.9],
            "end_rt": [rt[-1], rt[-1]],
            "baseline_start": [400.0, 200.0],  # each trace its own baseline
            "baseline_end": [400.0, 200.0],
            "area": [5e3, 6e3],
            "truncated": [True, True],
        }
    )
    flags = pl.DataFrame(
        {
            "code": ["PEAK_TRUNCATED", "NO_CALIBRATION"],
            "severity": ["warning", "warning"],
            "value": [4.0, None],
            "details": [
                json.dumps({"transition": "is_quant", "side": "right", "pct_of_apex": 4.0,
                            "cut_rt": rt[-1]}),
                "{}",
            ],
        }
    )  # fmt: skip
    fig = chromatogram.chromatogram_figure([("S1", traces, peaks, flags)])
    shared = [t for t in fig.data if t.name == "shared boundaries"]
    assert len(shared) == 2  # one per drawn trace, the same two times in both
    assert {tuple(x for x in t.x if x is not None) for t in shared} == {(0.9, 0.9, rt[-1], rt[-1])}
    base = [list(t.y) for t in fig.data if t.hovertemplate == "baseline<extra></extra>"]
    assert base == [[400.0, 400.0], [200.0, 200.0]]
    cuts = [t for t in fig.data if t.name == "acquisition ends"]
    assert len(cuts) == 1  # the flagged IS; the analyte is only held to its end
    notes = [a.text for a in fig.layout.annotations]
    assert any("PEAK_TRUNCATED right, 4 % of apex" in n for n in notes)
    assert any("NO_CALIBRATION" in n for n in notes)  # injection-level flags: first column
    # without flags (an older database) the builder still draws the group
    plain = chromatogram.chromatogram_figure([("S1", traces, peaks)])
    assert not any("PEAK_TRUNCATED" in str(a.text) for a in plain.layout.annotations)
    assert len([t for t in plain.data if t.name == "acquisition ends"]) == 2  # from the peaks


def test_run_plots_toolbar_is_short_enough_not_to_cover_their_titles() -> None:
    from dashboard.layout import GRAPH_CONFIG, RUN_PLOT_CONFIG

    removed = set(RUN_PLOT_CONFIG["modeBarButtonsToRemove"])
    assert {"select2d", "lasso2d", "zoomIn2d", "zoomOut2d"} <= removed
    assert "modeBarButtonsToRemove" not in GRAPH_CONFIG  # the chromatogram keeps select
