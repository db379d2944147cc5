"""Retention time and ion ratio against the calibrators."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from asnmon.assay import Assay, Transition
from asnmon.qc._base import (
    _QUANTIFIED,
    IS_BEARING,
    _flag,
)
from asnmon.qc._history import history_index, upto
from asnmon.records import Flag, HistoryPoint, Interference, Peak, Role, SampleType
from asnmon.records import Severity as S


def evaluate_retention(
    point: HistoryPoint,
    peaks: Mapping[str, Peak | None],
    history: Sequence[HistoryPoint],
    assay: Assay,
) -> list[Flag]:
    """RT_SHIFT: IS apex vs the calibrators' mean; COELUTION: analyte vs IS apex and shape.

    Without an IS (external calibration) the analyte's own apex is judged against
    the calibrators' analyte apexes, and there is no co-elution to check.
    """
    has_is = assay.is_quant is not None
    rt_now = point.is_rt if has_is else point.analyte_rt
    if point.sample_type not in IS_BEARING or rt_now is None:
        return []
    lim = assay.limits
    index, m, rest = history_index(history)  # the calibrators' RTs, kept between calls
    cal_rts = upto(index.cal_rt_pos[has_is], index.cal_rt[has_is], m)
    cal_rts += [
        rt
        for h in rest
        if h.sample_type is SampleType.CALIBRATOR
        and not h.error
        and (rt := h.is_rt if has_is else h.analyte_rt) is not None
    ]
    if cal_rts:
        ref, basis = sum(cal_rts) / len(cal_rts), f"the mean of {len(cal_rts)} calibrators"
    else:
        ref, basis = assay.retention.expected_rt, "the method's expected RT (no calibrator yet)"
    pct_tol = ref * lim.rt_tolerance_pct / 100.0
    tol = max(pct_tol, lim.rt_tolerance_min_floor)
    flags: list[Flag] = []
    shift = rt_now - ref
    if abs(shift) > tol:
        how = (
            f"±{lim.rt_tolerance_pct:g} % = ±{pct_tol:.3f} min"
            if pct_tol >= lim.rt_tolerance_min_floor
            else f"±{lim.rt_tolerance_min_floor:g} min (the floor; {lim.rt_tolerance_pct:g} % "
            f"would be ±{pct_tol:.3f} min)"
        )
        flags.append(
            _flag(
                "RT_SHIFT",
                S.WARNING,
                f"{'IS' if has_is else 'Analyte'} apex at {rt_now:.3f} min is {shift:+.3f} min "
                f"from {basis} ({ref:.3f} min); tolerance {how}.",
                "Check the column, mobile phase and pump pressure; confirm the peak identity "
                "(ornithine shares the precursor) before reporting.",
                rt_now,
                ref,
                "CLSI C62-A (%), SANTE/11312/2021 (absolute floor); "
                "limits.rt_tolerance_pct, limits.rt_tolerance_min_floor",
                kind="is_rt" if has_is else "analyte_rt",
                shift=shift,
                tolerance=tol,
            )
        )
    an = peaks.get(assay.analyte_quant.id)
    if (
        point.is_rt is not None
        and point.sample_type in _QUANTIFIED
        and an is not None
        and (an.sn is None or an.sn >= assay.integration.min_sn)
    ):
        flags.extend(_coelution(an, point.is_rt, assay))
    if point.sample_type in IS_BEARING:
        flags.extend(_interference(peaks, assay))
    return flags


_SAME_SHAPE = "stable-isotope IS has the analyte's shape; integrate.interference"


def _interference_flag(
    t: Transition,
    f: Interference,
    severity: S,
    message: str,
    action: str,
    source: str,
    **details: object,
) -> Flag:
    """INTERFERENCE on transition ``t``: the value is the interferent's share of the area, %."""
    return _flag(
        "INTERFERENCE",
        severity,
        message,
        action,
        f.excess_pct,
        None,
        source,
        transition=t.id,
        side=f.side,
        kind=f.kind,
        interferent_rt=f.apex_rt,
        **details,
    )


