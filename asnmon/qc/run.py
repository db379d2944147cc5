"""One injection's rules together, and the run's verdict."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asnmon.assay import Assay
from asnmon.qc._base import (
    _FRACTION_TOL,
    _flag,
    _fmt,
)
from asnmon.qc._history import MEMO_LOCK, history_index
from asnmon.qc.carryover import evaluate_carryover
from asnmon.qc.chromatography import evaluate_ion_ratio, evaluate_retention
from asnmon.qc.internal_standard import drift_forecast, evaluate_is, is_context
from asnmon.qc.peaks import evaluate_peak_quality, evaluate_peaks
from asnmon.qc.quantities import evaluate_range, qc_tolerance
from asnmon.qc.retention_trend import evaluate_rt_trend
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
    now = (*history, point)  # one tuple for both: the run's index is checked once
    flags += evaluate_is(now, assay)
    flags += evaluate_retention(point, peaks, history, assay)
    flags += evaluate_rt_trend(now, assay)
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


def qc_level(level: str | None, nominal: float | None) -> str:
    """The name a QC's level is counted under (``qc_tally`` and the worklist's QCs left)."""
    return level or (f"{_fmt(nominal)}" if nominal is not None else "QC")


def qc_tally(
    history: Sequence[HistoryPoint], calibration: Calibration, assay: Assay
) -> list[QcTally]:
    """Pass counts per QC level against the current curve (no value = failed)."""
    index, m, rest = history_index(history)  # the run's QCs, kept between calls
    k = bisect_left(index.qc_pos, m)
    with MEMO_LOCK:  # the counts so far are kept with the index, per curve
        kept = index.memo.get("qc_tally")
        if (
            not isinstance(kept, _Tally)
            or kept.calibration is not calibration
            or kept.assay is not assay
        ):
            kept = index.memo["qc_tally"] = _Tally(calibration, assay)
        if kept.taken > k:  # a shorter history than last time: counted for it alone
            kept = _Tally(calibration, assay)
        kept.take(index.qc[kept.taken : k])
        now = _Tally(calibration, assay)
        now.levels = {name: list(counts) for name, counts in kept.levels.items()}
    now.take(rest)
    return [QcTally(name, n, passed) for name, (n, passed) in now.levels.items()]


class _Tally:
    """``qc_tally``'s counts over a run's QCs so far, for one curve (a refit: new counts)."""

    __slots__ = ("assay", "calibration", "levels", "taken")

    def __init__(self, calibration: Calibration, assay: Assay) -> None:
        self.calibration = calibration
        self.assay = assay
        self.levels: dict[str, list[int]] = {}  # level -> [QCs, passed], first seen first
        self.taken = 0

    def take(self, points: Sequence[HistoryPoint]) -> None:
        self.taken += len(points)
        for h in points:
            if h.sample_type is not SampleType.QC or h.status == "provisional":
                continue
            name = qc_level(h.level, h.nominal)
            if h.error or h.accuracy_pct is None:
                ok = False
            else:
                tol = qc_tolerance(h.nominal, self.calibration, self.assay)
                ok = abs(h.accuracy_pct - 100.0) <= tol
            counts = self.levels.setdefault(name, [0, 0])
            counts[0] += 1
            counts[1] += ok


def _needed(fraction: float, total: int) -> int:
    """Passes needed of ``total`` QCs for ``fraction`` ("2/3" written 0.667: 2 of 3)."""
    return max(0, math.ceil((fraction - _FRACTION_TOL) * total - 1e-9))


def _judge(
    label: str, passed: int, n: int, left: int | None, fraction: float
) -> tuple[str | None, str | None]:
    """(fail reason, risk reason) for one count: overall (label "") or one level.

    ``left``: QCs of this count still to come per the worklist (None: unknown).
    Known: fail only once the count cannot recover even if every one left passes,
    with the arithmetic; at risk while it needs them. Unknown: judge what has arrived.
    """
    what = f"{label}: " if label else ""
    kind = f"{label} QCs" if label else "QCs"
    failed = n - passed
    if left is None or left == 0:
        if n and passed < _needed(fraction, n):
            return f"{what}{passed} of {n} {kind} pass (< {fraction:.0%} required)", None
        if n and passed < _needed(fraction, n + 1):
            return None, f"{what}{passed} of {n} {kind} pass: one more failure fails the run"
        return None, None
    total = n + left
    need = _needed(fraction, total)
    if passed + left < need:
        return (
            f"{what}{failed} of {n} {kind} failed; with {left} left, at most {passed + left} of "
            f"{total} can pass ({need} needed, {fraction:.0%}): the run cannot pass any more",
            None,
        )
    if passed + left - 1 < need:
        return None, (
            f"{what}{failed} of {n} {kind} failed; all {left} left must pass "
            f"({need} of {total} needed)"
        )
    return None, None


def evaluate_run(
    history: Sequence[HistoryPoint],
    calibration: Calibration | None,
    assay: Assay,
    remaining_qcs: Mapping[str, int] | None = None,
) -> RunEvaluation:
    """Pass / at risk / fail with reasons, kept current as injections arrive.

    ICH M10 run acceptance: >= 2/3 of all QCs and >= 50 % at each level within
    tolerance. With ``remaining_qcs`` (QCs per level the worklist has still to
    inject) the run fails as soon as it cannot meet them even if every QC left
    passes -- the call is final, later QCs cannot undo it -- and is "at risk"
    while it needs them. Without it (no worklist) the rules apply to what has
    arrived, and a run that fails early can recover as more QCs pass. "at risk"
    also: one more failure would fail the run, a file could not be read, or the
    IS is drifting.
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
    rem = dict(remaining_qcs) if remaining_qcs is not None else None
    left = sum(rem.values()) if rem is not None else None
    fails: list[str] = []
    risks: list[str] = []
    judged = [_judge("", passed, n, left, lim.run_qc_pass_fraction)]
    level_frac = lim.run_qc_level_pass_fraction
    judged += [
        _judge(t.level, t.passed, t.n, rem.get(t.level, 0) if rem is not None else None, level_frac)
        for t in tallies
    ]
    for fail, risk in judged:
        fails += [fail] if fail else []
        risks += [risk] if risk else []
    index, m, rest = history_index(history)
    errors = index.errors[m] + sum(h.error for h in rest)
    if errors:
        risks.append(f"{errors} file(s) could not be read")
    ctx = is_context(history, assay)
    ongoing = bool(ctx.episodes) and ctx.episodes[-1].end is None  # an ended one is no risk
    found = drift_forecast(ctx, assay) if ongoing else None
    if found is not None:
        e, fc = found
        risks.append(
            f"IS {'falling' if e.direction == 'down' else 'rising'} {fc.rate_pct:+.1f} % per "
            f"injection since injection {ctx.points[e.start].order}"
        )
    cal = f"calibration v{calibration.version} accepted"
    if fails:
        lost = left is not None and left > 0
        return RunEvaluation(
            "fail",
            tuple(fails + risks),
            (
                _flag(
                    "RUN_FAIL",
                    S.FAIL,
                    "Run fails ICH M10 QC acceptance: " + "; ".join(fails) + ".",
                    "Stop the queue: the QCs still to come cannot rescue this run. Do not report "
                    "its samples; investigate the failed QCs and re-run."
                    if lost
                    else "Do not report this run's samples; investigate the failed QCs and re-run.",
                    passed / n if n else None,
                    lim.run_qc_pass_fraction,
                    src,
                    qc=[(t.level, t.n, t.passed) for t in tallies],
                    remaining=rem,
                    lost_early=lost,
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
    reinjection_of: int | None = None,
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
        in_worklist=sample.in_worklist,
        reinjection_of=reinjection_of,
        error=error,
    )
