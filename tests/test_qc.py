"""Each QC rule at its edges: just inside passes, just outside flags. Records built here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from asnmon.assay import Assay
from asnmon.qc import (
    evaluate_calibration,
    evaluate_carryover,
    evaluate_injection,
    evaluate_ion_ratio,
    evaluate_is,
    evaluate_peak_quality,
    evaluate_range,
    evaluate_retention,
    evaluate_run,
)
from asnmon.records import (
    Calibration,
    CalibrationPoint,
    HistoryPoint,
    Peak,
    Result,
    Sample,
    SampleType,
    Severity,
)

T = SampleType


def hp(order: int, stype: SampleType = T.SAMPLE, **kw: object) -> HistoryPoint:
    return HistoryPoint(
        injection_id=order,
        order=order,
        sample_id=kw.pop("sample_id", f"S{order}"),  # type: ignore[arg-type]
        sample_type=stype,
        **kw,  # type: ignore[arg-type]
    )


def peak(tid: str, area: float = 1e5, rt: float = 3.2, **kw: object) -> Peak:
    base = dict(
        transition=tid,
        apex_rt=rt,
        start_rt=rt - 0.2,
        end_rt=rt + 0.2,
        area=area,
        height=area * 6,
        baseline_start=300.0,
        baseline_end=300.0,
        fwhm=0.15,
        sn=100.0,
        points=60,
    )
    base.update(kw)
    return Peak(**base)  # type: ignore[arg-type]


def cal(accepted: bool = True, lloq: float = 1.0, uloq: float = 500.0) -> Calibration:
    pts = (
        CalibrationPoint("CAL01", "CAL01", 1.0, 0.005, 1.0, 100.0),
        CalibrationPoint("CAL02", "CAL02", 2.5, 0.0125, 2.8, 112.0, True, "+12 %"),
    )
    return Calibration(
        1,
        "linear",
        "1/x^2",
        (0.0, 0.005, 0.0),
        0.999,
        pts,
        accepted,
        "accepted" if accepted else "rejected: only 5/8 standards within limits",
        lloq,
        uloq,
    )


def cals(n: int = 8, area: float = 1.5e5, rt: float = 3.2, ion: float = 0.45) -> list[HistoryPoint]:
    noms = [1, 2.5, 10, 25, 50, 100, 250, 500]
    return [
        hp(
            i + 1,
            T.CALIBRATOR,
            level=f"CAL0{i + 1}",
            nominal=float(noms[i % 8]),
            is_area=area,
            is_rt=rt,
            analyte_rt=rt,
            ion_ratio=ion,
            analyte_area=1000.0 * noms[i % 8],
            area_ratio=0.005 * noms[i % 8],
        )
        for i in range(n)
    ]


def codes(flags: list) -> list[str]:
    return [f.code for f in flags]


# ---------------------------------------------------------------- IS window


@pytest.mark.parametrize(
    ("pct", "code"),
    [(50.1, None), (49.9, "IS_LOW"), (149.9, None), (150.1, "IS_HIGH"), (100.0, None)],
)
def test_is_window_edges(assay: Assay, pct: float, code: str | None) -> None:
    h = cals()
    point = hp(9, is_area=1.5e5 * pct / 100)
    got = [c for c in codes(evaluate_is([*h, point], assay)) if c.startswith("IS_")]
    assert got == ([code] if code else [])


def test_is_window_message_has_numbers(assay: Assay) -> None:
    flags = evaluate_is([*cals(), hp(9, is_area=0.3 * 1.5e5)], assay)
    f = next(f for f in flags if f.code == "IS_LOW")
    assert f.severity is Severity.FAIL
    assert f.limit == 50.0
    assert f.value == pytest.approx(30.0)
    assert "30 %" in f.message
    assert f.source


def test_is_no_reference_is_said_not_guessed(assay: Assay) -> None:
    flags = evaluate_is([hp(1, T.ZERO, is_area=1e5)], assay)
    assert codes(flags) == ["IS_NO_REFERENCE"]
    assert flags[0].severity is Severity.INFO


def test_is_double_blank_excluded(assay: Assay) -> None:
    assert evaluate_is([*cals(), hp(9, T.DOUBLE_BLANK, is_area=10.0)], assay) == []


@pytest.mark.parametrize(
    ("mode", "ref"), [("cal_qc", 1.5e5), ("calibrators", 1.5e5), ("all", 1.15e5)]
)
def test_is_reference_modes(assay: Assay, mode: str, ref: float) -> None:
    a = replace(assay, limits=replace(assay.limits, is_reference=mode))
    h = [*cals(2), *[hp(3 + i, is_area=0.8e5) for i in range(2)]]  # samples lower
    point = hp(5, is_area=0.49 * ref)
    assert "IS_LOW" in codes(evaluate_is([*h, point], a))
    point = hp(5, is_area=0.51 * ref)
    assert "IS_LOW" not in codes(evaluate_is([*h, point], a))


# ---------------------------------------------------------------- drift and bias


def _series(factors: list[float], assay: Assay) -> list[list[str]]:
    h = cals()
    out = []
    for _i, f in enumerate(factors):
        h.append(hp(len(h) + 1, is_area=1.5e5 * f))
        out.append(codes(evaluate_is(h, assay)))
    return out


def test_drift_raised_once_inside_window_then_rearms(assay: Assay) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    flat = list(np.exp(rng.normal(0, 0.03, 20)))
    down = [0.97**k * float(np.exp(rng.normal(0, 0.03))) for k in range(1, 15)]
    back = list(np.exp(rng.normal(0, 0.03, 30)))
    per = _series(flat + down + back + [0.97**k for k in range(1, 15)], assay)
    raised = [i for i, c in enumerate(per) if "IS_DRIFT" in c]
    assert len(raised) == 2  # once per episode, re-armed after the recovery
    assert 20 <= raised[0] < 34
    assert raised[1] >= 64
    assert all("IS_LOW" not in per[i] for i in raised)


def test_drift_message_has_rate_and_start(assay: Assay) -> None:
    h = cals()
    for k in range(1, 20):
        h.append(hp(len(h) + 1, is_area=1.5e5 * 0.96**k))
        flags = [f for f in evaluate_is(h, assay) if f.code == "IS_DRIFT"]
        if flags:
            f = flags[0]
            assert f.value == pytest.approx(-4.0, abs=0.5)
            assert f.details["started_at"] >= 9
            assert "% per injection" in f.message
            return
    pytest.fail("no IS_DRIFT")


def test_single_short_injection_is_not_a_drift(assay: Assay) -> None:
    per = _series([1.0] * 10 + [0.3] + [1.0] * 10, assay)
    assert "IS_LOW" in per[10]
    assert not any("IS_DRIFT" in c for c in per)


@pytest.mark.parametrize(
    ("factor", "raised"), [(0.81, False), (0.79, True), (1.19, False), (1.21, True)]
)
def test_is_bias_samples_vs_standards(assay: Assay, factor: float, raised: bool) -> None:
    h = cals(6)
    h += [hp(7 + i, T.QC, level="QC-M", nominal=200.0, is_area=1.5e5) for i in range(3)]
    flags_per = []
    for _i in range(12):
        h.append(hp(len(h) + 1, is_area=1.5e5 * factor))
        flags_per.append(codes(evaluate_is(h, assay)))
    hits = [i for i, c in enumerate(flags_per) if "IS_BIAS" in c]
    assert (hits == [9]) if raised else (hits == [])


# ---------------------------------------------------------------- RT and ion ratio


@pytest.mark.parametrize(
    ("ref_rt", "shift", "flagged"),
    [
        (5.0, 0.124, False),  # 2.5 % of 5.0 min = 0.125 min, above the 0.1-min floor
        (5.0, 0.126, True),
        (5.0, -0.126, True),
        (3.2, 0.099, False),  # 2.5 % = 0.08 min: the 0.1-min floor applies
        (3.2, 0.101, True),
        (0.98, 0.025, False),  # the real negative-mode file's early RT: 2.5 % is 1.5 s
        (0.98, -0.099, False),
        (0.98, 0.101, True),
    ],
)
def test_rt_shift_edges_with_absolute_floor(
    assay: Assay, ref_rt: float, shift: float, flagged: bool
) -> None:
    h = cals(rt=ref_rt)
    rt = ref_rt + shift
    point = hp(9, is_rt=rt, is_area=1.5e5)
    peaks = {"is_quant": peak("is_quant", rt=rt), "asn_quant": peak("asn_quant", rt=rt)}
    flags = [f for f in evaluate_retention(point, peaks, h, assay) if f.code == "RT_SHIFT"]
    assert bool(flags) is flagged
    if flags:
        assert flags[0].details["tolerance"] == pytest.approx(max(0.025 * ref_rt, 0.1))


def test_rt_floor_is_configurable(assay: Assay) -> None:
    lim = replace(assay.limits, rt_tolerance_min_floor=0.0)
    strict = replace(assay, limits=lim)
    point = hp(9, is_rt=0.98 + 0.03, is_area=1.5e5)
    peaks = {"is_quant": peak("is_quant", rt=1.01), "asn_quant": peak("asn_quant", rt=1.01)}
    assert "RT_SHIFT" in codes(evaluate_retention(point, peaks, cals(rt=0.98), strict))


@pytest.mark.parametrize(("gap", "flagged"), [(0.049, False), (0.051, True)])
def test_coelution_edges(assay: Assay, gap: float, flagged: bool) -> None:
    point = hp(9, is_rt=3.2, is_area=1.5e5)
    peaks = {"is_quant": peak("is_quant"), "asn_quant": peak("asn_quant", rt=3.2 + gap)}
    flags = evaluate_retention(point, peaks, cals(), assay)
    hits = [f for f in flags if f.code == "COELUTION" and f.details["kind"] == "apex_offset"]
    assert bool(hits) is flagged
    assert "RT_SHIFT" not in codes(flags)  # the IS itself is on time


@pytest.mark.parametrize(("r", "flagged"), [(0.95, False), (0.90, False), (0.89, True)])
def test_coelution_shape(assay: Assay, r: float, flagged: bool) -> None:
    point = hp(9, is_rt=3.2, is_area=1.5e5)
    peaks = {"is_quant": peak("is_quant"), "asn_quant": peak("asn_quant", shape_r=r)}
    flags = [f for f in evaluate_retention(point, peaks, cals(), assay) if f.code == "COELUTION"]
    assert bool(flags) is flagged
    if flags:
        assert flags[0].severity is Severity.WARNING
        assert f"{r:.2f}" in flags[0].message


@pytest.mark.parametrize(
    ("ref", "ratio", "flagged"),
    [
        (0.45, 0.45 * 1.249, False),  # weak qualifier: ±25 %
        (0.45, 0.45 * 1.251, True),
        (0.80, 0.80 * 1.199, False),  # strong qualifier: ±20 %
        (0.80, 0.80 * 0.799, True),
    ],
)
def test_ion_ratio_edges(assay: Assay, ref: float, ratio: float, flagged: bool) -> None:
    point = hp(9, analyte_area=1e5, ion_ratio=ratio, is_area=1.5e5)
    peaks = {"asn_quant": peak("asn_quant")}
    got = codes(evaluate_ion_ratio(point, peaks, cals(ion=ref), assay))
    assert (got == ["ION_RATIO"]) is flagged


def test_ion_ratio_skipped_for_weak_peaks(assay: Assay) -> None:
    point = hp(9, analyte_area=1e3, ion_ratio=2.0)
    peaks = {"asn_quant": peak("asn_quant", sn=5.0)}
    assert evaluate_ion_ratio(point, peaks, cals(), assay) == []


# ---------------------------------------------------------------- peak quality


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"sn": 10.0}, None),
        ({"sn": 9.9}, "LOW_SN"),
        ({"points": 8}, None),
        ({"points": 7}, "FEW_POINTS"),
        ({"saturated": True}, "SATURATION"),
        ({"truncated": True}, None),  # cut by a partner's window only: named in its flag
        (
            {"truncated": True, "acquisition_cut": True, "cut_side": "right", "cut_pct": 4.0},
            "PEAK_TRUNCATED",
        ),
    ],
)
def test_peak_quality(assay: Assay, kw: dict, code: str | None) -> None:
    peaks = {"is_quant": peak("is_quant"), "asn_quant": peak("asn_quant", **kw)}
    sample = Sample("f", "QC-L-01", T.QC, level="QC-L", nominal=3.0)
    got = codes(evaluate_peak_quality(peaks, sample, Result("ok"), assay))
    assert got == ([code] if code else [])


def test_weak_analyte_in_blq_sample_is_not_low_sn(assay: Assay) -> None:
    peaks = {"is_quant": peak("is_quant"), "asn_quant": peak("asn_quant", sn=3.0)}
    sample = Sample("f", "S1", T.SAMPLE)
    assert evaluate_peak_quality(peaks, sample, Result("BLQ"), assay) == []


# ---------------------------------------------------------------- carryover


@pytest.mark.parametrize(
    ("area", "is_area", "expected"),
    [
        (199.0, None, []),
        (201.0, None, ["CARRYOVER"]),
        (0.0, 7400.0, []),
        (0.0, 7600.0, ["CARRYOVER"]),
    ],
)
def test_carryover_after_uloq(
    assay: Assay, area: float, is_area: float | None, expected: list
) -> None:
    h = cals()  # CAL01 analyte area 1000 (LLOQ response); CAL08 last (ULOQ); IS 1.5e5
    point = hp(9, T.BLANK, analyte_area=area or None, is_area=is_area)
    assert codes(evaluate_carryover(point, h, assay)) == expected


def test_no_carryover_rule_after_a_low_injection(assay: Assay) -> None:
    h = cals(3)
    assert evaluate_carryover(hp(4, T.BLANK, analyte_area=900.0), h, assay) == []


def test_double_blank_contamination_always_checked(assay: Assay) -> None:
    h = [*cals(), hp(9, analyte_area=10.0)]
    flags = evaluate_carryover(hp(10, T.DOUBLE_BLANK, analyte_area=500.0), h, assay)
    assert codes(flags) == ["CARRYOVER"]
    assert flags[0].value == pytest.approx(50.0)


def test_zero_sample_carryover_uses_ratio(assay: Assay) -> None:
    h = cals()  # LLOQ ratio 0.005; 20 % = 0.001
    assert codes(evaluate_carryover(hp(9, T.ZERO, area_ratio=0.0011), h, assay)) == ["CARRYOVER"]
    assert evaluate_carryover(hp(9, T.ZERO, area_ratio=0.0009), h, assay) == []


# ---------------------------------------------------------------- range and QCs


def qc(nominal: float, acc: float | None, status: str = "ok") -> tuple[Result, Sample]:
    return (
        Result(status, area_ratio=0.01, accuracy_pct=acc, calibration_version=1),
        Sample("f", "QC", T.QC, level="QC", nominal=nominal),
    )


@pytest.mark.parametrize(
    ("nominal", "acc", "flagged"),
    [
        (200.0, 114.9, False),
        (200.0, 115.1, True),
        (200.0, 84.9, True),
        (1.0, 119.9, False),
        (1.0, 120.1, True),
        (3.0, 116.0, True),
    ],
)
def test_qc_fail_edges(assay: Assay, nominal: float, acc: float, flagged: bool) -> None:
    r, s = qc(nominal, acc)
    assert (codes(evaluate_range(r, s, cal(), assay)) == ["QC_FAIL"]) is flagged


def test_qc_without_value_fails(assay: Assay) -> None:
    r, s = qc(200.0, None, "no_peak")
    assert codes(evaluate_range(r, s, cal(), assay)) == ["QC_FAIL"]


def sample_result(status: str, conc: float | None = None, ratio: float = 0.1) -> Result:
    return Result(
        status, area_ratio=ratio, conc_vial=conc, conc=conc, unit="µM", calibration_version=1
    )


@pytest.mark.parametrize(
    ("matrix", "status", "conc", "expected"),
    [
        ("plasma", "ok", 35.0, []),
        ("plasma", "ok", 34.9, ["REF_LOW"]),
        ("plasma", "ok", 75.1, ["REF_HIGH"]),
        ("plasma", "ok", 2.9, ["DEPLETED"]),  # expected on asparaginase: info, not REF_LOW
        ("plasma", "BLQ", None, ["BLQ", "DEPLETED"]),
        ("media", "BLQ", None, ["BLQ"]),
        ("media", "ok", 300.0, []),
    ],
)
def test_range_and_reference(
    assay: Assay, matrix: str, status: str, conc: float | None, expected: list
) -> None:
    s = Sample("f", "S1", T.SAMPLE, matrix=matrix)
    flags = evaluate_range(sample_result(status, conc), s, cal(), assay)
    assert codes(flags) == expected
    if "DEPLETED" in expected:
        assert all(f.severity is Severity.INFO for f in flags)


def test_alq_suggests_dilution_from_extrapolation(assay: Assay) -> None:
    s = Sample("f", "S1", T.SAMPLE, matrix="media")
    flags = evaluate_range(sample_result("ALQ", ratio=0.005 * 900), s, cal(), assay)
    f = flags[0]
    assert f.code == "ALQ"
    assert f.details["dilution"] == 5
    assert "1:5" in f.message


def test_provisional_and_rejected_curve(assay: Assay) -> None:
    s = Sample("f", "S1", T.SAMPLE, matrix="plasma")
    flags = evaluate_range(Result("provisional", area_ratio=0.2), s, cal(False), assay)
    assert codes(flags) == ["NO_CALIBRATION"]
    assert "rejected" in flags[0].message


def test_quant_codes_only_from_evaluate_range(assay: Assay) -> None:
    from asnmon.store import QUANT_CODES

    s = Sample("f", "S1", T.SAMPLE, matrix="plasma")
    for status, conc in (("ok", 2.0), ("BLQ", None), ("ALQ", None), ("ok", 100.0)):
        for f in evaluate_range(sample_result(status, conc), s, cal(), assay):
            assert f.code in QUANT_CODES


# ---------------------------------------------------------------- calibration and run


def test_cal_fail_lists_reason_and_exclusions() -> None:
    flags = evaluate_calibration(cal(False))
    assert codes(flags) == ["CAL_FAIL"]
    assert "CAL02" in flags[0].message
    assert evaluate_calibration(cal(True)) == []
    assert codes(evaluate_calibration(cal(True), report_exclusions=True)) == ["CAL_EXCLUDED"]


def qcs(accs: dict[str, list[float]]) -> list[HistoryPoint]:
    out = []
    for level, values in accs.items():
        for v in values:
            out.append(
                hp(len(out) + 1, T.QC, level=level, nominal=200.0, accuracy_pct=v, status="ok")
            )
    return out


@pytest.mark.parametrize(
    ("accs", "verdict"),
    [
        ({"L": [100, 100], "M": [100, 100], "H": [100, 100]}, "pass"),
        ({"L": [100, 120], "M": [100, 100], "H": [100, 100]}, "at risk"),  # 1 of 2 at L
        ({"L": [100, 120], "M": [100, 120], "H": [100, 100]}, "at risk"),  # 4 of 6 overall
        ({"L": [120, 120], "M": [100, 100], "H": [100, 100]}, "fail"),  # level L 0 of 2
        ({"L": [100, 120, 100], "M": [100, 100, 100], "H": [100, 100, 100]}, "pass"),
        ({"L": [100, 120, 100], "M": [100, 120, 100], "H": [120, 100, 100]}, "at risk"),
        ({"L": [100, 120, 100, 100], "M": [100, 120, 100], "H": [120, 100, 100]}, "at risk"),
        ({"L": [100, 120, 100], "M": [100, 120, 100], "H": [120, 120, 100]}, "fail"),  # 5/9
    ],
)
def test_run_verdict_ich_m10(assay: Assay, accs: dict, verdict: str) -> None:
    ev = evaluate_run(qcs(accs), cal(), assay)
    assert ev.verdict == verdict, ev.reasons
    assert ("RUN_FAIL" in codes(list(ev.flags))) is (verdict == "fail")


def test_run_pending_and_rejected_curve(assay: Assay) -> None:
    assert evaluate_run([], None, assay).verdict == "pending"
    assert evaluate_run([], cal(), assay).verdict == "pending"
    ev = evaluate_run([], cal(False), assay)
    assert ev.verdict == "fail"
    assert codes(list(ev.flags)) == ["RUN_FAIL"]


def test_evaluate_injection_clean_sample_has_no_flags(assay: Assay) -> None:
    peaks = {
        "is_quant": peak("is_quant", 1.5e5),
        "asn_quant": peak("asn_quant", 1e4),
        "asn_qual": peak("asn_qual", 0.45e4),
    }
    s = Sample("f", "S1", T.SAMPLE, matrix="plasma")
    r = sample_result("ok", 50.0)
    assert evaluate_injection(peaks, r, s, cal(), assay, cals()) == []


# ---------------------------------------------------------------- run lost early (worklist)


@pytest.mark.parametrize(
    ("accs", "left", "verdict", "words"),
    [
        # 5 of 9 failed, 3 left: at most 7 of 12 can pass, 8 needed -> lost now
        (
            {"L": [100, 120, 100], "M": [100, 120, 100], "H": [120, 120, 120]},
            {"L": 1, "M": 1, "H": 1},
            "fail",
            "5 of 9 QCs failed; with 3 left, at most 7 of 12 can pass (8 needed",
        ),
        # 4 of 9 failed, 3 left: 8 of 12 = 2/3 still possible -> at risk, not failed yet
        (
            {"L": [100, 120, 100], "M": [100, 120, 100], "H": [120, 120, 100]},
            {"L": 1, "M": 1, "H": 1},
            "at risk",
            "4 of 9 QCs failed; all 3 left must pass (8 of 12 needed)",
        ),
        # level L: 0 of 2, one left -> at most 1 of 3 < 50 %, however well M and H do
        (
            {"L": [120, 120], "M": [100, 100], "H": [100, 100]},
            {"L": 1, "M": 1, "H": 1},
            "fail",
            "L: 2 of 2 L QCs failed; with 1 left, at most 1 of 3 can pass (2 needed",
        ),
        # level L 0 of 2 with 2 left: 2 of 4 = 50 % still possible
        (
            {"L": [120, 120], "M": [100, 100], "H": [100, 100]},
            {"L": 2, "M": 2, "H": 2},
            "at risk",
            "L: 2 of 2 L QCs failed; all 2 left must pass",
        ),
    ],
)
def test_run_lost_early_with_the_arithmetic(
    assay: Assay, accs: dict, left: dict, verdict: str, words: str
) -> None:
    ev = evaluate_run(qcs(accs), cal(), assay, remaining_qcs=left)
    assert ev.verdict == verdict, ev.reasons
    text = " ".join(ev.reasons)
    assert words in text, text
    run_fail = [f for f in ev.flags if f.code == "RUN_FAIL"]
    if verdict == "fail":
        assert words in run_fail[0].message
        assert run_fail[0].details["lost_early"] is True
        assert "Stop the queue" in run_fail[0].action
    else:
        assert run_fail == []


def test_a_lost_run_stays_lost_whatever_passes_later(assay: Assay) -> None:
    """The early call is final: feeding every remaining QC as a pass never lifts it."""
    accs = {"L": [100, 120, 100], "M": [100, 120, 100], "H": [120, 120, 120]}
    history = qcs(accs)
    left = {"L": 1, "M": 1, "H": 1}
    assert evaluate_run(history, cal(), assay, remaining_qcs=left).verdict == "fail"
    for level in ("L", "M", "H"):
        history.append(
            hp(len(history) + 1, T.QC, level=level, nominal=200.0, accuracy_pct=100, status="ok")
        )
        left[level] -= 1
        ev = evaluate_run(history, cal(), assay, remaining_qcs=left)
        assert ev.verdict == "fail", ev.reasons
    assert "7 of 12 QCs pass" in " ".join(ev.reasons)


# ---------------------------------------------------------------- the live drift forecast


def drifting_run(rate: float, seed: int, n: int, start: int = 30) -> list[HistoryPoint]:
    """The simulator's layout (zero, 8 calibrators, QC sets every 10 samples), seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    kinds = [T.ZERO] + [T.CALIBRATOR] * 8 + [T.QC] * 3
    while len(kinds) < n:
        kinds += [T.SAMPLE] * 10 + [T.QC] * 3
    out = []
    for i, kind in enumerate(kinds[:n], start=1):
        factor = (1 - rate / 100) ** max(i - start, 0)
        area = 1.5e5 * factor * float(np.exp(rng.normal(0, 0.04)))
        out.append(hp(i, kind, level="QC-M" if kind is T.QC else None, is_area=area))
    return out


