"""Range, reference intervals, QC accuracy and the calibration curve."""

from __future__ import annotations

from asnmon.assay import Assay
from asnmon.calibrate import back_calculate
from asnmon.qc._base import (
    _REL,
    _flag,
    _fmt,
)
from asnmon.quantify import suggested_dilution
from asnmon.records import Calibration, Flag, Result, Sample, SampleType
from asnmon.records import Severity as S


def qc_tolerance(nominal: float | None, calibration: Calibration, assay: Assay) -> float:
    """±15 %, or ±20 % for a QC at the LLOQ (ICH M10)."""
    lim = assay.limits
    at_lloq = nominal is not None and nominal <= calibration.lloq * (1 + 1e-6)
    return lim.qc_accuracy_lloq_pct if at_lloq else lim.qc_accuracy_pct


def _qc_fail(result: Result, sample: Sample, calibration: Calibration, assay: Assay) -> list[Flag]:
    tol = qc_tolerance(sample.nominal, calibration, assay)
    name = f"{sample.level or 'QC'} {sample.sample_id}"
    unit = assay.unit
    src = "ICH M10; limits.qc_accuracy_pct / qc_accuracy_lloq_pct"
    if result.accuracy_pct is None:
        return [
            _flag(
                "QC_FAIL",
                S.FAIL,
                f"{name} (nominal {_fmt(sample.nominal)} {unit}) gave no value "
                f"({result.status}): it counts as a failed QC.",
                "Check the QC's preparation and the injection; re-inject if the run allows.",
                limit=tol,
                source=src,
                level=sample.level,
            )
        ]
    dev = result.accuracy_pct - 100.0
    if abs(dev) <= tol:
        return []
    return [
        _flag(
            "QC_FAIL",
            S.FAIL,
            f"{name} reads {result.accuracy_pct:.1f} % of nominal ({_fmt(sample.nominal)} {unit}), "
            f"{dev:+.1f} %: outside ±{tol:g} %.",
            "Check this QC (preparation, injection) and the curve; the run fails if fewer than "
            "2/3 of all QCs or half of this level pass.",
            result.accuracy_pct,
            tol,
            src,
            level=sample.level,
            deviation_pct=dev,
        )
    ]


def evaluate_range(
    result: Result, sample: Sample, calibration: Calibration | None, assay: Assay
) -> list[Flag]:
    """QUANT_CODES only: NO_CALIBRATION, QC_FAIL, BLQ, ALQ, REF_LOW/REF_HIGH, DEPLETED.

    Re-run on every re-quantification; the store replaces exactly these codes.
    """
    if sample.sample_type not in (SampleType.QC, SampleType.SAMPLE):
        return []
    flags: list[Flag] = []
    unit = assay.unit
    matrix = assay.matrix(sample.matrix)
    if result.status == "provisional":
        why = (
            f"calibration v{calibration.version} was rejected "
            f"({calibration.reason.removeprefix('rejected: ')})"
            if calibration is not None and not calibration.accepted
            else "no calibration curve has been accepted yet"
        )
        return [
            _flag(
                "NO_CALIBRATION",
                S.WARNING,
                f"Provisional: {why}; {_response_name(assay)} {_fmt(result.response)}. It is "
                "re-quantified automatically when a curve is accepted.",
                "Nothing yet; check the calibrators if this persists.",
                result.response,
                source="ICH M10 (no result without an accepted curve)",
            )
        ]
    if calibration is None or not calibration.accepted:
        return flags
    if sample.sample_type is SampleType.QC:
        return _qc_fail(result, sample, calibration, assay)
    depleted_below = matrix.depleted_below if matrix is not None else None
    if result.status == "BLQ":
        lloq_sample = calibration.lloq * sample.dilution
        depleted = depleted_below is not None and lloq_sample <= depleted_below * (1 + _REL)
        # without an IS nothing shows that this injection happened at all: an empty
        # vial or a missed injection also reads "below the LLOQ"
        unconfirmed = assay.is_quant is None and result.response is None
        flags.append(
            _flag(
                "BLQ",
                S.INFO if depleted and not unconfirmed else S.WARNING,
                f"Below the LLOQ ({_fmt(calibration.lloq)} {unit} in the vial): report "
                f"'< {_fmt(lloq_sample)} {unit}', never an extrapolated number."
                + (
                    " No analyte peak, and no internal standard confirms that the injection "
                    "took place (external calibration)."
                    if unconfirmed
                    else ""
                ),
                "Report as < LLOQ."
                + (
                    " Expected on asparaginase therapy."
                    if depleted
                    else " Concentrate or re-assay with a lower range if a number is needed."
                ),
                result.conc_vial,
                calibration.lloq,
                "ICH M10 (range)",
            )
        )
        if depleted and matrix is not None and depleted_below is not None:
            flags.append(_depleted(None, matrix.name, depleted_below, unit))
    elif result.status == "ALQ":
        est = (
            back_calculate(result.response, calibration.coefficients, calibration.model)
            if result.response is not None
            else None
        )
        factor = suggested_dilution(est, calibration.uloq) if est and est > 0 else 10
        about = (
            f" (about {_fmt(est)} {unit} by extrapolation, used only for the dilution)"
            if est
            else ""
        )
        flags.append(
            _flag(
                "ALQ",
                S.WARNING,
                f"Above the ULOQ of {_fmt(calibration.uloq)} {unit} in the vial{about}. "
                f"Dilute 1:{factor} and re-inject.",
                f"Dilute 1:{factor} in blank matrix and re-inject (dilution integrity ±15 %).",
                est,
                calibration.uloq,
                "ICH M10 (range, dilution integrity)",
                dilution=factor,
            )
        )
    elif result.status == "ok" and matrix is not None and result.conc is not None:
        conc = result.conc
        rng = f"{_fmt(matrix.ref_low)}-{_fmt(matrix.ref_high)} {unit}"
        if depleted_below is not None and conc < depleted_below:
            flags.append(_depleted(conc, matrix.name, depleted_below, unit))
        elif matrix.ref_low is not None and conc < matrix.ref_low:
            flags.append(
                _flag(
                    "REF_LOW",
                    S.WARNING,
                    f"{_fmt(conc)} {unit} is below the {matrix.name} reference interval ({rng}).",
                    "Check the sample's history and handling (asparaginase keeps working in "
                    "the tube unless quenched).",
                    conc,
                    matrix.ref_low,
                    "matrix reference interval (assay TOML [[matrices]])",
                )
            )
        elif matrix.ref_high is not None and conc > matrix.ref_high:
            flags.append(
                _flag(
                    "REF_HIGH",
                    S.WARNING,
                    f"{_fmt(conc)} {unit} is above the {matrix.name} reference interval ({rng}).",
                    "Check the sample identity and dilution; in a treated patient a high value "
                    "is suspicious.",
                    conc,
                    matrix.ref_high,
                    "matrix reference interval (assay TOML [[matrices]])",
                )
            )
    return flags


