"""QC rules: results and the run's history in, ``Flag``s with reasons out.

Every flag says, in words a person reads at 3 a.m., what was measured, what
the limit is, where the limit comes from and what to do. Rules are pure
functions; the pipeline decides when to run them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asnmon.assay import Assay
from asnmon.errors import AsnmonError
from asnmon.quantify import suggested_dilution
from asnmon.records import Calibration, Flag, HistoryPoint, Peak, Result, Role, Sample, SampleType
from asnmon.records import Severity as S

_QUANTIFIED = (SampleType.CALIBRATOR, SampleType.QC, SampleType.SAMPLE)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def error_flag(error: AsnmonError) -> Flag:
    """READ_ERROR / CONVERT_ERROR / INCOMPLETE from an error the pipeline caught."""
    actions = {
        "READ_ERROR": "Check the file (re-export or re-convert it); the run goes on without it.",
        "CONVERT_ERROR": "Check the converter command and the raw file; convert it by hand.",
    }
    return Flag(
        code=error.code,
        severity=S.FAIL,
        message=str(error),
        action=actions.get(error.code, "Check the file."),
        details={"error": type(error).__name__},
    )


def evaluate_peaks(peaks: Mapping[str, Peak | None], sample: Sample, assay: Assay) -> list[Flag]:
    """NO_PEAK: the IS must be there (except in a double blank); the analyte in standards."""
    flags: list[Flag] = []
    is_t = assay.is_quant
    an_t = assay.analyte_quant
    rt = assay.retention
    window = f"{rt.expected_rt - rt.window:.2f}-{rt.expected_rt + rt.window:.2f} min"
    if sample.sample_type is not SampleType.DOUBLE_BLANK and peaks.get(is_t.id) is None:
        flags.append(
            Flag(
                code="NO_PEAK",
                severity=S.FAIL,
                message=f"No internal-standard peak ({is_t.name}) in {window}: no result possible.",
                action="Check the injection (vial, needle, IS spiking) and re-inject.",
                details={"transition": is_t.id},
            )
        )
    if sample.sample_type in (SampleType.CALIBRATOR, SampleType.QC) and peaks.get(an_t.id) is None:
        flags.append(
            Flag(
                code="NO_PEAK",
                severity=S.FAIL,
                message=f"No {assay.analyte} peak ({an_t.name}) in this "
                f"{sample.sample_type.value} {sample.level or sample.sample_id}.",
                action="Check the standard's preparation and the injection; re-inject.",
                details={"transition": an_t.id},
            )
        )
    return flags


def evaluate_range(
    result: Result, sample: Sample, calibration: Calibration | None, assay: Assay
) -> list[Flag]:
    """BLQ, ALQ, NO_CALIBRATION, REF_LOW/REF_HIGH for quantified injections."""
    if sample.sample_type not in (SampleType.QC, SampleType.SAMPLE):
        return []
    flags: list[Flag] = []
    unit = assay.unit
    matrix = assay.matrix(sample.matrix)
    if result.status == "provisional":
        why = (
            "the curve was rejected"
            if calibration is not None and not calibration.accepted
            else "no calibration curve has been accepted yet"
        )
        flags.append(
            Flag(
                code="NO_CALIBRATION",
                severity=S.WARNING,
                message=f"Provisional: {why} (area ratio {_fmt(result.area_ratio)}). It is "
                "re-quantified automatically when a curve is accepted.",
                action="Nothing yet; check the calibrators if this persists.",
                value=result.area_ratio,
            )
        )
        return flags
    if calibration is None:
        return flags
    if result.status == "BLQ":
        depleted = matrix is not None and matrix.depleted_below is not None
        flags.append(
            Flag(
                code="BLQ",
                severity=S.INFO if depleted else S.WARNING,
                message=f"Below the LLOQ ({_fmt(calibration.lloq)} {unit} in the vial): report "
                f"'< LLOQ'"
                + (
                    f"; in {matrix.name} this is consistent with asparaginase depletion "
                    f"(expected below {_fmt(matrix.depleted_below)} {unit})."
                    if depleted and matrix is not None
                    else "."
                ),
                action="Report as < LLOQ; no extrapolated value."
                + (" Expected on asparaginase therapy." if depleted else ""),
                value=result.conc_vial,
                limit=calibration.lloq,
                source="ICH M10 (range); DCOG ALL-11 / COG AALL07P4 (depletion)"
                if depleted
                else "ICH M10 (range)",
            )
        )
    elif result.status == "ALQ":
        ratio_conc = result.conc_vial
        factor = suggested_dilution(ratio_conc, calibration.uloq) if ratio_conc else 10
        flags.append(
            Flag(
                code="ALQ",
                severity=S.WARNING,
                message=f"Above the ULOQ ({_fmt(calibration.uloq)} {unit}): about "
                f"{_fmt(ratio_conc)} {unit} in the vial. Dilute 1:{factor} and re-inject.",
                action=f"Dilute 1:{factor} in blank matrix and re-inject (dilution integrity "
                "±15 %).",
                value=ratio_conc,
                limit=calibration.uloq,
                source="ICH M10 (range, dilution)",
                details={"dilution": factor},
            )
        )
    if (
        result.status == "ok"
        and sample.sample_type is SampleType.SAMPLE
        and matrix is not None
        and result.conc is not None
    ):
        conc = result.conc
        if matrix.ref_low is not None and conc < matrix.ref_low:
            depleted = matrix.depleted_below is not None and conc < matrix.depleted_below
            flags.append(
                Flag(
                    code="REF_LOW",
                    severity=S.INFO if depleted else S.WARNING,
                    message=f"{_fmt(conc)} {unit} is below the {matrix.name} reference interval "
                    f"({_fmt(matrix.ref_low)}-{_fmt(matrix.ref_high)} {unit})"
                    + (": consistent with asparaginase depletion." if depleted else "."),
                    action="Expected on asparaginase therapy."
                    if depleted
                    else "Check the sample's history and handling (asparaginase keeps working in "
                    "the tube unless quenched).",
                    value=conc,
                    limit=matrix.ref_low,
                    source="matrix reference interval (ASSAY.md)",
                )
            )
        elif matrix.ref_high is not None and conc > matrix.ref_high:
            flags.append(
                Flag(
                    code="REF_HIGH",
                    severity=S.WARNING,
                    message=f"{_fmt(conc)} {unit} is above the {matrix.name} reference interval "
                    f"({_fmt(matrix.ref_low)}-{_fmt(matrix.ref_high)} {unit}).",
                    action="Check the sample identity and dilution; in a treated patient a high "
                    "value is suspicious.",
                    value=conc,
                    limit=matrix.ref_high,
                    source="matrix reference interval (ASSAY.md)",
                )
            )
    return flags


def evaluate_calibration(calibration: Calibration) -> list[Flag]:
    """CAL_FAIL with the reason, and the excluded standards listed."""
    excluded = [p for p in calibration.points if p.excluded]
    listed = "; ".join(f"{p.level or p.sample_id} ({p.reason})" for p in excluded)
    if calibration.accepted:
        return []
    return [
        Flag(
            code="CAL_FAIL",
            severity=S.FAIL,
            message=f"Calibration v{calibration.version} failed: {calibration.reason}"
            + (f" Excluded: {listed}." if listed else ""),
            action="Check the calibrators (preparation, injection order); samples stay provisional "
            "until a curve is accepted.",
            source="ICH M10 (calibration curve acceptance)",
            details={
                "version": calibration.version,
                "excluded": [p.level or p.sample_id for p in excluded],
            },
        )
    ]


def evaluate_injection(
    peaks: Mapping[str, Peak | None],
    result: Result,
    sample: Sample,
    calibration: Calibration | None,
    assay: Assay,
    history: Sequence[HistoryPoint] = (),
) -> list[Flag]:
    """All per-injection rules. ``history``: earlier injections of the run, in order."""
    flags = evaluate_peaks(peaks, sample, assay)
    if not any(f.code == "NO_PEAK" for f in flags):
        flags += evaluate_range(result, sample, calibration, assay)
    del history  # used by the IS/RT/QC rules
    return flags


@dataclass(frozen=True, slots=True)
class RunEvaluation:
    """The run's verdict as of now, and the run-level flags that support it."""

    verdict: str  # "pending" | "pass" | "at risk" | "fail"
    reasons: tuple[str, ...]
    flags: tuple[Flag, ...] = ()  # run-level flags (no injection), codes in RUN_LEVEL_CODES