def test_drift_forecast_is_live_and_converges(assay: Assay) -> None:
    """At the alarm the forecast is rough; recomputed at each later injection from every
    point since the onset, it converges on the true crossing (injection 58 for 2.5 %/inj
    from 30) instead of staying frozen at the alarm's 10-point slope."""
    from asnmon.qc import is_context, is_drift_flag

    full = drifting_run(2.5, seed=5, n=70)
    alarm = next(i for i in range(30, 70) if "IS_DRIFT" in codes(evaluate_is(full[: i + 1], assay)))
    seen = {}
    for now in range(alarm, 57):
        flag = is_drift_flag(is_context(full[: now + 1], assay), assay)
        assert flag is not None and flag.code == "IS_DRIFT"
        seen[now] = flag
    later = seen[alarm + 10]
    assert later.details["updated_at"] == alarm + 11  # recomputed at that injection
    assert later.details["n_points"] > seen[alarm].details["n_points"]
    assert abs(later.details["crossing_at"] - 58) <= 3
    assert later.details["rate_low_pct"] <= -2.5 <= later.details["rate_high_pct"]
    assert later.value == pytest.approx(-2.5, abs=0.5)
    assert f"{later.value:+.1f} % per injection" in later.message
    assert f"about injection {later.details['crossing_at']}" in later.message
    # escalation: far off a warning; within limits.is_drift_escalate_n a fail, same code
    far = [f for f in seen.values() if f.details["remaining"] > assay.limits.is_drift_escalate_n]
    near = [f for f in seen.values() if 0 < f.details["remaining"] <= 4]
    assert far and all(f.severity is Severity.WARNING for f in far)
    assert near and all(f.severity is Severity.FAIL for f in near)
    assert all("Pause the queue" in f.action for f in near)
    assert all(f.details["escalated"] is (f.severity is Severity.FAIL) for f in seen.values())


