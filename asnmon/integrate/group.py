"""One peak group -> a Peak per member, all over the same boundaries.

An analyte's transitions and its internal standard's co-elute by design, so
the peak is found once, on the group (as OpenMS's MRMTransitionGroupPicker and
Skyline do), and every member is integrated between the same two retention
times, each above its own baseline:

- **the common interval**: analyte and IS quantifiers are looked at only where
  both were acquired. A scheduled window that ends on the IS's tail cuts the
  analyte at the same time, so the ratio of the two areas stays unbiased
  (both lose the same fraction), and the cut is reported (``Truncation``).
- **the profile**: the IS quantifier itself when its peak stands >= 10 noise
  SDs (it is spiked clean, at one level; the analyte trace may carry an
  interferent); else the sum of the quantifier traces, each divided by its own
  baseline noise, on the IS's time points, its apex nearest the IS's maximum.
- **boundaries**: ``asnmon.integrate.boundaries.find_bounds`` on that profile.
- **each member**: raw points between the boundaries (the ends interpolated,
  so every member covers exactly the same interval; a member acquired over
  less uses what it has), minus a straight baseline through *its own* quiet
  stretches, searched where the profile found quiet ones (none where the
  profile had none: a cut tail gives no member a baseline there). Area: trapezoid, never below 0
  (a baseline above the signal is no peak, not a negative one). Height: the
  raw value at the smoothed apex; S/N against the noise outside the peak.
- **cuts**: a member whose integration ends where its signal is still above
  ``integration.truncation_pct`` of its apex is ``truncated`` (side, % of apex,
  and whether its own acquisition window is what ended it).
- **shape**: every member's profile against the reference's (IS quantifier):
  apex offset and Pearson correlation inside the boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields, replace
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np

from asnmon.assay import Integration
from asnmon.integrate.baseline import baseline_offset
from asnmon.integrate.boundaries import DETECTION_SN, Bounds, QuietMemo, find_bounds
from asnmon.integrate.interference import (
    Inside,
    RefAt,
    Smoothed,
    find_interference,
    find_profile_skew,
    find_tail,
    inside,
    reference_profile,
)
from asnmon.integrate.member import Axis, measure
from asnmon.integrate.noise import low_quantile, noise_sd, smooth
from asnmon.integrate.small import count, interp, mean, nonzero
from asnmon.records import Chromatogram, FloatArray, Peak, PeakGroup, Role, Truncation

MIN_MARGIN_MIN = 0.5  # min, the slice extends at least this far beyond the search window
MIN_SHAPE_POINTS = 5  # points inside the boundaries needed to compare two profiles
PAIR_ROLES = (Role.ANALYTE_QUANT, Role.IS_QUANT)
# an IS peak this many noise SDs tall bounds the group alone: the IS is spiked clean and
# at one level, the analyte trace may carry an interferent (ornithine, an isotope)
IS_ALONE_SN = 10.0


_PEAK_FIELDS = {f.name: i for i, f in enumerate(fields(Peak))}
_peak_values = attrgetter(*_PEAK_FIELDS)


def _updated(peak: Peak, changes: Mapping[str, Any]) -> Peak:
    """``dataclasses.replace(peak, **changes)``, without its per-field checks: Peak's fields
    are all plain init fields, so its values in order, the changed ones swapped, make it."""
    values = list(_peak_values(peak))
    for name, value in changes.items():
        values[_PEAK_FIELDS[name]] = value
    return Peak(*values)


def _shape_fields(
    peak: Peak,
    trace: Chromatogram,
    s: FloatArray,
    base: tuple[float, float],
    ref: Peak,
    ref_trace: Chromatogram,
    ref_s: FloatArray,
    ref_base: tuple[float, float],
    ref_parts: dict[tuple[float, float], tuple[FloatArray, FloatArray | None]] | None = None,
) -> dict[str, Any]:
    """Apex offset and profile correlation against the group's reference member: the fields.

    ``ref_parts``: the reference's side by interval, for the group's members to share
    (they are bounded alike, so each would work out the same grid and profile).
    """
    lo, hi = max(peak.start_rt, ref.start_rt), min(peak.end_rt, ref.end_rt)
    parts = ref_parts.get((lo, hi)) if ref_parts is not None else None
    if parts is None:
        grid = ref_trace.rt[(ref_trace.rt >= lo) & (ref_trace.rt <= hi)]
        b = None
        if grid.size >= MIN_SHAPE_POINTS:
            b = interp(grid, ref_trace.rt, ref_s) - (ref_base[0] + ref_base[1] * grid)
            b = b - mean(b)
        parts = (grid, b)
        if ref_parts is not None:
            ref_parts[(lo, hi)] = parts
    grid, b = parts
    r: float | None = None
    if b is not None:
        a = interp(grid, trace.rt, s) - (base[0] + base[1] * grid)
        a = a - mean(a)
        den = math.sqrt(float(a.dot(a)) * float(b.dot(b)))
        if den > 0:
            r = float(a.dot(b)) / den
    return {"apex_offset": peak.apex_rt - ref.apex_rt, "shape_r": r, "reference": ref.transition}


def compare_shape(
    peak: Peak,
    trace: Chromatogram,
    s: FloatArray,
    base: tuple[float, float],
    ref: Peak,
    ref_trace: Chromatogram,
    ref_s: FloatArray,
    ref_base: tuple[float, float],
) -> Peak:
    """``peak`` with its apex offset and profile correlation against the reference member
    (the review measures a hand-drawn peak's shape as the group measures its members)."""
    return replace(peak, **_shape_fields(peak, trace, s, base, ref, ref_trace, ref_s, ref_base))


def _anchor(
    trace: Chromatogram, lo: float, hi: float, sd: float
) -> tuple[float, float, FloatArray, float] | None:
    """The reference's own smoothed maximum in [lo, hi] and its height in noise SDs.

    None unless it stands DETECTION_SN above the trace's noise. Also the trace smoothed
    over 5 points and its low quantile (what ``find_bounds`` works out on it first).
    """
    m = (trace.rt >= lo) & (trace.rt <= hi)
    if count(m) < 3 or sd <= 0:
        return None
    s = smooth(trace.intensity, 5)
    idx = nonzero(m)
    k = int(idx[s[idx].argmax()])
    level = low_quantile(s)
    strength = (float(s[k]) - level) / sd
    if strength < DETECTION_SN:
        return None
    return float(trace.rt[k]), strength, s, level


class _Reference(NamedTuple):
    """The group's reference as every member's checks see it, worked out once."""

    smoothed: Smoothed
    profile: tuple[FloatArray, float]  # reference_profile
    at: dict[bytes, RefAt]  # inside's memo: the reference at the members' times


def _separate(
    t: str,
    peaks: dict[str, Peak | None],
    extra: dict[str, tuple[FloatArray, tuple[float, float]]],
    members: Mapping[str, Chromatogram],
    b: Bounds,
    apex: float,
    quiet: tuple[tuple[float, float] | None, ...],
    regions: tuple[tuple[float, float], ...],
    params: Integration,
    sd: Mapping[str, float],
    shared: _Reference,
) -> None:
    """A second peak on member ``t`` inside the bounds: split at its valley or its tail skimmed.

    Updates ``peaks[t]`` (and its smoothed trace and baseline in ``extra``). ``shared``:
    the reference as the members' checks see it.
    """
    p = peaks[t]
    if p is None:
        return
    member, reference = Smoothed(members[t], *extra[t]), shared.smoothed
    # None: too few points for any check (find_tail's too)
    pts = inside(member, (p.start_rt, p.end_rt), reference, shared.at)
    found = None
    if pts is not None:
        found = find_interference(
            member,
            (p.start_rt, p.end_rt),
            reference,
            apex,
            b.fwhm,
            b.window,
            sd[t],
            b.noise.rel,
            params.valley_depth,
            limits=params.interference,
            points=pts,
        )
    if found is None:
        skimmed = None
        if pts is not None:  # (too few points: no tail either)
            skimmed = _skim_tail(t, p, members, extra, quiet, regions, b, params, sd, pts, shared)
        if skimmed is not None:
            peaks[t], extra[t] = skimmed
            return
        skew = None if pts is None else find_profile_skew(
            member, (p.start_rt, p.end_rt), reference, b.fwhm, b.window, sd[t],
            limits=params.interference, points=pts,
        )  # fmt: skip
        if skew is not None:
            peaks[t] = replace(p, interference=skew)
        return
    if not found.separated:
        peaks[t] = replace(p, interference=found)
        return
    right = found.side == "right"
    clean = (p.start_rt, found.cut_rt) if right else (found.cut_rt, p.end_rt)
    q, s, base = measure(
        t,
        members[t],
        clean,
        # the baseline from the side away from the interferent: its tail is no baseline
        (quiet[0], None) if found.side == "right" else (None, quiet[1]),
        (regions[0], regions[1]),
        b.quiet_width,
        b.fwhm,
        (b.left_cut and found.side == "right", b.right_cut and found.side == "left"),
        b.window,
        params,
        require_signal=False,
        sd0=sd[t],
        rel=b.noise.rel,
    )
    if q is not None:
        peaks[t] = replace(q, area=q.area / found.clean_share, interference=found)
        extra[t] = (s, base)


def _skim_tail(
    t: str,
    p: Peak,
    members: Mapping[str, Chromatogram],
    extra: dict[str, tuple[FloatArray, tuple[float, float]]],
    quiet: tuple[tuple[float, float] | None, ...],
    regions: tuple[tuple[float, float], ...],
    b: Bounds,
    params: Integration,
    sd: Mapping[str, float],
    pts: Inside,
    shared: _Reference,
) -> tuple[Peak, tuple[FloatArray, tuple[float, float]]] | None:
    """A member on an earlier peak's tail: the baseline from the far side, the tail skimmed.

    ``pts``: the member's points inside its bounds (``inside``).
    """
    reference = shared.smoothed

    def tail(
        s: FloatArray,
        base: tuple[float, float],
        bounds: tuple[float, float],
        points: Inside | None = None,
    ):
        return find_tail(
            Smoothed(members[t], s, base), bounds, reference, b.window, sd[t], b.noise.rel,
            limits=params.interference, points=points, ref_profile=shared.profile,
        )  # fmt: skip

    if tail(*extra[t], (p.start_rt, p.end_rt), pts) is None:
        return None
    q, s, base = measure(
        t,
        members[t],
        (p.start_rt, p.end_rt),
        (None, quiet[1]),  # the left side is the other peak's tail: no baseline
        (regions[0], regions[1]),
        b.quiet_width,
        b.fwhm,
        (b.left_cut, b.right_cut),
        b.window,
        params,
        require_signal=False,
        sd0=sd[t],
        rel=b.noise.rel,
    )
    if q is None:
        return None
    found = tail(s, base, (q.start_rt, q.end_rt))
    if found is None:  # not seen once the baseline moved: the first integration stands
        return None
    seen, skim = found
    return replace(q, area=max(0.0, q.area - skim), interference=seen), (s, base)


def integrate_group(
    traces: Mapping[str, Chromatogram],
    roles: Mapping[str, Role],
    rt_lo: float,
    rt_hi: float,
    params: Integration,
    *,
    analyte: str,
    anchor_rt: float | None = None,
    mode: str = "group",
) -> PeakGroup:
    """Find the group's peak with its apex in [rt_lo, rt_hi]; integrate every member."""
    members = {t: tr for t, tr in traces.items() if tr.rt.size >= 3}
    empty = PeakGroup(analyte, None, mode, None, None, None, None, dict.fromkeys(traces))
    if not members or not rt_hi > rt_lo:
        return empty
    pair = [t for t in members if roles.get(t) in PAIR_ROLES] or list(members)
    ref = next((t for t in pair if roles.get(t) is Role.IS_QUANT), pair[0])
    t0 = max(float(members[t].rt[0]) for t in pair)
    t1 = min(float(members[t].rt[-1]) for t in pair)
    margin = max(MIN_MARGIN_MIN, 2.0 * (rt_hi - rt_lo))
    g_lo, g_hi = max(t0, rt_lo - margin), min(t1, rt_hi + margin)
    sd = {t: noise_sd(tr.intensity) for t, tr in members.items()}
    ref_rt = members[ref].rt
    grid = ref_rt[(ref_rt >= g_lo) & (ref_rt <= g_hi)]
    if grid.size < 3:
        return empty
    edges = (g_lo == t0, g_hi == t1)
    alone = len(pair) == 1
    found = None
    if not alone and anchor_rt is None and roles.get(ref) is Role.IS_QUANT:
        found = _anchor(members[ref], rt_lo, rt_hi, sd[ref])
        if found is not None:
            anchor_rt = found[0]
            alone = found[1] >= IS_ALONE_SN  # a clean IS peak: it alone bounds the group
    # the profile is the reference's trace itself, bit for bit (every point, interpolated
    # at its own times): what is worked out on the one is what is worked out on the other
    whole = False
    if alone:
        y_ref = members[ref].intensity
        c = interp(grid, ref_rt, y_ref)
        whole = grid.size == ref_rt.size and c.tobytes() == y_ref.tobytes()
    else:  # the quantifiers in noise units (not needed, so not summed, when the IS bounds alone)
        c = np.zeros(grid.size)
        for t in pair:
            tr = members[t]
            y = interp(grid, tr.rt, tr.intensity)
            c += y / (sd[t] if sd[t] > 0 else max(float(np.ptp(y)) * 1e-6, 1e-300))
    quiet_memo: QuietMemo | None = {} if whole else None  # its searches, for its measure
    b: Bounds | None = find_bounds(
        grid,
        c,
        rt_lo,
        rt_hi,
        smoothing_points=params.smoothing_points,
        valley_depth=params.valley_depth,
        edges=edges,
        anchor_rt=anchor_rt,
        known=(sd[ref], found[2], found[3]) if whole and found is not None else None,
        quiet_memo=quiet_memo,
    )
    if b is None:
        return empty
    span = (float(grid[b.start]), float(grid[b.end]))
    quiet = tuple(None if q is None else (float(grid[q[0]]), float(grid[q[1]])) for q in b.quiet)
    n = grid.size - 1
    regions = tuple(
        (float(grid[max(0, min(n, a))]), float(grid[max(0, min(n, z))])) for a, z in b.regions
    )
    peaks: dict[str, Peak | None] = dict.fromkeys(traces)
    extra: dict[str, tuple[FloatArray, tuple[float, float]]] = {}
    axes: dict[tuple, Axis | None] = {}  # members on the same time points share their axis
    for t, tr in members.items():
        p, s, base = measure(
            t,
            tr,
            span,
            (quiet[0], quiet[1]),
            (regions[0], regions[1]),
            b.quiet_width,
            b.fwhm,
            (b.left_cut, b.right_cut),
            b.window,
            params,
            require_signal=len(pair) > 1 or t != ref,
            sd0=sd[t],
            rel=b.noise.rel,
            axes=axes,
            # the reference's trace smoothed as the profile was, when it is the profile
            smoothed=b.smoothed if whole and t == ref else None,
            quiet_memo=quiet_memo if t == ref else None,
        )
        peaks[t] = p
        extra[t] = (s, base)
    ref_peak = peaks.get(ref)
    if ref_peak is not None:
        reference = Smoothed(members[ref], *extra[ref])
        seen = _Reference(reference, reference_profile(reference), {})
        for t in list(peaks):
            if t != ref:
                _separate(t, peaks, extra, members, b, float(grid[b.apex]), quiet, regions,
                          params, sd, seen)  # fmt: skip
        shared: dict[tuple[float, float], tuple[FloatArray, FloatArray | None]] = {}
        for t, p in peaks.items():  # shape against the reference; the analyte's baseline too
            if p is None:
                continue
            changes: dict[str, Any] = (
                {}
                if t == ref
                else _shape_fields(
                    p, members[t], *extra[t], ref_peak, members[ref], *extra[ref], shared
                )
            )
            if roles.get(t) is Role.ANALYTE_QUANT and p.interference is None:
                changes["baseline_doubt"] = baseline_offset(
                    members[t], extra[t][1], members[ref], extra[ref][1],
                    (max(p.start_rt, ref_peak.start_rt), min(p.end_rt, ref_peak.end_rt)), p.area,
                    (sd[t], sd[ref], b.noise.rel), ref,
                )  # fmt: skip
            if changes:  # one new record with all of them
                peaks[t] = _updated(p, changes)
    truncations = tuple(
        Truncation(t, side, p.cut_rt or 0.0, p.cut_pct or 0.0)
        for t, p in peaks.items()
        if p is not None and p.acquisition_cut and p.cut_side
        for side in (("left", "right") if p.cut_side == "both" else (p.cut_side,))
    )
    return PeakGroup(
        analyte=analyte,
        reference=ref,
        mode=mode,
        apex_rt=float(grid[b.apex]),
        start_rt=span[0],
        end_rt=span[1],
        common=(t0, t1),
        peaks=peaks,
        truncations=truncations,
    )
