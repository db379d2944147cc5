"""One injection's rules together, and the run's verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asnmon.assay import Assay
from asnmon.qc._base import (
    _FRACTION_TOL,
    _flag,
    _fmt,
)
from asnmon.qc.carryover import evaluate_carryover
from asnmon.qc.chromatography import evaluate_ion_ratio, evaluate_retention
from asnmon.qc.internal_standard import drift_episodes, evaluate_is, is_context
from asnmon.qc.peaks import evaluate_peak_quality, evaluate_peaks
from asnmon.qc.quantities import evaluate_range, qc_tolerance
from asnmon.records import Calibration, Flag, HistoryPoint, Peak, Result, Role, Sample, SampleType
from asnmon.records import Severity as S


def evaluate_injection(
    peaks: Mapping[str, Peak | None],
    result: Result,
    sample: Sample,
    calibration: Calibration | None,
    assay: Assay,
    history: Sequence[HistoryPoint] = (),
) -> list[Flag]:
    """All per-injection rules. ``history``: earlier injections of the run, in order."""
    point = history_point(-1, len(history) + 1, sample, peaks, result, assay)
    flags = external_calibration_flags(assay)
    flags += evaluate_peaks(peaks, sample, assay)
    flags += evaluate_peak_quality(peaks, sample, result, assay)
    flags += evaluate_is([*history, point], assay)
    flags += evaluate_retention(point, peaks, history, assay)
    flags += evaluate_ion_ratio(point, peaks, history, assay)
    flags += evaluate_carryover(point, history, assay)
    flags += evaluate_range(result, sample, calibration, assay)
    return flags


def external_calibration_flags(assay: Assay) -> list[Flag]:
    """EXTERNAL_CALIBRATION on every injection of an assay without an IS: a statement of
    method (info), naming every IS rule that is not applied and what stays uncorrected."""
    if assay.is_quant is not None:
        return []
    return [
        _flag(
            "EXTERNAL_CALIBRATION",
            S.INFO,
            "External calibration: the assay has no internal standard, so this injection "
            "is quantified on the analyte area alone. IS rules not applied: IS window, IS "
            "drift, IS bias, IS carryover, analyte/IS co-elution. Nothing corrects for "
            "injection volume, matrix suppression or a drifting source; an injection that "
            "did not happen reads as 'no analyte'.",
            "Watch the QCs: with no IS they are the only check on recovery and sensitivity.",
            source="assay without an is_quant transition (external calibration)",
        )
    ]


# ---------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class RunEvaluation:
    """The run's verdict as of now, and the run-level flags that support it."""

    verdict: str  # "pending" | "pass" | "at risk" | "fail"
    reasons: tuple[str, ...]
    flags: tuple[Flag, ...] = ()  # run-level flags (no injection), codes in RUN_LEVEL_CODES


@dataclass(frozen=True, slots=True)
class QcTally:
    level: str
    n: int
    passed: int


def qc_tally(
    history: Sequence[HistoryPoint], calibration: Calibration, assay: Assay
) -> list[QcTally]:
    """Pass counts per QC level against the current curve (no value = failed)."""
    levels: dict[str, list[bool]] = {}
    for h in history:
        if h.sample_type is not SampleType.QC or h.status == "provisional":
            continue
        name = h.level or (f"{_fmt(h.nominal)}" if h.nominal is not None else "QC")
        if h.error or h.accuracy_pct is None:
            ok = False
        else:
            ok = abs(h.accuracy_pct - 100.0) <= qc_tolerance(h.nominal, calibration, assay)
        levels.setdefault(name, []).append(ok)
    return [QcTally(k, len(v), sum(v)) for k, v in levels.items()]