def test_drift_forecast_gives_the_time_and_the_samples_after(assay: Assay) -> None:
    from datetime import UTC, datetime, timedelta

    from asnmon.forecast import Pace
    from asnmon.qc import is_context, is_drift_flag

    run = drifting_run(5.0, seed=2, n=40)
    ctx = is_context(run, assay)
    last = datetime(2024, 5, 6, 13, 0, tzinfo=UTC)
    upcoming = [Sample(f"{k:03d}", f"S{k:03d}", T.SAMPLE, position=k) for k in range(41, 60)]
    flag = is_drift_flag(
        ctx, assay, last_order=40, pace=Pace(last, timedelta(minutes=8), 10), upcoming=upcoming
    )
    assert flag is not None
    at = flag.details["crossing_at"]
    assert isinstance(at, int) and 41 <= at <= 50
    expected = last + timedelta(minutes=8) * (flag.details["remaining"])  # type: ignore[operator]
    assert f"≈ {expected:%H:%M} UTC at the current interval of 8.0 min" in flag.message
    assert flag.details["samples_after"][0] == [at, f"S{at:03d}"]
    assert f"S{at:03d} (position {at})" in flag.message


def test_drift_below_the_window_says_it_crossed(assay: Assay) -> None:
    from asnmon.qc import is_context, is_drift_flag

    flag = is_drift_flag(is_context(drifting_run(5.0, seed=3, n=60), assay), assay)
    assert flag is not None and flag.severity is Severity.FAIL
    assert "It passed 50 % at about injection" in flag.message
    assert abs(flag.details["crossing_at"] - 44) <= 2  # 30 + 14: 0.95^14 = 0.49


