"""Manual reintegration, exclusions and batch edits as pure functions (asnmon.review)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asnmon.assay import Assay
from asnmon.calibrate import fit_calibration
from asnmon.errors import AssayError, ReviewError
from asnmon.integrate import integrate_injection
from asnmon.records import CalibrationPoint, Chromatogram, Injection, RunMeta, Sample, SampleType
from asnmon.review import (
    affects_curve,
    apply_exclusions,
    check_comment,
    edited_sample,
    exclusion_text,
    manual_note,
    parse_field,
    reintegrate,
    require_reason,
)

RT = np.linspace(2.3, 4.1, 540)  # a stored window around 3.2 min, 0.2 s spacing


def gauss(mu: float, sigma: float, height: float) -> np.ndarray:
    return height * np.exp(-0.5 * ((RT - mu) / sigma) ** 2)


def traces(
    *, analyte: float = 2.0e4, is_h: float = 5.0e4, base: float = 300.0, extra: float = 0.0
) -> dict[str, Chromatogram]:
    """The four group members; ``extra``: a neighbouring peak at 3.45 min on the analyte."""
    rng = np.random.default_rng(7)
    sig = {
        "asn_quant": gauss(3.2, 0.04, analyte) + gauss(3.45, 0.04, extra),
        "asn_qual": gauss(3.2, 0.04, 0.4 * analyte),
        "is_quant": gauss(3.2, 0.04, is_h),
        "is_qual": gauss(3.2, 0.04, 0.3 * is_h),
    }
    return {
        t: Chromatogram(t, i, RT, y + base + rng.normal(0, 20.0, RT.size))
        for i, (t, y) in enumerate(sig.items())
    }


def true_area(height: float, sigma: float = 0.04) -> float:
    return height * sigma * math.sqrt(2 * math.pi)


def test_manual_bounds_give_the_true_area_above_a_flat_baseline(assay: Assay) -> None:
    tr = traces()
    got = reintegrate(tr, assay, 3.0, 3.4)
    for t, h in (("asn_quant", 2.0e4), ("is_quant", 5.0e4), ("asn_qual", 8.0e3)):
        p = got.peaks[t]
        assert p is not None
        assert p.start_rt == pytest.approx(3.0) and p.end_rt == pytest.approx(3.4)
        assert p.area == pytest.approx(true_area(h), rel=0.02)
        assert p.baseline_start == pytest.approx(300.0, abs=40.0)
        assert p.apex_rt == pytest.approx(3.2, abs=0.005)
        assert p.sn is not None and p.sn > 50


def test_every_member_shares_the_reviewers_boundaries(assay: Assay) -> None:
    got = reintegrate(traces(), assay, 3.05, 3.33)
    starts = {p.start_rt for p in got.peaks.values() if p is not None}
    ends = {p.end_rt for p in got.peaks.values() if p is not None}
    assert starts == {3.05} and ends == {3.33}
    assert set(got.peaks) == {"asn_quant", "asn_qual", "is_quant", "is_qual"}
    # the shape against the IS is judged as at ingestion (COELUTION needs it)
    an = got.peaks["asn_quant"]
    assert an is not None and an.shape_r is not None and an.shape_r > 0.95


def test_narrowing_the_bounds_leaves_out_a_neighbour_the_wide_bounds_include(
    assay: Assay,
) -> None:
    tr = traces(extra=1.5e4)
    wide = reintegrate(tr, assay, 3.0, 3.6).peaks["asn_quant"]
    narrow = reintegrate(tr, assay, 3.0, 3.33).peaks["asn_quant"]
    assert wide is not None and narrow is not None
    assert wide.area == pytest.approx(true_area(2.0e4) + true_area(1.5e4), rel=0.03)
    assert narrow.area == pytest.approx(true_area(2.0e4), rel=0.03)


def test_the_baseline_follows_a_drift_through_both_boundaries(assay: Assay) -> None:
    tr = traces()
    drift = {
        t: Chromatogram(c.id, c.index, c.rt, c.intensity + 4000.0 * (c.rt - 2.3))
        for t, c in tr.items()
    }
    p = reintegrate(drift, assay, 3.0, 3.4).peaks["is_quant"]
    assert p is not None
    assert p.baseline_end - p.baseline_start == pytest.approx(4000.0 * 0.4, rel=0.1)
    assert p.area == pytest.approx(true_area(5.0e4), rel=0.02)


def test_same_bounds_as_the_automatic_integration_give_about_its_area(assay: Assay) -> None:
    tr = traces()
    auto = integrate_injection(Injection(__file__, "x", RunMeta(), tr), assay)  # type: ignore[arg-type]
    a = auto["asn_quant"]
    assert a is not None
    manual = reintegrate(tr, assay, a.start_rt, a.end_rt, auto).peaks["asn_quant"]
    assert manual is not None
    assert manual.area == pytest.approx(a.area, rel=0.02)


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        (3.3, 3.1, "must be after"),
        (3.2, 3.2, "must be after"),
        (float("nan"), 3.4, "numbers"),
        (3.2, 3.203, "point(s)"),
        (5.0, 6.0, "point(s)"),
    ],
)
def test_bounds_that_cannot_make_a_peak_are_refused_in_words(
    assay: Assay, start: float, end: float, words: str
) -> None:
    with pytest.raises(ReviewError, match=words.replace("(", r"\(").replace(")", r"\)")):
        reintegrate(traces(), assay, start, end)


def test_no_stored_traces_is_refused(assay: Assay) -> None:
    with pytest.raises(ReviewError, match="no chromatograms"):
        reintegrate({}, assay, 3.0, 3.4)


def test_bounds_beyond_the_stored_trace_are_noted(assay: Assay) -> None:
    got = reintegrate(traces(), assay, 2.0, 3.4)
    assert any("beyond the stored trace" in n for n in got.notes)
    assert got.peaks["is_quant"] is not None


def test_reasons_come_from_the_list_and_other_needs_a_comment() -> None:
    allowed = ("wrong peak picked", "other (see comment)")
    assert require_reason(" wrong peak picked ", allowed, "reintegration") == "wrong peak picked"
    with pytest.raises(ReviewError, match="Choose a reason"):
        require_reason("", allowed, "reintegration")
    with pytest.raises(ReviewError, match="not one of"):
        require_reason("because", allowed, "reintegration")
    with pytest.raises(ReviewError, match="needs a comment"):
        check_comment("other (see comment)", "  ")
    assert check_comment("other (see comment)", " split vial ") == "split vial"
    assert (
        manual_note("Ana", "wrong peak picked")
        == "manually integrated by Ana because wrong peak picked"
    )
    assert (
        exclusion_text("Ana", "injection error", "air") == "excluded by Ana: injection error (air)"
    )


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("sample_type", "qc", "qc"),
        ("level", " CAL03 ", "CAL03"),
        ("level", "", None),
        ("nominal", "12,5", 12.5),
        ("nominal", "", None),
        ("dilution", "10", 10.0),
        ("matrix", "plasma", "plasma"),
    ],
)
def test_batch_fields_are_parsed(name: str, text: str, value: object) -> None:
    assert parse_field(name, text) == value


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("sample_type", "standard", "must be one of"),
        ("dilution", "0.5", ">= 1"),
        ("dilution", "inf", "finite"),
        ("nominal", "-3", "negative"),
        ("nominal", "ten", "a number"),
        ("sample_id", "x", "cannot be edited"),
        ("level", "x" * 101, "at most"),
    ],
)
def test_bad_batch_values_are_refused(name: str, text: str, words: str) -> None:
    with pytest.raises(ReviewError, match=words):
        parse_field(name, text)


def test_which_edits_refit_the_curve() -> None:
    cal = Sample("c3", "CAL03", SampleType.CALIBRATOR, level="CAL03", nominal=50.0)
    sample = Sample("s1", "S1", SampleType.SAMPLE)
    assert affects_curve(cal, edited_sample(cal, "nominal", 40.0))
    assert affects_curve(sample, edited_sample(sample, "sample_type", "calibrator"))
    assert affects_curve(cal, edited_sample(cal, "sample_type", "qc"))
    assert not affects_curve(sample, edited_sample(sample, "dilution", 10.0))
    assert not affects_curve(cal, edited_sample(cal, "matrix", "plasma"))
    assert edited_sample(sample, "dilution", 10.0).dilution == 10.0


def test_an_excluded_standard_is_kept_out_of_the_fit_and_on_the_record(assay: Assay) -> None:
    nominal = [5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0]
    pts = [
        CalibrationPoint(f"C{i}", f"CAL0{i}", x, 0.01 * x * (1.6 if i == 4 else 1.0))
        for i, x in enumerate(nominal, start=1)
    ]
    ids = list(range(101, 109))
    before = fit_calibration(pts, assay.calibration, 1)
    # CAL04 is 60 % high: the ICH M10 rules drop it on their own; a reviewer drops CAL06 too
    reason = exclusion_text("Ana", "injection error (vial, needle, air)")
    after = fit_calibration(apply_exclusions(pts, ids, {106: reason}), assay.calibration, 2)
    p6 = after.points[5]
    assert p6.excluded and p6.reason == reason
    assert p6.accuracy_pct == pytest.approx(100.0, abs=1.0)  # back-calculated for the record
    assert after.accepted and before.accepted
    assert "CAL06: " + reason in after.reason
    assert "6/8 standards" in after.reason and "7/8 standards" in before.reason
    assert after.coefficients[1] == pytest.approx(0.01, rel=1e-6)


def test_the_reason_lists_come_from_the_assay_file() -> None:
    from asnmon.assay import REINTEGRATION_REASONS, load_assay, parse_assay

    default = load_assay()
    assert default.review.reintegration_reasons == REINTEGRATION_REASONS
    import tomllib
    from importlib import resources

    data = tomllib.loads(
        resources.files("asnmon.data").joinpath("asparagine.toml").read_text("utf-8")
    )
    data["review"] = {"reintegration_reasons": ["SOP-12 §4.2 baseline", "SOP-12 §4.3 split"]}
    mine = parse_assay(data, "lab.toml")
    assert mine.review.reintegration_reasons == ("SOP-12 §4.2 baseline", "SOP-12 §4.3 split")
    assert mine.review.exclusion_reasons == default.review.exclusion_reasons
    for bad, words in (
        ({"reintegration_reasons": []}, "non-empty list"),
        ({"reintegration_reasons": ["a", "a"]}, "twice"),
        ({"reasons": ["a"]}, "unknown key"),
    ):
        data["review"] = bad
        with pytest.raises(AssayError, match=words):
            parse_assay(data, "lab.toml")
