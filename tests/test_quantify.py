"""Area ratio -> result: status rules, range limits, dilution and normalization."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asnmon.assay import Assay
from asnmon.quantify import area_ratio, quantify, suggested_dilution
from asnmon.records import Calibration, Peak, Sample, SampleType

SLOPE = 0.01  # ratio per µM
CAL = Calibration(
    version=4,
    model="linear",
    weighting="1/x^2",
    coefficients=(0.0, SLOPE, 0.0),
    r2=0.999,
    points=(),
    accepted=True,
    reason="accepted",
    lloq=1.0,
    uloq=500.0,
)
IS_AREA = 1e5


def peak(transition: str, area: float) -> Peak:
    return Peak(
        transition=transition,
        apex_rt=3.2,
        start_rt=3.1,
        end_rt=3.3,
        area=area,
        height=area * 10,
        baseline_start=0.0,
        baseline_end=0.0,
        fwhm=0.1,
        sn=100.0,
        points=40,
    )


def peaks_for(conc_vial: float | None, is_area: float | None = IS_AREA) -> dict:
    an = None if conc_vial is None else peak("asn_quant", conc_vial * SLOPE * IS_AREA)
    is_ = None if is_area is None else peak("is_quant", is_area)
    return {"asn_quant": an, "is_quant": is_, "asn_qual": None, "is_qual": None}


def sample(stype: SampleType = SampleType.SAMPLE, **kw: object) -> Sample:
    return Sample(file="f", sample_id="S1", sample_type=stype, **kw)


@pytest.mark.parametrize(
    ("conc", "status"),
    [
        (0.999, "BLQ"),
        (1.0, "ok"),
        (1.001, "ok"),
        (499.9, "ok"),
        (500.0, "ok"),
        (500.1, "ALQ"),
        (-0.5, "BLQ"),  # below the intercept
    ],
)
def test_range_boundaries(assay: Assay, conc: float, status: str) -> None:
    r = quantify(peaks_for(conc), sample(), CAL, assay)
    assert r.status == status
    assert r.calibration_version == 4
    assert r.area_ratio == pytest.approx(conc * SLOPE)
    if status == "ok":
        assert r.conc_vial == pytest.approx(conc)
        assert r.conc == pytest.approx(conc)
        assert r.unit == assay.unit
    else:  # never an extrapolated number as if valid
        assert r.conc_vial is None
        assert r.conc is None


@pytest.mark.parametrize(
    ("dilution", "conc_vial", "conc"), [(1.0, 40.0, 40.0), (10.0, 40.0, 400.0), (2.5, 200.0, 500.0)]
)
def test_dilution(assay: Assay, dilution: float, conc_vial: float, conc: float) -> None:
    r = quantify(peaks_for(conc_vial), sample(dilution=dilution), CAL, assay)
    assert r.status == "ok"
    assert r.conc_vial == pytest.approx(conc_vial)
    assert r.conc == pytest.approx(conc)


@pytest.mark.parametrize(
    ("conc_vial", "dilution", "volume", "protein", "unit", "expected"),
    [
        # 50 µM x 100 µL = 5 nmol, over 0.5 mg = 10 nmol/mg
        (50.0, 1.0, 100.0, 0.5, "mg protein", 10.0),
        (50.0, 2.0, 100.0, 0.5, "mg protein", 20.0),
        (20.0, 1.0, 250.0, 2.0, "1e6 cells", 2.5),
    ],
)
def test_normalization(
    assay: Assay,
    conc_vial: float,
    dilution: float,
    volume: float,
    protein: float,
    unit: str,
    expected: float,
) -> None:
    s = sample(
        matrix="intracellular",
        dilution=dilution,
        volume_ul=volume,
        normalizer=protein,
        normalizer_unit=unit,
    )
    r = quantify(peaks_for(conc_vial), s, CAL, assay)
    assert r.normalized_value == pytest.approx(expected)
    assert r.normalized_unit == f"nmol/{unit}"


def test_no_normalization_without_volume(assay: Assay) -> None:
    r = quantify(peaks_for(50.0), sample(normalizer=0.5, normalizer_unit="mg protein"), CAL, assay)
    assert r.normalized_value is None
    assert r.normalized_unit is None


@pytest.mark.parametrize("calibration", [None, replace(CAL, accepted=False, reason="rejected")])
def test_provisional_without_an_accepted_curve(
    assay: Assay, calibration: Calibration | None
) -> None:
    r = quantify(peaks_for(40.0), sample(), calibration, assay)
    assert r.status == "provisional"
    assert r.area_ratio == pytest.approx(0.4)
    assert r.conc_vial is None
    assert r.conc is None
    assert r.calibration_version is None


@pytest.mark.parametrize(
    ("stype", "conc", "is_area", "status"),
    [
        (SampleType.SAMPLE, 40.0, None, "no_peak"),
        (SampleType.SAMPLE, 40.0, 0.0, "no_peak"),
        (SampleType.SAMPLE, None, IS_AREA, "BLQ"),  # depleted: no analyte, good IS
        (SampleType.QC, None, IS_AREA, "no_peak"),
        (SampleType.CALIBRATOR, None, IS_AREA, "no_peak"),
        (SampleType.BLANK, None, IS_AREA, "ok"),
        (SampleType.BLANK, None, None, "ok"),
        (SampleType.DOUBLE_BLANK, None, None, "ok"),
        (SampleType.ZERO, None, IS_AREA, "ok"),
        (SampleType.ZERO, None, None, "no_peak"),
    ],
)
def test_missing_peaks(
    assay: Assay, stype: SampleType, conc: float | None, is_area: float | None, status: str
) -> None:
    r = quantify(peaks_for(conc, is_area), sample(stype), CAL, assay)
    assert r.status == status
    assert r.conc is None


def test_blank_keeps_its_area_ratio_for_carryover(assay: Assay) -> None:
    r = quantify(peaks_for(0.3), sample(SampleType.BLANK), CAL, assay)
    assert r.status == "ok"
    assert r.area_ratio == pytest.approx(0.003)
    assert r.conc is None


@pytest.mark.parametrize(
    ("stype", "nominal", "conc", "status", "accuracy"),
    [
        (SampleType.QC, 3.0, 3.3, "ok", 110.0),
        # a standard past the curve's end keeps its value: BLQ/ALQ are for samples and QCs
        (SampleType.CALIBRATOR, 500.0, 520.0, "ok", 104.0),
        (SampleType.CALIBRATOR, 1.0, 0.9, "ok", 90.0),
        (SampleType.QC, 400.0, 520.0, "ALQ", 130.0),
        (SampleType.QC, 1.0, 0.9, "BLQ", 90.0),
        (SampleType.SAMPLE, 3.0, 3.3, "ok", None),
    ],
)
def test_accuracy_for_calibrators_and_qcs(
    assay: Assay,
    stype: SampleType,
    nominal: float,
    conc: float,
    status: str,
    accuracy: float | None,
) -> None:
    r = quantify(peaks_for(conc), sample(stype, nominal=nominal), CAL, assay)
    assert r.status == status
    assert r.accuracy_pct == pytest.approx(accuracy)
    if stype is SampleType.CALIBRATOR:  # its back-calculated value, for the export
        assert r.conc_vial == pytest.approx(conc, rel=1e-6)
        assert r.conc == pytest.approx(conc, rel=1e-6)


@pytest.mark.parametrize(("ratio", "status"), [(30.0, "ALQ"), (-30.0, "BLQ")])
def test_quadratic_out_of_reach(assay: Assay, ratio: float, status: str) -> None:
    coef = (0.0, 0.02, -1e-5) if status == "ALQ" else (0.0, 0.02, 1e-4)
    cal = replace(CAL, model="quadratic", coefficients=coef)
    peaks = {"asn_quant": peak("asn_quant", ratio * IS_AREA), "is_quant": peak("is_quant", IS_AREA)}
    assert quantify(peaks, sample(), cal, assay).status == status
    # a standard the curve cannot reach has no value, and is not called out of range
    stuck = quantify(peaks, sample(SampleType.CALIBRATOR, nominal=500.0), cal, assay)
    assert (stuck.status, stuck.conc) == ("no_result", None)


def test_area_ratio(assay: Assay) -> None:
    assert area_ratio(peaks_for(40.0), assay) == pytest.approx(0.4)
    assert area_ratio(peaks_for(None), assay) is None
    assert area_ratio(peaks_for(40.0, None), assay) is None
    assert area_ratio(peaks_for(40.0, -5.0), assay) is None
    assert area_ratio({}, assay) is None


@pytest.mark.parametrize(
    ("conc_vial", "uloq", "factor"),
    [
        (375.0, 500.0, 1),
        (376.0, 500.0, 2),
        (750.0, 500.0, 2),
        (751.0, 500.0, 5),
        (1875.0, 500.0, 5),
        (1900.0, 500.0, 10),
        (3751.0, 500.0, 20),
        (20000.0, 500.0, 100),
        (1e6, 500.0, 5000),
        (60.0, 10.0, 10),
    ],
)
def test_suggested_dilution_table(conc_vial: float, uloq: float, factor: int) -> None:
    assert suggested_dilution(conc_vial, uloq) == factor


@given(conc=st.floats(1.0, 1e9), uloq=st.floats(1.0, 1e4))
def test_suggested_dilution_is_the_smallest_sufficient(conc: float, uloq: float) -> None:
    n = suggested_dilution(conc, uloq)
    assert conc / n <= 0.75 * uloq
    ladder = [1] + [m * 10**k for k in range(12) for m in (2, 5, 10)]
    smaller = [f for f in ladder if f < n]
    assert all(conc / f > 0.75 * uloq for f in smaller)


@pytest.mark.parametrize(("conc", "uloq"), [(float("nan"), 500.0), (10.0, 0.0)])
def test_suggested_dilution_rejects_nonsense(conc: float, uloq: float) -> None:
    with pytest.raises(ValueError, match="cannot suggest"):
        suggested_dilution(conc, uloq)


# ---------------------------------------------------------------- external calibration


@pytest.fixture(scope="module")
def external(assay: Assay) -> Assay:
    """The shipped assay without its internal standard: quantified on the analyte area."""
    return replace(
        assay, transitions=tuple(t for t in assay.transitions if not t.role.startswith("is_"))
    )


AREA_SLOPE = 1000.0  # analyte area per µM
AREA_CAL = replace(CAL, coefficients=(0.0, AREA_SLOPE, 0.0))


@pytest.mark.parametrize(
    ("conc", "status"), [(0.5, "BLQ"), (1.0, "ok"), (37.5, "ok"), (500.0, "ok"), (800.0, "ALQ")]
)
def test_external_calibration_quantifies_the_analyte_area(
    external: Assay, assay: Assay, conc: float, status: str
) -> None:
    assay_with_is = assay
    peaks = {"asn_quant": peak("asn_quant", conc * AREA_SLOPE), "asn_qual": None}
    r = quantify(peaks, sample(), AREA_CAL, external)
    assert r.status == status
    assert r.area_ratio is None  # no IS: an area is never exported as a ratio
    assert r.response == pytest.approx(conc * AREA_SLOPE)
    if status == "ok":
        assert r.conc_vial == pytest.approx(conc)
    # the IS assay needs its IS peak for the same analyte peak: no result
    assert quantify(peaks, sample(), AREA_CAL, assay_with_is).status == "no_peak"


def test_external_calibration_without_an_accepted_curve_is_provisional(external: Assay) -> None:
    peaks = {"asn_quant": peak("asn_quant", 5e4)}
    r = quantify(peaks, sample(), replace(AREA_CAL, accepted=False), external)
    assert (r.status, r.response, r.conc) == ("provisional", 5e4, None)
    qc = sample(SampleType.QC, nominal=50.0)
    assert quantify(peaks, qc, AREA_CAL, external).accuracy_pct == pytest.approx(100.0)
    assert quantify({"asn_quant": None}, qc, AREA_CAL, external).status == "no_peak"