# ---------------------------------------------------------------- a reference drift cannot move


def test_reference_is_frozen_at_the_drift_onset(assay: Assay) -> None:
    """IS drifting 2.5 %/inj from injection 30: late injections are judged against the
    in-control level (the truth, ~the factor) -- drifted calibrators/QCs do not pull the
    reference down -- and the first injections, which came before any reference, get the
    first reference's ~100 %, not the drifted run mean (issue 12: ZERO 128 %, CAL01 143 %)."""
    from asnmon.qc import is_context

    run = drifting_run(2.5, seed=7, n=75)
    ctx = is_context(run, assay)
    by_order = {p.order: k for k, p in enumerate(ctx.points)}
    for order in (55, 60, 65, 70):
        k = by_order[order]
        truth = 100 * 0.975 ** (order - 30)
        measured = 100 * run[order - 1].is_area / 1.5e5  # type: ignore[operator]
        pct = ctx.pct[k]
        assert pct is not None
        assert abs(pct - measured) < 0.06 * measured, (order, pct, measured, truth)
    assert ctx.reference[by_order[70]] == pytest.approx(ctx.reference[by_order[40]], rel=0.02)
    zero, cal01 = ctx.settled_pct[0], ctx.settled_pct[1]
    assert zero is not None and cal01 is not None
    assert 88 < zero < 112 and 88 < cal01 < 112
    assert all(
        p is None for p, r in zip(ctx.settled_pct, ctx.reference, strict=True) if r is not None
    )
    # the early injections' numbers do not depend on what came later
    early = is_context(run[:25], assay)
    assert early.pct == ctx.pct[: len(early.pct)]
    assert early.settled_pct == ctx.settled_pct[: len(early.settled_pct)]


