"""Chromatograms -> peaks: one peak group per analyte, integrated over shared boundaries.

- ``noise``: the noise model (baseline term + a term growing with the signal)
  and smoothing sized to the peak.
- ``boundaries``: apex, valleys, ends and quiet baseline stretches on one profile.
- ``group``: a group's members integrated between the same boundaries, each
  above its own baseline; cuts and shape against the reference.

``integrate_injection(injection, assay)`` is the stage the pipeline calls: a
``Peak`` (or None) per assay transition. ``integrate_groups`` gives the same
peaks as ``PeakGroup`` records, one per analyte, with the shared boundaries and
the truncations found. ``[integration] boundaries = "per_transition"`` bounds
every trace on its own (the IS first, then the rest anchored on its apex).
"""

from __future__ import annotations

from dataclasses import replace

from asnmon.assay import Assay, Integration
from asnmon.integrate.group import integrate_group
from asnmon.integrate.noise import NoiseModel, noise_sd
from asnmon.records import Chromatogram, Injection, Peak, PeakGroup, Role

__all__ = [
    "NoiseModel",
    "integrate_group",
    "integrate_groups",
    "integrate_injection",
    "integrate_peak",
    "noise_sd",
]

GROUP_ROLES = (Role.ANALYTE_QUANT, Role.ANALYTE_QUAL, Role.IS_QUANT, Role.IS_QUAL)


def integrate_peak(
    trace: Chromatogram,
    rt_lo: float,
    rt_hi: float,
    params: Integration,
    transition: str,
    *,
    anchor_rt: float | None = None,
) -> Peak | None:
    """One trace on its own: the peak whose apex lies in [rt_lo, rt_hi], or None."""
    group = integrate_group(
        {transition: trace},
        {},
        rt_lo,
        rt_hi,
        params,
        analyte=transition,
        anchor_rt=anchor_rt,
        mode="per_transition",
    )
    return group.peaks[transition]


def _per_transition(injection: Injection, assay: Assay, ids: list[str]) -> PeakGroup:
    """The IS in expected_rt +/- window, the rest in IS apex +/- analyte_window."""
    ret, params = assay.retention, assay.integration
    roles = {t.id: t.role for t in assay.transitions}
    lo, hi = ret.expected_rt - ret.window, ret.expected_rt + ret.window
    is_id = next((t for t in ids if roles[t] is Role.IS_QUANT), None)
    peaks: dict[str, Peak | None] = dict.fromkeys(ids)
    anchor: float | None = None
    if is_id is not None and is_id in injection.traces:
        is_peak = integrate_peak(injection.traces[is_id], lo, hi, params, is_id)
        peaks[is_id] = is_peak
        anchor = is_peak.apex_rt if is_peak is not None else None
    for t in ids:
        if t == is_id or t not in injection.traces:
            continue
        if anchor is not None:
            a_lo, a_hi = anchor - ret.analyte_window, anchor + ret.analyte_window
        else:
            a_lo, a_hi = lo, hi
        peaks[t] = integrate_peak(injection.traces[t], a_lo, a_hi, params, t, anchor_rt=anchor)
    ref = peaks.get(is_id) if is_id else None
    return PeakGroup(
        analyte=assay.analyte,
        reference=is_id,
        mode="per_transition",
        apex_rt=ref.apex_rt if ref else None,
        start_rt=ref.start_rt if ref else None,
        end_rt=ref.end_rt if ref else None,
        common=None,
        peaks=peaks,
    )


def integrate_groups(injection: Injection, assay: Assay) -> tuple[PeakGroup, ...]:
    """One group per analyte (its quantifier, qualifiers and IS), then each ``other`` alone.

    Missing traces are members with no peak (None). ``other`` transitions
    (ornithine, aspartate: informational neighbours) are searched in
    expected_rt +/- window on their own.
    """
    ret, params = assay.retention, assay.integration
    lo, hi = ret.expected_rt - ret.window, ret.expected_rt + ret.window
    roles = {t.id: t.role for t in assay.transitions}
    ids = [t.id for t in assay.transitions if t.role in GROUP_ROLES]
    if params.boundaries == "per_transition":
        groups = [_per_transition(injection, assay, ids)]
    else:
        traces = {t: injection.traces[t] for t in ids if t in injection.traces}
        g = integrate_group(traces, roles, lo, hi, params, analyte=assay.analyte)
        groups = [g if set(g.peaks) == set(ids) else _complete(g, ids)]
    for t in assay.transitions:
        if t.role is Role.OTHER:
            tr = injection.traces.get(t.id)
            p = integrate_peak(tr, lo, hi, params, t.id) if tr is not None else None
            groups.append(
                PeakGroup(t.name, t.id, "per_transition", None, None, None, None, {t.id: p})
            )
    return tuple(groups)


def _complete(group: PeakGroup, ids: list[str]) -> PeakGroup:
    return replace(group, peaks={t: group.peaks.get(t) for t in ids})


def integrate_injection(injection: Injection, assay: Assay) -> dict[str, Peak | None]:
    """Peaks by transition id, every assay transition present (None: no trace or no peak)."""
    return {t: p for g in integrate_groups(injection, assay) for t, p in g.peaks.items()}