def evaluate_run(
    history: Sequence[HistoryPoint], calibration: Calibration | None, assay: Assay
) -> RunEvaluation:
    """Pass / at risk / fail with reasons, kept current as injections arrive.

    ICH M10 run acceptance on the QCs so far: >= 2/3 of all QCs and >= 50 % at
    each level within tolerance. "at risk": one more failure (overall or at any
    level) would fail the run, a file could not be read, or the IS is drifting.
    The verdict applies the rules to what has arrived: a run that fails early can
    recover as more QCs pass, exactly as the final ICH M10 count would.
    """
    lim = assay.limits
    src = "ICH M10 (run acceptance); limits.run_qc_pass_fraction / run_qc_level_pass_fraction"
    if calibration is None:
        return RunEvaluation("pending", ("no calibration curve yet",))
    if not calibration.accepted:
        reason = f"calibration v{calibration.version} rejected: {calibration.reason}"
        return RunEvaluation(
            "fail",
            (reason,),
            (
                _flag(
                    "RUN_FAIL",
                    S.FAIL,
                    f"Run fails: {reason}",
                    "Fix or re-prepare the calibrators; the run's results cannot be reported.",
                    source="ICH M10 (calibration curve acceptance)",
                ),
            ),
        )
    tallies = qc_tally(history, calibration, assay)
    n = sum(t.n for t in tallies)
    passed = sum(t.passed for t in tallies)
    fails: list[str] = []
    risks: list[str] = []
    frac, level_frac = lim.run_qc_pass_fraction - _FRACTION_TOL, lim.run_qc_level_pass_fraction
    if n and passed / n < frac:
        fails.append(f"{passed} of {n} QCs pass (< {lim.run_qc_pass_fraction:.0%} required)")
    elif n and passed / (n + 1) < frac:
        risks.append(f"{passed} of {n} QCs pass: one more failure fails the run")
    for t in tallies:
        if t.passed / t.n < level_frac - _FRACTION_TOL:
            fails.append(f"{t.level}: {t.passed} of {t.n} pass (< {level_frac:.0%})")
        elif t.passed / (t.n + 1) < level_frac - _FRACTION_TOL:
            risks.append(f"{t.level}: {t.passed} of {t.n} pass: one more failure fails the level")
    errors = sum(h.error for h in history)
    if errors:
        risks.append(f"{errors} file(s) could not be read")
    ctx = is_context(history, assay)
    if ctx.points:
        episodes = drift_episodes(ctx, assay)
        if episodes and episodes[-1].end is None:
            e = episodes[-1]
            risks.append(
                f"IS {'falling' if e.direction == 'down' else 'rising'} {e.rate_pct:+.1f} % per "
                f"injection since injection {ctx.points[e.start].order}"
            )
    cal = f"calibration v{calibration.version} accepted"
    if fails:
        return RunEvaluation(
            "fail",
            tuple(fails + risks),
            (
                _flag(
                    "RUN_FAIL",
                    S.FAIL,
                    "Run fails ICH M10 QC acceptance: " + "; ".join(fails) + ".",
                    "Do not report this run's samples; investigate the failed QCs and re-run.",
                    passed / n if n else None,
                    lim.run_qc_pass_fraction,
                    src,
                    qc=[(t.level, t.n, t.passed) for t in tallies],
                ),
            ),
        )
    if not n:
        return RunEvaluation("pending", (cal, "no QC result yet", *risks))
    summary = f"{passed} of {n} QCs pass"
    if risks:
        return RunEvaluation("at risk", (summary, *risks))
    return RunEvaluation("pass", (cal, summary))


def history_point(
    injection_id: int,
    order: int,
    sample: Sample,
    peaks: Mapping[str, Peak | None],
    result: Result,
    assay: Assay,
    error: bool = False,
) -> HistoryPoint:
    """The summary of one injection that later rules look back on."""

    def peak(role: Role) -> Peak | None:
        t = assay.by_role(role)
        return peaks.get(t.id) if t else None

    quant, qual = peak(Role.ANALYTE_QUANT), peak(Role.ANALYTE_QUAL)
    is_peak = peak(Role.IS_QUANT)
    return HistoryPoint(
        injection_id=injection_id,
        order=order,
        sample_id=sample.sample_id,
        sample_type=sample.sample_type,
        level=sample.level,
        nominal=sample.nominal,
        analyte_area=quant.area if quant else None,
        is_area=is_peak.area if is_peak else None,
        analyte_rt=quant.apex_rt if quant else None,
        is_rt=is_peak.apex_rt if is_peak else None,
        ion_ratio=qual.area / quant.area if qual is not None and quant and quant.area else None,
        area_ratio=result.area_ratio,
        conc_vial=result.conc_vial,
        accuracy_pct=result.accuracy_pct,
        status=result.status,
        error=error,
    )