def test_is_context_asked_again_or_with_another_last_point(assay: Assay) -> None:
    """The context last returned is reused only for the very same points."""
    from dataclasses import replace

    from asnmon.qc import is_context

    run = drifting_run(2.5, seed=2, n=50)
    ctx = is_context(run, assay)
    assert is_context(list(run), assay) is ctx
    other = [*run[:-1], replace(run[-1], is_area=(run[-1].is_area or 0.0) * 0.4)]
    moved = is_context(other, assay)
    assert moved.pct[-1] == pytest.approx(0.4 * (ctx.pct[-1] or 0.0))
    assert moved.pct[:-1] == ctx.pct[:-1]
    assert is_context(run, assay).pct == ctx.pct


# ---------------------------------------------------------------- RT trending to its tolerance


def rt_run(rate: float, seed: int, n: int, start: int = 20, jitter: float = 0.005) -> list:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = cals(8)
    for i in range(9, n + 1):
        rt = 3.2 + rate * max(i - start, 0) + float(rng.normal(0, jitter))
        out.append(hp(i, is_area=1.5e5, is_rt=rt, analyte_rt=rt))
    return out


def test_rt_trend_warns_before_rt_shift_with_a_forecast(assay: Assay) -> None:
    """+0.004 min per injection from injection 20: the tolerance (max(2.5 %, 0.1 min) =
    0.1 min) is crossed at injection 45; RT_TREND comes once, before any RT_SHIFT, and
    its forecast is within a few injections of 45."""
    from asnmon.qc import evaluate_rt_trend

    run = rt_run(0.004, seed=1, n=60)
    raised, shifted = [], []
    for i in range(9, 61):
        flags = evaluate_rt_trend(run[:i], assay)
        raised += [(i, f) for f in flags if f.code == "RT_TREND"]
        if "RT_SHIFT" in codes(evaluate_retention(run[i - 1], {}, run[: i - 1], assay)):
            shifted.append(i)
    assert len(raised) == 1
    at, flag = raised[0]
    assert shifted and at < min(shifted)
    assert flag.severity is Severity.WARNING
    assert abs(flag.details["crossing_at"] - 45) <= 4
    assert "RT reaches the ±0.100 min tolerance at about injection" in flag.message
    assert flag.value == pytest.approx(60 * 0.004, rel=0.35)  # s per injection


