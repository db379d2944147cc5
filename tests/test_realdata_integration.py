"""Group integration on real instrument files, judged against plain trapezoids.

``smartpeak_misc/RawDataProcessor_mzML_1.mzML`` is a negative-mode MRM run of an
asparagine method (131>114 quantifier, 131>95 qualifier, 13C4-Asn 135>118 IS).
What the file holds, read off its traces: the IS's scheduled window ends at
1.182 min while its peak (apex 0.95 min) is still ~4 % of its apex up; the
qualifier's window ends at 1.099 min; a low, broad hump (0.78-0.90 min) runs
into the front of the peak, relatively twice as large on the analyte as on the
IS; and the trace is flat and quiet at 130-460 counts between 0.68 and 0.76 min.

The SGI files (``sgi_cations_aa_mrm``, positive mode, no IS) are an 8-level
external calibration series; asparagine drifts between 14.0 and 16.8 min.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from asnmon.assay import Assay, Integration, load_assay
from asnmon.integrate import integrate_groups, integrate_injection, integrate_peak
from asnmon.mzml import read_file, read_injection
from asnmon.pipeline import process_file
from asnmon.records import Chromatogram, Sample, SampleType

NEG = "smartpeak_misc/RawDataProcessor_mzML_1.mzML"
ASSAY = Path(__file__).parent / "data" / "asn_negative_mrm.toml"
QUIET = (0.68, 0.76)  # min: the flat stretch before the hump, read off the traces


@pytest.fixture(scope="module")
def neg_assay() -> Assay:
    return load_assay(ASSAY)


@pytest.fixture(scope="module")
def neg(realdata: Path, neg_assay: Assay):
    return read_injection(realdata / NEG, neg_assay)


def trapezoid_above_quiet(trace: Chromatogram, lo: float, hi: float) -> float:
    """A reviewer's check: raw points in [lo, hi] minus the quiet stretch's median."""
    base = float(np.median(trace.intensity[(trace.rt >= QUIET[0]) & (trace.rt <= QUIET[1])]))
    m = (trace.rt >= lo - 1e-9) & (trace.rt <= hi + 1e-9)
    return float(np.trapezoid(trace.intensity[m] - base, trace.rt[m]))


def test_one_group_with_shared_boundaries_inside_the_common_interval(neg, neg_assay) -> None:
    (group,) = integrate_groups(neg, neg_assay)
    an, qual, is_ = (group.peaks[t] for t in ("asn_quant", "asn_qual", "is_quant"))
    assert an is not None and qual is not None and is_ is not None
    assert group.reference == "is_quant"
    assert group.apex_rt == pytest.approx(0.947, abs=0.01)
    is_trace, an_trace = neg.traces["is_quant"], neg.traces["asn_quant"]
    common_end = min(is_trace.rt[-1], an_trace.rt[-1])
    assert group.common == (
        pytest.approx(max(is_trace.rt[0], an_trace.rt[0])),
        pytest.approx(common_end),
    )
    # analyte and IS: exactly the same interval, ending where the IS stops being acquired
    assert (an.start_rt, an.end_rt) == (is_.start_rt, is_.end_rt) == (group.start_rt, group.end_rt)
    assert an.end_rt == pytest.approx(is_trace.rt[-1])
    assert an_trace.rt[-1] > an.end_rt + 0.1  # the analyte goes on; the group does not
    # the hump in front is a separate peak (a deep valley before the main rise)
    assert 0.86 <= an.start_rt <= 0.92
    # the qualifier shares the start, and stops where its own acquisition does
    assert qual.start_rt == an.start_rt
    assert qual.end_rt == pytest.approx(neg.traces["asn_qual"].rt[-1])


def test_ratio_matches_a_trapezoid_over_the_common_bounds(neg, neg_assay) -> None:
    peaks = integrate_injection(neg, neg_assay)
    an, is_ = peaks["asn_quant"], peaks["is_quant"]
    assert an is not None and is_ is not None
    lo, hi = is_.start_rt, is_.end_rt
    t_an = trapezoid_above_quiet(neg.traces["asn_quant"], lo, hi)
    t_is = trapezoid_above_quiet(neg.traces["is_quant"], lo, hi)
    assert is_.area == pytest.approx(t_is, rel=0.02)
    assert an.area == pytest.approx(t_an, rel=0.02)
    assert an.area / is_.area == pytest.approx(t_an / t_is, rel=0.02)
    # the baselines are the quiet level (hundreds of counts), not a fitted tail (thousands)
    for p in (an, is_):
        assert p.baseline_start == p.baseline_end  # flat: no quiet stretch after the cut
        assert 100.0 < p.baseline_start < 600.0


def test_per_transition_bounds_stay_an_option(neg, neg_assay) -> None:
    per = replace(
        neg_assay, integration=replace(neg_assay.integration, boundaries="per_transition")
    )
    peaks = integrate_injection(neg, per)
    an, is_ = peaks["asn_quant"], peaks["is_quant"]
    assert an is not None and is_ is not None
    assert an.area > 0 and is_.area > 0
    assert (an.start_rt, an.end_rt) != (is_.start_rt, is_.end_rt)


def test_truncation_flagged_and_no_rt_shift_from_the_tiny_tolerance(
    realdata: Path, neg_assay: Assay
) -> None:
    path = realdata / NEG
    sample = Sample(file=path.stem, sample_id="QC broth", sample_type=SampleType.SAMPLE)
    out = process_file(path, "-", sample, neg_assay, None)
    cut = {f.details["transition"]: f for f in out.flags if f.code == "PEAK_TRUNCATED"}
    assert set(cut) == {"is_quant", "asn_qual"}
    is_flag = cut["is_quant"]
    assert is_flag.severity.value == "warning"
    assert is_flag.details["side"] == "right"
    assert 2.0 <= is_flag.details["pct_of_apex"] <= 7.0  # ~4 % read off the trace
    assert is_flag.details["cut_rt"] == pytest.approx(1.182, abs=0.002)
    assert "Asn 131>114" in is_flag.details["held"]  # the analyte was cut alike
    assert "ratio stays unbiased" in is_flag.message
    assert cut["asn_qual"].details["side"] == "right"
    assert "ion ratio" in cut["asn_qual"].message
    codes = {f.code for f in out.flags}
    assert "RT_SHIFT" not in codes  # IS apex 0.949 vs expected 0.98: 3 %, but 0.03 min
    assert "COELUTION" not in codes  # the IS and the analyte peak have one shape
    # without the floor, 2.5 % of 0.98 min (1.5 s) would call that shift
    strict = replace(neg_assay, limits=replace(neg_assay.limits, rt_tolerance_min_floor=0.0))
    out = process_file(path, "-", sample, strict, None)
    assert "RT_SHIFT" in {f.code for f in out.flags}


# ---------------------------------------------------------------- SGI, positive mode, no IS

SGI_LEVELS = {
    "Stds_039uM": 0.390625,
    "Stds_078uM": 0.78125,
    "Stds_1-56uM": 1.5625,
    "Stds_3-125uM": 3.125,
    "Stds_6-25uM": 6.25,
    "Stds_12-5uM": 12.5,
    "Stds_25uM": 25.0,
    "Stds_50uM": 50.0,
}


def _sgi_asn(realdata: Path, stem: str) -> Chromatogram:
    raw = read_file(realdata / "sgi_cations_aa_mrm" / f"{stem}.mzML")
    return next(
        c
        for c in raw.chromatograms
        if c.id.startswith("SRM SIC Q1=133.1 Q3=116 ") and c.id.endswith("transition=14")
    )


def test_sgi_standards_integrate_as_whole_peaks(realdata: Path) -> None:
    params = Integration()
    areas = []
    for stem, _conc in SGI_LEVELS.items():
        trace = _sgi_asn(realdata, stem)
        p = integrate_peak(trace, 13.9, 17.1, params, "asn")
        assert p is not None, stem
        assert 13.9 <= p.apex_rt <= 17.1
        # one whole peak, not a noise spike on its top: 40+ points at 0.006 min per point
        assert p.points >= 40, (stem, p.points)
        assert p.area > 0 and not p.truncated
        areas.append(p.area)
    # the series rises with the level (ranks); both ends a factor > 30 apart
    conc = list(SGI_LEVELS.values())
    ranks = np.argsort(np.argsort(areas))
    rho = float(np.corrcoef(ranks, np.argsort(np.argsort(conc)))[0, 1])
    assert rho >= 0.9
    assert areas[-1] / areas[0] > 30


@pytest.mark.parametrize("stem", ["No_1", "No_43"])
def test_sgi_unknowns_take_asparagine_not_the_interferent(realdata: Path, stem: str) -> None:
    trace = _sgi_asn(realdata, stem)
    assert 10.2 <= trace.rt[np.argmax(trace.intensity)] <= 11.2  # the interferent is tallest
    p = integrate_peak(trace, 13.9, 17.1, Integration(), "asn")
    assert p is not None
    assert 15.0 <= p.apex_rt <= 16.0
    assert p.start_rt > 12.0  # the boundaries never reach back to the interferent


def test_no_interference_is_seen_on_the_real_file(neg, neg_assay) -> None:
    """The hump before the peak is split off by its valley; nothing second inside the bounds."""
    (group,) = integrate_groups(neg, neg_assay)
    assert all(p is None or p.interference is None for p in group.peaks.values())


def test_the_real_files_baselines_agree(neg, neg_assay) -> None:
    """Its ratio is within 0.4 % of a reviewer's trapezoid: the baseline check stays quiet.

    (Offset +4.8 % at 1.8 SE: the hump before the peak is relatively larger on
    the analyte than on the IS, so the fit sees some of it -- below 2 SE.)
    """
    (group,) = integrate_groups(neg, neg_assay)
    an = group.peaks["asn_quant"]
    assert an is not None and an.baseline_doubt is not None  # the check ran
    d = an.baseline_doubt
    assert d.reference == "is_quant"
    integ = neg_assay.integration
    assert abs(d.offset_pct) < integ.baseline_offset_pct or d.t < integ.baseline_offset_t, d
