"""NO_PEAK and peak quality (LOW_SN, SATURATION, FEW_POINTS, PEAK_TRUNCATED, BASELINE_UNCERTAIN).

PEAK_TRUNCATED replaces the earlier TRUNCATED_PEAK code (same meaning, now with
the trace, the side and the % of the apex at the cut in ``details``). It is
raised for every trace of the peak group whose own acquisition window ends
while its peak is still above ``integration.truncation_pct`` of its apex: the
IS (its area is short), the analyte quantifier (same), a qualifier (the ion
ratio is biased). A trace only held to a partner's shorter window is named in
that partner's flag, not flagged itself: group integration cuts both alike.
"""

from __future__ import annotations

from collections.abc import Mapping

from asnmon.assay import Assay
from asnmon.qc._base import (
    IS_BEARING,
    _flag,
    _fmt,
)
from asnmon.records import Flag, Peak, Result, Role, Sample, SampleType
from asnmon.records import Severity as S


def evaluate_peaks(peaks: Mapping[str, Peak | None], sample: Sample, assay: Assay) -> list[Flag]:
    """NO_PEAK: the IS must be there (except in blanks); the analyte in standards."""
    flags: list[Flag] = []
    is_t = assay.is_quant
    an_t = assay.analyte_quant
    rt = assay.retention
    window = f"{rt.expected_rt - rt.window:.2f}-{rt.expected_rt + rt.window:.2f} min"
    if is_t is not None and sample.sample_type in IS_BEARING and peaks.get(is_t.id) is None:
        flags.append(
            _flag(
                "NO_PEAK",
                S.FAIL,
                f"No internal-standard peak ({is_t.name}) in {window}: no result possible.",
                "Check the injection (vial, needle, IS spiking) and re-inject.",
                transition=is_t.id,
            )
        )
    if sample.sample_type in (SampleType.CALIBRATOR, SampleType.QC) and peaks.get(an_t.id) is None:
        flags.append(
            _flag(
                "NO_PEAK",
                S.FAIL,
                f"No {assay.analyte} peak ({an_t.name}) in this "
                f"{sample.sample_type.value} {sample.level or sample.sample_id}.",
                "Check the standard's preparation and the injection; re-inject.",
                transition=an_t.id,
            )
        )
    return flags


def evaluate_peak_quality(
    peaks: Mapping[str, Peak | None], sample: Sample, result: Result, assay: Assay
) -> list[Flag]:
    """LOW_SN, SATURATION, FEW_POINTS, PEAK_TRUNCATED on the peaks a result rests on.

    The analyte of a study sample is judged only when it is reported as a number
    (status ok): a weak peak below the LLOQ is already a BLQ.
    """
    stype = sample.sample_type
    if stype not in IS_BEARING:
        return []
    integ = assay.integration
    is_t = assay.is_quant
    checked: list[tuple[str, str]] = [(is_t.id, is_t.name)] if is_t is not None else []
    analyte_judged = stype in (SampleType.CALIBRATOR, SampleType.QC) or (
        stype is SampleType.SAMPLE and result.status == "ok"
    )
    if analyte_judged:
        checked.append((assay.analyte_quant.id, assay.analyte_quant.name))
    flags: list[Flag] = []
    for tid, name in checked:
        p = peaks.get(tid)
        if p is None:
            continue
        if p.sn is not None and p.sn < integ.min_sn:
            flags.append(
                _flag(
                    "LOW_SN",
                    S.WARNING,
                    f"{name}: S/N {p.sn:.1f} is below {integ.min_sn:g}; the peak is too weak to "
                    "quantify reliably.",
                    "Review the peak; re-inject or concentrate the sample if the value matters.",
                    p.sn,
                    integ.min_sn,
                    "ICH M10 / CLSI C62-A (LLOQ S/N >= 10); integration.min_sn",
                    transition=tid,
                )
            )
        if p.points < integ.min_points_across:
            flags.append(
                _flag(
                    "FEW_POINTS",
                    S.WARNING,
                    f"{name}: only {p.points} data points across the peak (minimum "
                    f"{integ.min_points_across}); the area is imprecise.",
                    "Shorten the dwell/cycle time or widen the peak in the method.",
                    float(p.points),
                    float(integ.min_points_across),
                    "common LC-MS practice (>= 8-10 points); integration.min_points_across",
                    transition=tid,
                )
            )
    flags.extend(_truncations(peaks, assay))
    if analyte_judged and is_t is not None:
        flags.extend(_baseline_doubt(peaks.get(assay.analyte_quant.id), assay))
    quants = {t.id for t in (is_t, assay.analyte_quant) if t is not None}
    for tid in quants | {
        t.id for t in assay.transitions if t.role in (Role.ANALYTE_QUAL, Role.IS_QUAL)
    }:
        p = peaks.get(tid)
        if p is not None and p.saturated:
            flags.append(
                _flag(
                    "SATURATION",
                    S.FAIL if tid in quants else S.WARNING,
                    f"{tid}: detector saturated (apex {_fmt(p.height)} counts, ceiling "
                    f"{_fmt(integ.saturation_intensity)}); the area is underestimated.",
                    "Dilute and re-inject (or use a less sensitive transition).",
                    p.height,
                    integ.saturation_intensity,
                    "detector ceiling; integration.saturation_intensity",
                    transition=tid,
                )
            )
    return flags


