"""Blanks: carryover after a high injection, and anything in a double blank."""

from __future__ import annotations

from collections.abc import Sequence

from asnmon.assay import Assay
from asnmon.qc._base import (
    _BLANKS_NO_IS,
    _REL,
    _flag,
    _fmt,
    _who,
)
from asnmon.qc.is_reference import is_context
from asnmon.records import Flag, HistoryPoint, SampleType
from asnmon.records import Severity as S


def _is_high(p: HistoryPoint, history: Sequence[HistoryPoint], assay: Assay) -> bool:
    uloq = assay.calibration.uloq
    if p.sample_type is SampleType.CALIBRATOR and p.nominal is not None:
        return p.nominal >= uloq * (1 - _REL)
    if p.status == "ALQ":
        return True
    top = [
        h.analyte_area
        for h in history
        if h.sample_type is SampleType.CALIBRATOR
        and h.nominal is not None
        and h.nominal >= uloq * (1 - _REL)
        and h.analyte_area
    ]
    return bool(top and p.analyte_area and p.analyte_area >= min(top))


def evaluate_carryover(
    point: HistoryPoint, history: Sequence[HistoryPoint], assay: Assay
) -> list[Flag]:
    """CARRYOVER in a blank after a high injection; IS or analyte in any double blank."""
    stype = point.sample_type
    if stype not in (*_BLANKS_NO_IS, SampleType.ZERO) or point.error:
        return []
    lim = assay.limits
    prev = next((h for h in reversed(history) if not h.error), None)
    after_high = prev is not None and _is_high(prev, history, assay)
    if not after_high and stype is not SampleType.DOUBLE_BLANK:
        return []
    lloq = assay.calibration.lloq
    lloq_cals = [
        h
        for h in history
        if h.sample_type is SampleType.CALIBRATOR
        and h.nominal is not None
        and h.nominal <= lloq * (1 + _REL)
        and not h.error
    ]
    context = f"after {_who(prev)}" if after_high and prev is not None else "in a double blank"
    src = "ICH M10; CLSI C62-A; limits.carryover_analyte_pct_lloq / carryover_is_pct"
    flags: list[Flag] = []
    # analyte: area in blanks without IS; area ratio in a zero sample (it has IS), unless
    # the assay has no IS at all (external calibration: areas everywhere)
    use_ratio = stype is SampleType.ZERO and assay.is_quant is not None
    lloq_vals = [h.area_ratio if use_ratio else h.analyte_area for h in lloq_cals]
    lloq_vals_ok = [v for v in lloq_vals if v]
    value = point.area_ratio if use_ratio else point.analyte_area
    if lloq_vals_ok and value:
        lloq_resp = sum(lloq_vals_ok) / len(lloq_vals_ok)
        pct = 100.0 * value / lloq_resp
        if pct > lim.carryover_analyte_pct_lloq:
            flags.append(
                _flag(
                    "CARRYOVER",
                    S.FAIL,
                    f"Analyte in this {stype.value} {context}: "
                    f"{'area ratio' if use_ratio else 'area'} {_fmt(value)} = {pct:.0f} % of the "
                    f"LLOQ response ({_fmt(lloq_resp)}); limit "
                    f"{lim.carryover_analyte_pct_lloq:g} %.",
                    "Add needle washes / extra blanks after high samples; samples that followed "
                    "high injections may be biased high: re-inject them.",
                    pct,
                    lim.carryover_analyte_pct_lloq,
                    src,
                    kind="analyte",
                )
            )
    if stype in _BLANKS_NO_IS and point.is_area:
        ctx = is_context([*history, point], assay)
        ref = ctx.reference[-1] if ctx.points and ctx.points[-1] is point else None
        if ref is None:
            refs = [
                h.is_area
                for h in history
                if h.sample_type in (SampleType.CALIBRATOR, SampleType.QC) and h.is_area
            ]
            ref = sum(refs) / len(refs) if refs else None
        if ref:
            pct = 100.0 * point.is_area / ref
            if pct > lim.carryover_is_pct:
                flags.append(
                    _flag(
                        "CARRYOVER",
                        S.FAIL if after_high else S.WARNING,
                        f"IS in this {stype.value} {context}: area {_fmt(point.is_area)} = "
                        f"{pct:.1f} % of the mean IS ({_fmt(ref)}); limit "
                        f"{lim.carryover_is_pct:g} %.",
                        "Check the blank's preparation (IS added by mistake?) and the wash.",
                        pct,
                        lim.carryover_is_pct,
                        src,
                        kind="is",
                    )
                )
    return flags
