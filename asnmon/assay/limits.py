"""The assay's limits: each with its default, its allowed range and the rule it comes from.

``source`` in the field metadata is what flag messages, ``check-assay`` and the
README all name; ``lo``/``hi`` (inclusive) and ``above`` (exclusive) bound
what a value can be and still work, checked by ``asnmon.assay.parsing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _f(
    default: Any,
    source: str = "",
    help: str = "",
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] = (),
    above: float | None = None,
) -> Any:
    """A field with its default, its source and its allowed range (``above``: exclusive)."""
    meta = {"source": source, "help": help, "lo": lo, "hi": hi, "choices": choices}
    meta["above"] = above
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class Retention:
    expected_rt: float = _f(3.2, help="min, expected IS apex", lo=0.0)
    window: float = _f(0.6, help="min, half-width searched for the IS peak", lo=0.0)
    analyte_window: float = _f(0.1, help="min, half-width around the IS apex", lo=0.0)


@dataclass(frozen=True, slots=True)
class InterferenceLimits:
    """When a second compound on an analyte trace is called, separated or said.

    ``[integration.interference]``; used by ``asnmon/integrate/interference.py``.
    """

    min_sn: float = _f(
        5.0,
        source="between the detection (3 SD) and quantitation (10 SD) conventions of ICH Q2: "
        "a clean group's excess over its scaled IS stays below it",
        help="excess peak height / noise (smoothed) to call an interferent",
        above=0.0,
    )
    excess_share: float = _f(
        0.5,
        source="asnmon: most of the member's own signal there must be the excess, or it is "
        "the analyte's own shape",
        help="share of the member's signal at the excess apex that is excess",
        above=0.0,
        hi=1.0,
    )
    apex_gap_fwhm: float = _f(
        1.5,
        source="asnmon: beyond the top, where the member/IS scale is fitted; isobars of "
        "asparagine elute 0.2-0.3 min (3-5 FWHM) away",
        help="FWHM from the group apex where an excess peak may be",
        lo=0.5,
    )
    min_excess_pct: float = _f(
        1.0,
        source="asnmon: under 1 % of the area no reported value moves (ICH M10 allows ±15 %)",
        help="% of the area an interferent must add to be acted on and said",
        lo=0.0,
    )
    min_clean_share: float = _f(
        0.6,
        source="asnmon: the clean interval must hold most of the IS peak for the scaling to "
        "be an estimate (benchmarks/accuracy.py, interferent row)",
        help="IS share of its peak the clean interval must hold to separate",
        above=0.0,
        hi=1.0,
    )
    tail_share: float = _f(
        0.03,
        source="asnmon: 3 x integration.truncation_pct; an analyte still this high at the "
        "group start where its IS is not rides on an earlier peak's tail",
        help="member height at the group start (share of its apex) that means a tail",
        above=0.0,
        hi=1.0,
    )
    tail_sn: float = _f(
        3.0,
        source="detection convention (3 noise SDs, ICH Q2)",
        help="... and that many noise SDs up",
        above=0.0,
    )
    profile_change: float = _f(
        0.20,
        source="asnmon: clean simulated groups stay <= 0.15 per FWHM (benchmarks/accuracy.py)",
        help="member/IS ratio change per FWHM across the top that means a co-eluting compound",
        above=0.0,
    )
    profile_t: float = _f(
        4.0,
        source="asnmon: that change, this many standard errors from flat (noise alone: "
        "about 1 in 16,000)",
        help="standard errors the ratio's slope must stand from flat",
        above=0.0,
    )
    profile_sn: float = _f(
        10.0,
        source="quantitation convention S/N >= 10 (ICH M10 / CLSI C62-A): the slope is "
        "judged only on a peak that tall",
        help="member peak height in noise SDs below which the ratio's slope is not judged",
        above=0.0,
    )
    max_skim_share: float = _f(
        0.5,
        source="asnmon: a tail skim taking more than half the area is no estimate (said as "
        "a warning, not taken off)",
        help="largest share of the area a tail skim may take",
        above=0.0,
        hi=1.0,
    )


@dataclass(frozen=True, slots=True)
class Integration:
    boundaries: str = _f(
        "group",
        source="OpenMS MRMTransitionGroupPicker / Skyline: one peak per transition group",
        help="group: analyte and IS share boundaries; per_transition: each trace its own",
        choices=("group", "per_transition"),
    )
    smoothing_points: int = _f(
        0, help="Savitzky-Golay window for detection; 0 = sized to the peak", lo=0, hi=51
    )
    valley_depth: float = _f(
        0.5,
        source="asnmon default: a valley splits two apexes only if it dips this fraction "
        "of the smaller apex (noise dips on spiky tops stay one peak)",
        lo=0.0,
        hi=1.0,
    )
    truncation_pct: float = _f(
        1.0,
        source="asnmon default: a cut where the signal is still >= 1 % of the apex "
        "loses about 1 % of the area or more",
        lo=0.0,
    )
    min_points_across: int = _f(8, source="common LC-MS practice (>= 8-10 points per peak)", lo=1)
    min_sn: float = _f(10.0, source="LLOQ convention S/N >= 10 (ICH M10 / CLSI C62-A)", lo=0)
    saturation_intensity: float = _f(1.0e9, help="detector ceiling", lo=0)
    baseline_offset_pct: float = _f(
        3.0,
        source="asnmon (benchmarks/accuracy.py, 40 seeds x 4 levels per scenario): at 3 % "
        "and 2 SE no file of the base, spiky or low-points rows is flagged and 4 of the 7 "
        "drift files off by > 5 % that no flag named are",
        help="the analyte's constant offset against its IS's profile, % of its area, "
        "that means their baselines disagree (BASELINE_UNCERTAIN)",
        above=0.0,
    )
    baseline_offset_t: float = _f(
        2.0,
        source="asnmon: ... and that many standard errors from 0 (noise alone: ~5 %, "
        "so the % limit does most of the work)",
        help="standard errors the offset must stand from 0",
        lo=0.0,
    )
    interference: InterferenceLimits = field(default_factory=InterferenceLimits)


@dataclass(frozen=True, slots=True)
class TraceLimits:
    """Checks on each trace before integration (``asnmon/traces.py``)."""

    max_point_spacing_s: float = _f(
        10.0,
        source="MRM cycle times are 0.02-5 s (real files: 0.1-3.4 s); seconds labelled "
        "minutes give 60x that",
        lo=0,
    )
    max_span_min: float = _f(
        240.0,
        source="longest LC gradient of a targeted method (2-3 h); seconds labelled minutes "
        "give 60x the run",
        lo=0,
    )
    cut_apex_fraction: float = _f(
        0.5,
        source="a peak cut above half its height has lost its top: its area is not "
        "an estimate (asnmon)",
        lo=0,
        hi=1,
    )


@dataclass(frozen=True, slots=True)
class CalibrationSpec:
    model: str = _f(
        "linear", source="ICH M10 (simplest adequate model)", choices=("linear", "quadratic")
    )
    weighting: str = _f(
        "1/x^2", source="Gu et al. 2014 (LC-MS/MS default)", choices=("1/x^2", "1/x", "none")
    )
    zero_intercept: bool = _f(False)
    lloq: float = _f(1.0, help="lowest calibrator", lo=0)
    uloq: float = _f(500.0, help="highest calibrator", lo=0)
    min_levels: int = _f(6, source="ICH M10: >= 6 non-zero levels", lo=2)
    accuracy_pct: float = _f(15.0, source="ICH M10: back-calculated within ±15 %", lo=0)
    accuracy_lloq_pct: float = _f(20.0, source="ICH M10: ±20 % at the LLOQ", lo=0)
    min_pass_fraction: float = _f(0.75, source="ICH M10: >= 75 % of standards", lo=0, hi=1)
    r2_min: float = _f(0.995, source="CLSI C62-A recommendation (warning only)", lo=0, hi=1)


@dataclass(frozen=True, slots=True)
class Limits:
    is_low_pct: float = _f(50.0, source="lab convention, FDA 2019 IS Q&A", lo=0)
    is_high_pct: float = _f(150.0, source="lab convention, FDA 2019 IS Q&A", lo=0)
    is_reference: str = _f(
        "cal_qc",
        source="mean IS of accepted calibrators and QCs",
        choices=("cal_qc", "calibrators", "all"),
    )
    rt_tolerance_pct: float = _f(2.5, source="CLSI C62-A", lo=0)
    rt_tolerance_min_floor: float = _f(
        0.1,
        source="SANTE/11312/2021 and Regulation (EU) 2021/808 (sample vs standard RT "
        "within ±0.1 min); "
        "CLSI C62-A's 2.5 % is below one MRM cycle at an early RT",
        lo=0,
    )
    coelution_tolerance: float = _f(
        0.05, source="stable-isotope IS co-elution", help="min, analyte apex vs IS apex", lo=0
    )
    coelution_min_r: float = _f(
        0.9,
        source="asnmon default; cf. the cross-correlation shape score of OpenMS/mProphet",
        help="analyte vs IS profile correlation inside the shared boundaries",
        lo=-1.0,
        hi=1.0,
    )
    ion_ratio_tolerance_pct: float = _f(20.0, source="CLSI C62-A", lo=0)
    ion_ratio_weak_tolerance_pct: float = _f(
        25.0, source="vendor practice for weak qualifiers", lo=0
    )
    weak_qualifier_ratio: float = _f(0.5, source="CLSI C62-A", lo=0)
    carryover_analyte_pct_lloq: float = _f(20.0, source="ICH M10; CLSI C62-A", lo=0)
    carryover_is_pct: float = _f(5.0, source="ICH M10; CLSI C62-A", lo=0)
    qc_accuracy_pct: float = _f(15.0, source="ICH M10", lo=0)
    qc_accuracy_lloq_pct: float = _f(20.0, source="ICH M10", lo=0)
    run_qc_pass_fraction: float = _f(0.667, source="ICH M10: >= 2/3 of QCs", lo=0, hi=1)
    run_qc_level_pass_fraction: float = _f(0.5, source="ICH M10: >= 50 % per level", lo=0, hi=1)
    cusum_k: float = _f(0.5, source="Panorama (CUSUM k = 0.5 SD)", lo=0)
    cusum_h: float = _f(5.0, source="Panorama (CUSUM h = 5 SD)", lo=0)
    is_drift_baseline_n: int = _f(
        8,
        source="in-control injections that set the IS level "
        "before CUSUM decides (asnmon, benchmarks/drift.py)",
        lo=2,
    )
    is_drift_min_cv_pct: float = _f(
        3.0, source="SD floor, below CLSI C62-A's expected 5-10 % IS CV", lo=0
    )
    is_drift_clip_sd: float = _f(
        3.0, source="robust CUSUM: one outlier adds at most clip - k SD", lo=0
    )
    is_drift_min_rate_pct: float = _f(
        0.75,
        source="confirmation: the IS must still "
        "be moving this many % per injection (benchmarks/drift.py)",
        lo=0,
    )
    is_drift_slope_window: int = _f(10, source="points for the Theil-Sen drift rate", lo=2)
    rt_trend_n: int = _f(
        15, source="injections in the Theil-Sen RT trend (asnmon default, RT_TREND)", lo=3
    )
    rt_trend_horizon: int = _f(
        20,
        source="[derived] RT_TREND warns when the RT trend reaches the tolerance within this "
        "many injections (about two QC brackets)",
        lo=1,
    )
    is_drift_forecast_confidence: float = _f(
        0.90, source="confidence of the drift rate's interval (Sen 1968)", lo=0.5, hi=0.999
    )
    is_drift_escalate_n: int = _f(
        10,
        source="[derived] about one QC bracket: IS_DRIFT becomes a fail when the forecast "
        "crossing is this few injections away, time to pause the queue",
        lo=0,
    )
    is_bias_n: int = _f(10, source="FDA 2019 IS Q&A (sample IS consistently higher/lower)", lo=2)
    is_bias_pct: float = _f(
        20.0,
        source="FDA 2019 IS Q&A; 20 % is far beyond the noise of a 10-sample mean at 4 % CV",
        lo=0,
    )


def limit_sources() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, source) for every documented limit: README and check-assay."""
    rows = []
    for section, cls in (
        ("integration", Integration),
        ("integration.interference", InterferenceLimits),
        ("calibration", CalibrationSpec),
        ("limits", Limits),
        ("traces", TraceLimits),
    ):
        for f in fields(cls):
            if f.metadata.get("source"):
                rows.append((section, f.name, f.default, f.metadata["source"]))
    return rows