def test_rt_trend_silent_on_clean_runs(assay: Assay) -> None:
    from asnmon.qc import evaluate_rt_trend

    for seed in range(3):
        run = rt_run(0.0, seed=seed, n=200, jitter=0.01)
        assert not any(evaluate_rt_trend(run[:i], assay) for i in range(9, 201))


@pytest.mark.parametrize("seed", range(5))
def test_rt_trend_forecast_follows_a_trend_that_began_inside_its_window(
    assay: Assay, seed: int
) -> None:
    """+0.01 min per injection from injection 30 (tolerance crossed at 40): when RT_TREND
    is raised, its 15 points straddle the onset. The forecast's rate interval holds the
    true rate and its crossing is within 2 injections of 40 (a straight line over the
    window read a median 0.004 and forecast 52)."""
    from asnmon.qc import rt_points, rt_trend_at, rt_trend_raised_at

    run = rt_run(0.01, seed=seed, n=45, start=30, jitter=0.01)
    pts = rt_points(run, assay)
    j = next(j for j in range(len(pts)) if pts[j].order >= 30 and rt_trend_raised_at(pts, j, assay))
    trend = rt_trend_at(pts, j, assay)
    assert trend is not None and pts[j].order < 40
    assert trend.rate_low <= 0.01 <= trend.rate_high, (trend.rate_low, trend.rate_high)
    assert abs(trend.crossing - 40) <= 2, trend.crossing
    assert trend.crossing_late is not None and trend.crossing_late >= 40