def _interference(peaks: Mapping[str, Peak | None], assay: Assay) -> list[Flag]:
    """INTERFERENCE: a second peak on an analyte trace inside the group's boundaries.

    Separated at a valley (the area scaled by the IS's share of its own peak in
    the clean interval): INFO, the number stands. Not separable: WARNING, the
    area includes the interferent's share, which the message estimates.
    """
    out = []
    for t in assay.transitions:
        if t.role not in (Role.ANALYTE_QUANT, Role.ANALYTE_QUAL):
            continue
        p = peaks.get(t.id)
        f = p.interference if p is not None else None
        if p is None or f is None:
            continue
        what = "area" if t.role is Role.ANALYTE_QUANT else "area (and the ion ratio)"
        if f.kind == "profile":
            seen = (
                f"{t.name}: its ratio to the IS climbs towards the {f.side} side of the peak "
                f"({f.excess_sn:.0f} standard errors from flat), so something co-elutes too "
                "closely to split off"
            )
        elif f.kind == "tail":
            seen = (
                f"{t.name}: the peak rides on the tail of an earlier one (apex about "
                f"{f.apex_rt:.3f} min) that the IS does not have"
            )
        else:
            seen = (
                f"{t.name}: a second peak at {f.apex_rt:.3f} min ({f.side} of the analyte, "
                f"{f.excess_sn:.0f} noise SDs) inside the group's boundaries; the IS has none "
                "there"
            )
        if f.separated and f.kind == "tail":
            out.append(
                _interference_flag(
                    t,
                    f,
                    S.INFO,
                    f"{seen}. Its tail, extended under the peak from its decay before "
                    f"{f.cut_rt:.3f} min, was taken off ({f.excess_pct:.0f} % of the {what}).",
                    "None if the skim looks right on the chromatogram; an interferent seen "
                    "on every injection calls for more chromatographic resolution.",
                    "exponential skim (chromatography data systems); integrate.interference",
                    separated=True,
                )
            )
        elif f.separated:
            out.append(
                _interference_flag(
                    t,
                    f,
                    S.INFO,
                    f"{seen}. Integrated to the valley at {f.cut_rt:.3f} min; the "
                    f"{100 * (1 - f.clean_share):.0f} % of the peak beyond it taken from the "
                    f"IS's shape (the interferent would have added {f.excess_pct:.0f} % to the "
                    f"{what}).",
                    "None if the split looks right on the chromatogram; an interferent seen "
                    "on every injection calls for more chromatographic resolution.",
                    _SAME_SHAPE,
                    cut_rt=f.cut_rt,
                    clean_share=f.clean_share,
                    separated=True,
                )
            )
        else:
            if f.kind == "profile":
                why = f"; roughly {f.excess_pct:.0f} % of the {what} may be from it"
            elif f.kind == "tail":
                why = ", and its decay could not be fitted: the area includes part of it"
            elif f.clean_share >= 0.6:
                why = (
                    f", and it cannot be separated (no valley between them): the {what} "
                    f"includes about {f.excess_pct:.0f} % from it"
                )
            else:
                why = (
                    f", and it cannot be separated (only {100 * f.clean_share:.0f} % of the "
                    f"IS's peak lies clear of it): the {what} includes about "
                    f"{f.excess_pct:.0f} % from it"
                )
            out.append(
                _interference_flag(
                    t,
                    f,
                    S.WARNING,
                    f"{seen}{why}.",
                    "Review the chromatogram and reintegrate by hand, or improve the "
                    "separation and re-inject; do not report this value unreviewed.",
                    _SAME_SHAPE,
                    clean_share=f.clean_share,
                    separated=False,
                )
            )
    return out