def _truncations(peaks: Mapping[str, Peak | None], assay: Assay) -> list[Flag]:
    """PEAK_TRUNCATED: a trace's acquisition window ends while its peak is still up."""
    names = {t.id: (t.name, t.role) for t in assay.transitions}
    flags: list[Flag] = []
    for tid, p in peaks.items():
        if p is None or not p.truncated or not p.acquisition_cut or tid not in names:
            continue
        name, role = names[tid]
        side = p.cut_side or "?"
        pct = p.cut_pct if p.cut_pct is not None else float("nan")
        where = {"left": "starts", "right": "ends", "both": "starts and ends"}.get(side, "ends")
        held = sorted(
            names[o][0]
            for o, q in peaks.items()
            if o != tid and q is not None and q.truncated and not q.acquisition_cut and o in names
        )
        if role in (Role.ANALYTE_QUAL, Role.IS_QUAL):
            effect = "its area is short, so the ion ratio is biased low"
        else:
            effect = "its area is short"
            if held:
                effect += (
                    f"; {', '.join(held)} integrated over the same interval, so the area "
                    "ratio stays unbiased"
                )
        cut = f" at {p.cut_rt:.3f} min" if p.cut_rt is not None else ""
        flags.append(
            _flag(
                "PEAK_TRUNCATED",
                S.WARNING,
                f"{name}: the acquisition window {where}{cut} while the peak is still at "
                f"{pct:.0f} % of its apex ({side} side); {effect}.",
                "Widen or re-centre this transition's scheduled MRM window on the peak "
                "(or check for a retention-time shift), then re-inject.",
                pct,
                assay.integration.truncation_pct,
                "peak integrity; integration.truncation_pct",
                transition=tid,
                side=side,
                pct_of_apex=pct,
                cut_rt=p.cut_rt,
                held=held,
            )
        )
    return flags


def _baseline_doubt(p: Peak | None, assay: Assay) -> list[Flag]:
    """BASELINE_UNCERTAIN: the analyte's baseline and its IS's disagree (integrate.baseline)."""
    integ = assay.integration
    d = p.baseline_doubt if p is not None else None
    if d is None or abs(d.offset_pct) < integ.baseline_offset_pct or d.t < integ.baseline_offset_t:
        return []
    is_name = assay.is_quant.name if assay.is_quant is not None else d.reference
    return [
        _flag(
            "BASELINE_UNCERTAIN",
            S.WARNING,
            f"{assay.analyte_quant.name} and {is_name} disagree on the baseline: fitted as "
            f"the IS's profile scaled, the analyte keeps a constant of {d.offset_pct:+.1f} % "
            f"of its area ({d.t:.1f} standard errors). One of the two baselines is misplaced "
            "(a drifting start, a hump or a tail taken for baseline); the area ratio is off "
            "by about that much.",
            "Look at both baselines in the chromatogram; reintegrate the one that sits on a "
            "hump, a tail or a drift.",
            d.offset_pct,
            integ.baseline_offset_pct,
            "co-eluting stable-isotope IS: the analyte is its profile scaled; "
            "integration.baseline_offset_pct, baseline_offset_t",
            transition=p.transition if p is not None else None,
            offset_pct=d.offset_pct,
            t=d.t,
            reference=d.reference,
        )
    ]