# Run-level codes the pipeline replaces wholesale after every evaluation.
RUN_LEVEL_CODES = frozenset({"RUN_FAIL"})


def evaluate_run(
    history: Sequence[HistoryPoint], calibration: Calibration | None, assay: Assay
) -> RunEvaluation:
    """Pass / at risk / fail with reasons, kept current as injections arrive."""
    del assay
    if calibration is None:
        return RunEvaluation("pending", ("no calibration curve yet",))
    if not calibration.accepted:
        return RunEvaluation(
            "fail", (f"calibration v{calibration.version} rejected: {calibration.reason}",)
        )
    errors = sum(h.error for h in history)
    if errors:
        return RunEvaluation("at risk", (f"{errors} file(s) could not be read",))
    return RunEvaluation("pass", (f"calibration v{calibration.version} accepted",))


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

    def area(role: Role) -> float | None:
        t = assay.by_role(role)
        p = peaks.get(t.id) if t else None
        return p.area if p else None

    def rt(role: Role) -> float | None:
        t = assay.by_role(role)
        p = peaks.get(t.id) if t else None
        return p.apex_rt if p else None

    quant, qual = area(Role.ANALYTE_QUANT), area(Role.ANALYTE_QUAL)
    return HistoryPoint(
        injection_id=injection_id,
        order=order,
        sample_id=sample.sample_id,
        sample_type=sample.sample_type,
        level=sample.level,
        nominal=sample.nominal,
        analyte_area=quant,
        is_area=area(Role.IS_QUANT),
        analyte_rt=rt(Role.ANALYTE_QUANT),
        is_rt=rt(Role.IS_QUANT),
        ion_ratio=qual / quant if qual is not None and quant else None,
        area_ratio=result.area_ratio,
        conc_vial=result.conc_vial,
        accuracy_pct=result.accuracy_pct,
        status=result.status,
        error=error,
    )
