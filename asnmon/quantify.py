"""Peaks -> Result: area ratio, concentration, range, dilution and normalization.

``Result.status`` rules, in order:

1. blank, double blank, zero sample -> ``ok`` without a concentration (the
   area ratio is kept when both peaks exist: carryover is judged from it).
   A zero sample without its IS peak is ``no_peak``: it was meant to have one.
2. no IS peak (or IS area <= 0) -> ``no_peak``: nothing can be quantified.
   An external calibration (no IS in the assay) skips this rule and works on
   the analyte area instead of the area ratio (``response``); ``area_ratio``
   stays None there, so no export reads an area as a ratio.
3. no analyte peak with a good IS peak: a calibrator or QC -> ``no_peak`` (its
   analyte must be there); a study sample -> ``BLQ`` (the analyte is below
   detection, e.g. asparaginase-depleted plasma: report "< LLOQ").
4. no *accepted* calibration -> ``provisional``: area ratio only,
   ``calibration_version`` None. A rejected curve is never used for numbers;
   the pipeline re-quantifies once a curve is accepted.
5. back-calculated vial concentration < lloq -> ``BLQ``, > uloq -> ``ALQ``
   (also when the quadratic never reaches the ratio); concentration fields
   None -- an extrapolated number is never reported as a result. The limits
   are inclusive: exactly at the LLOQ or ULOQ is ``ok``. BLQ/ALQ are for
   study samples and QCs only: a **calibrator** defines the range, so the
   standards at its ends (CAL01 at 97.6 %, CAL08 at 101.8 %) keep their
   back-calculated value and accuracy (``ok``; ICH M10 judges them by
   accuracy, not by range); one the curve cannot back-calculate is
   ``no_result``.
6. otherwise ``ok``: conc = conc_vial x dilution; with ``normalizer`` and
   ``volume_ul`` also nmol per normalizer unit.

For calibrators and QCs with a nominal, ``accuracy_pct = 100 x conc_vial /
nominal`` whenever a curve gave a concentration, even outside the range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from asnmon.assay import Assay
from asnmon.calibrate import back_calculate
from asnmon.records import Calibration, Peak, Result, Sample, SampleType

BLANKS = (SampleType.DOUBLE_BLANK, SampleType.BLANK, SampleType.ZERO)
# concentration unit -> factor to µmol/L (µM); normalization needs one of these
_TO_MICROMOLAR = {
    "µM": 1.0,
    "μM": 1.0,
    "uM": 1.0,
    "umol/L": 1.0,
    "µmol/L": 1.0,
    "nM": 1e-3,
    "nmol/L": 1e-3,
    "mM": 1e3,
    "mmol/L": 1e3,
}
_REL_TOL = 1e-9  # a ratio exactly at the LLOQ/ULOQ must not fall out by rounding


def area_ratio(peaks: Mapping[str, Peak | None], assay: Assay) -> float | None:
    """Analyte quantifier area / IS quantifier area; None when either is missing.

    Always None for an external calibration (no IS): see ``response``.
    """
    is_t = assay.is_quant
    an = peaks.get(assay.analyte_quant.id)
    is_ = peaks.get(is_t.id) if is_t is not None else None
    if an is None or is_ is None or not is_.area > 0 or not math.isfinite(an.area):
        return None
    return an.area / is_.area


def response(peaks: Mapping[str, Peak | None], assay: Assay) -> float | None:
    """What the curve is fitted on: the area ratio, or the analyte area without an IS."""
    if assay.is_quant is not None:
        return area_ratio(peaks, assay)
    an = peaks.get(assay.analyte_quant.id)
    if an is None or not math.isfinite(an.area):
        return None
    return an.area


def suggested_dilution(conc_vial: float, uloq: float) -> int:
    """Smallest of 2, 5, 10, 20, 50, 100, ... that brings the vial to <= 75 % of the ULOQ.

    1 when no dilution is needed. Raises ValueError for a non-positive ULOQ or a
    non-finite concentration.
    """
    if not (math.isfinite(conc_vial) and math.isfinite(uloq)) or uloq <= 0:
        raise ValueError(f"cannot suggest a dilution for {conc_vial} with ULOQ {uloq}")
    target = 0.75 * uloq
    if conc_vial <= target:
        return 1
    decade = 1
    while True:
        for step in (2, 5, 10):
            factor = step * decade
            if conc_vial / factor <= target:
                return factor
        decade *= 10


def _normalized(conc: float, sample: Sample, assay: Assay) -> tuple[float | None, str | None]:
    """nmol per normalizer unit: conc [µM] x volume [µL] / 1000 / normalizer."""
    if sample.normalizer is None or sample.volume_ul is None or not sample.normalizer > 0:
        return None, None
    factor = _TO_MICROMOLAR.get(assay.unit)
    if factor is None:
        return None, None
    nmol = conc * factor * sample.volume_ul / 1000.0
    if sample.normalizer_unit:
        unit = f"nmol/{sample.normalizer_unit}"
    else:
        matrix = assay.matrix(sample.matrix)
        unit = (
            matrix.normalized_unit if matrix and matrix.normalized_unit else "nmol/normalizer unit"
        )
    return nmol / sample.normalizer, unit


def quantify(
    peaks: Mapping[str, Peak | None], sample: Sample, calibration: Calibration | None, assay: Assay
) -> Result:
    """One injection's result against the active calibration (rules in the module doc)."""
    ratio = area_ratio(peaks, assay)
    resp = response(peaks, assay)
    stype = sample.sample_type
    is_t = assay.is_quant
    is_peak = peaks.get(is_t.id) if is_t is not None else None
    usable = calibration if calibration is not None and calibration.accepted else None
    version = usable.version if usable is not None else None

    if stype in BLANKS:
        if stype is SampleType.ZERO and is_t is not None and is_peak is None:
            return Result(status="no_peak")
        return Result(status="ok", area_ratio=ratio, response=resp)
    if is_t is not None and (is_peak is None or not is_peak.area > 0):
        return Result(status="no_peak")
    if resp is None:
        if stype is SampleType.SAMPLE:
            return Result(status="BLQ", unit=assay.unit, calibration_version=version)
        return Result(status="no_peak")
    if usable is None:
        return Result(status="provisional", area_ratio=ratio, response=resp)

    conc_vial = back_calculate(resp, usable.coefficients, usable.model)
    accuracy = None
    if conc_vial is not None and sample.nominal and stype in (SampleType.CALIBRATOR, SampleType.QC):
        accuracy = 100.0 * conc_vial / sample.nominal
    if conc_vial is None:
        if stype is SampleType.CALIBRATOR:
            return Result(
                status="no_result",
                area_ratio=ratio,
                unit=assay.unit,
                calibration_version=version,
                response=resp,
            )
        # the quadratic never reaches this response: above its top or below its bottom
        c2 = usable.coefficients[2]
        status = "ALQ" if c2 < 0 else "BLQ"
        return Result(
            status=status,
            area_ratio=ratio,
            unit=assay.unit,
            calibration_version=version,
            response=resp,
        )
    # a standard is judged by its accuracy, not by the range it defines
    ranged = stype is not SampleType.CALIBRATOR
    if ranged and conc_vial < usable.lloq * (1.0 - _REL_TOL):
        status = "BLQ"
    elif ranged and conc_vial > usable.uloq * (1.0 + _REL_TOL):
        status = "ALQ"
    else:
        conc = conc_vial * sample.dilution
        norm, norm_unit = _normalized(conc, sample, assay)
        return Result(
            status="ok",
            area_ratio=ratio,
            conc_vial=conc_vial,
            conc=conc,
            unit=assay.unit,
            normalized_value=norm,
            normalized_unit=norm_unit,
            accuracy_pct=accuracy,
            calibration_version=version,
            response=resp,
        )
    return Result(
        status=status,
        area_ratio=ratio,
        unit=assay.unit,
        accuracy_pct=accuracy,
        calibration_version=version,
        response=resp,
    )