def _coelution(an: Peak, is_rt: float, assay: Assay) -> list[Flag]:
    """COELUTION: analyte and IS apexes apart, or their profiles unlike (an interference).

    A stable-isotope IS co-elutes with its analyte and has the same peak shape;
    an apex offset or a poor profile correlation inside the shared boundaries
    means one trace carries something else (ornithine, an aspartate isotope)
    or the group was misintegrated.
    """
    lim = assay.limits
    gap = an.apex_rt - is_rt
    out = []
    if abs(gap) > lim.coelution_tolerance:
        out.append(
            _flag(
                "COELUTION",
                S.WARNING,
                f"Analyte apex {an.apex_rt:.3f} min and IS apex {is_rt:.3f} min are "
                f"{abs(gap):.3f} min apart (limit {lim.coelution_tolerance:g} min): they "
                "should co-elute.",
                "Check for an interference on the analyte transition (ornithine, "
                "aspartate isotope) and the integration.",
                abs(gap),
                lim.coelution_tolerance,
                "stable-isotope IS co-elution; limits.coelution_tolerance",
                kind="apex_offset",
            )
        )
    if an.shape_r is not None and an.shape_r < lim.coelution_min_r:
        out.append(
            _flag(
                "COELUTION",
                S.WARNING,
                f"Analyte and IS peak shapes differ: profile correlation {an.shape_r:.2f} "
                f"inside the shared boundaries (minimum {lim.coelution_min_r:g}); an "
                "interference or a misintegration is likely.",
                "Review both traces (and the qualifier) before reporting this result.",
                an.shape_r,
                lim.coelution_min_r,
                "stable-isotope IS has the analyte's shape; limits.coelution_min_r",
                kind="shape",
            )
        )
    return out


def evaluate_ion_ratio(
    point: HistoryPoint,
    peaks: Mapping[str, Peak | None],
    history: Sequence[HistoryPoint],
    assay: Assay,
) -> list[Flag]:
    """ION_RATIO: qualifier/quantifier vs the calibrators' mean (relative tolerance)."""
    if point.sample_type not in _QUANTIFIED or point.analyte_area is None:
        return []
    an = peaks.get(assay.analyte_quant.id)
    if an is None or (an.sn is not None and an.sn < assay.integration.min_sn):
        return []  # too weak for its qualifier to mean anything
    if assay.by_role(Role.ANALYTE_QUAL) is None:
        return []
    index, m, rest = history_index(history)  # the calibrators' ion ratios, kept between calls
    refs = upto(index.ion_pos, index.ion, m)
    refs += [
        h.ion_ratio
        for h in rest
        if h.sample_type is SampleType.CALIBRATOR and h.ion_ratio is not None and not h.error
    ]
    if not refs:
        return []
    lim = assay.limits
    ref = sum(refs) / len(refs)
    weak = ref < lim.weak_qualifier_ratio
    tol = lim.ion_ratio_weak_tolerance_pct if weak else lim.ion_ratio_tolerance_pct
    ratio = point.ion_ratio if point.ion_ratio is not None else 0.0
    dev = 100.0 * (ratio / ref - 1.0) if ref > 0 else math.inf
    if abs(dev) <= tol:
        return []
    return [
        _flag(
            "ION_RATIO",
            S.WARNING,
            f"Ion ratio {ratio:.3f} is {dev:+.0f} % from the calibrators' mean {ref:.3f} "
            f"(tolerance ±{tol:g} %"
            + (
                f", wider because the qualifier is < {lim.weak_qualifier_ratio:g} of the quantifier"
                if weak
                else ""
            )
            + ")"
            + (": no qualifier peak." if point.ion_ratio is None else "."),
            "Suspect an interference on one transition; review both traces before reporting.",
            ratio,
            tol,
            "CLSI C62-A; limits.ion_ratio_tolerance_pct / ion_ratio_weak_tolerance_pct",
            reference=ref,
            deviation_pct=dev,
        )
    ]