def _response_name(assay: Assay) -> str:
    return "area ratio" if assay.is_quant is not None else "analyte area"


def _depleted(conc: float | None, matrix: str, below: float, unit: str) -> Flag:
    what = f"{_fmt(conc)} {unit}" if conc is not None else "Below the LLOQ, so"
    return _flag(
        "DEPLETED",
        S.INFO,
        f"{what} below {_fmt(below)} {unit} in {matrix}: consistent with asparaginase "
        "depletion. Information, not an alarm.",
        "Report as usual; confirm the patient is on asparaginase. A value this low without "
        "treatment suggests in-tube depletion (sample not quenched).",
        conc,
        below,
        "DCOG ALL-11 / COG AALL07P4 (depletion); matrices.depleted_below",
    )


# ---------------------------------------------------------------- calibration


def evaluate_calibration(
    calibration: Calibration, *, report_exclusions: bool = False
) -> list[Flag]:
    """CAL_FAIL with the reason and the excluded standards listed.

    ``report_exclusions`` adds a CAL_EXCLUDED info flag for an accepted curve
    that dropped standards; switch it on only when the pipeline replaces
    ``CALIBRATION_CODES`` after each refit (else the info flags accumulate).
    """
    excluded = [p for p in calibration.points if p.excluded and p.nominal > 0]
    listed = "; ".join(f"{p.level or p.sample_id} ({p.reason})" for p in excluded)
    names = [p.level or p.sample_id for p in excluded]
    src = "ICH M10 (calibration curve acceptance)"
    if calibration.accepted:
        if report_exclusions and excluded:
            return [
                _flag(
                    "CAL_EXCLUDED",
                    S.INFO,
                    f"Calibration v{calibration.version} accepted without {len(excluded)} "
                    f"standard(s): {listed}.",
                    "Nothing required; check those standards' preparation if it recurs.",
                    float(len(excluded)),
                    source=src,
                    version=calibration.version,
                    excluded=names,
                )
            ]
        return []
    return [
        _flag(
            "CAL_FAIL",
            S.FAIL,
            f"Calibration v{calibration.version} failed: {calibration.reason}"
            + (f" Excluded: {listed}." if listed else ""),
            "Check the calibrators (preparation, injection order); samples stay provisional "
            "until a curve is accepted.",
            source=src,
            version=calibration.version,
            excluded=names,
        )
    ]