def test_an_ended_drift_reads_the_same_kept_as_worked_out_again(assay: Assay) -> None:
    """IS_DRIFT of an episode that ended is kept (``is_drift_flag``) by the episode and its
    points: at every later injection, and on a copy of the points, what it works out anew."""
    import numpy as np

    from asnmon.qc import is_context, is_drift_flag
    from asnmon.qc.internal_standard import _drift_flag

    rng = np.random.default_rng(3)
    flat = list(np.exp(rng.normal(0, 0.03, 20)))
    down = [0.97**k * float(np.exp(rng.normal(0, 0.03))) for k in range(1, 15)]
    back = list(np.exp(rng.normal(0, 0.03, 20)))
    h = cals()
    ended = 0
    for f in flat + down + back + [0.96**k for k in range(1, 12)] + back:  # two episodes
        h.append(hp(len(h) + 1, is_area=1.5e5 * f))
        for points in (h, [replace(p) for p in h]):  # the same values, other objects
            ctx = is_context(points, assay)
            flag = is_drift_flag(ctx, assay, last_order=len(h))
            assert flag == _drift_flag(ctx, assay, len(h), None, ())
            ended += bool(ctx.episodes and ctx.episodes[-1].end is not None)
    assert ended > 10, "no ended episode: the test no longer reads kept flags"
