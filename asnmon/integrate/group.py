"""One peak group -> a Peak per member, all over the same boundaries.

An analyte's transitions and its internal standard's co-elute by design, so
the peak is found once, on the group (as OpenMS's MRMTransitionGroupPicker and
Skyline do), and every member is integrated between the same two retention
times, each above its own baseline:

- **the common interval**: analyte and IS quantifiers are looked at only where
  both were acquired. A scheduled window that ends on the IS's tail cuts the
  analyte at the same time, so the ratio of the two areas stays unbiased
  (both lose the same fraction), and the cut is reported (``Truncation``).
- **the profile**: the sum of the quantifier traces, each divided by its own
  baseline noise, on the IS's time points; its apex is taken nearest the IS's
  own maximum, so an interferent on the analyte trace cannot move the group.
- **boundaries**: ``asnmon.integrate.boundaries.find_bounds`` on that profile.
- **each member**: raw points between the boundaries (the ends interpolated,
  so every member covers exactly the same interval; a member acquired over
  less uses what it has), minus a straight baseline through *its own* medians
  over the quiet stretches the profile found. Area: trapezoid, never below 0
  (a baseline above the signal is no peak, not a negative one). Height: the
  raw value at the smoothed apex; S/N against the noise outside the peak.
- **cuts**: a member whose integration ends where its signal is still above
  ``integration.truncation_pct`` of its apex is ``truncated`` (side, % of apex,
  and whether its own acquisition window is what ended it).
- **shape**: every member's profile against the reference's (IS quantifier):
  apex offset and Pearson correlation inside the boundaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from asnmon.assay import Integration
from asnmon.integrate.boundaries import (
    DETECTION_SN,
    MIN_QUIET_POINTS,
    Bounds,
    baseline_line,
    find_bounds,
)
from asnmon.integrate.noise import low_quantile, median, noise_sd, smooth
from asnmon.records import Chromatogram, FloatArray, Peak, PeakGroup, Role, Truncation

FLAT_TOP_POINTS = 3  # consecutive identical maxima that mean a clipped detector
MIN_MARGIN_MIN = 0.5  # min, the slice extends at least this far beyond the search window
MIN_SHAPE_POINTS = 5  # points inside the boundaries needed to compare two profiles
PAIR_ROLES = (Role.ANALYTE_QUANT, Role.IS_QUANT)


def _flat_top(raw: FloatArray, top: float) -> bool:
    """At least FLAT_TOP_POINTS consecutive points exactly at the maximum."""
    if top <= 0.0:
        return False
    at_top = np.concatenate(([0], (raw == top).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(at_top))
    runs = edges[1::2] - edges[::2]
    return bool(runs.size and runs.max() >= FLAT_TOP_POINTS)


def _fwhm(x: FloatArray, v: FloatArray, k: int, height: float) -> float | None:
    """Width at half height, interpolated; None when a side never drops to half."""
    if height <= 0.0:
        return None
    half = 0.5 * height
    left = np.flatnonzero(v[:k] < half)
    right = np.flatnonzero(v[k:] < half)
    if not left.size or not right.size:
        return None
    a = int(left[-1])
    b = k + int(right[0])
    xl = x[a] + (half - v[a]) * (x[a + 1] - x[a]) / (v[a + 1] - v[a])
    xr = x[b - 1] + (half - v[b - 1]) * (x[b] - x[b - 1]) / (v[b] - v[b - 1])
    return float(xr - xl)


def _apex_rt(rt: FloatArray, s: FloatArray, i: int) -> float:
    """A parabola through the smoothed apex and its neighbours."""
    out = float(rt[i])
    if 0 < i < rt.size - 1:
        ym, y0, yp = s[i - 1], s[i], s[i + 1]
        den = ym - 2.0 * y0 + yp
        if den < 0.0:
            off = 0.5 * (ym - yp) / den
            if abs(off) < 1.0:
                h = rt[i + 1] - rt[i] if off > 0 else rt[i] - rt[i - 1]
                out += float(off * h)
    return out


def _own_quiet(
    rt: FloatArray, y: FloatArray, span: tuple[float, float] | None, side: int, edge: float
) -> tuple[int, int] | None:
    """This trace's points in the group's quiet stretch; else its own quietest run beside."""
    if span is None:  # the group has no quiet stretch on this side: none of its members has
        return None
    idx = np.flatnonzero((rt >= span[0]) & (rt <= span[1]))
    if idx.size >= MIN_QUIET_POINTS // 2:
        return int(idx[0]), int(idx[-1])
    # a qualifier acquired over less: its own lowest run outside the boundaries
    idx = np.flatnonzero(rt < edge) if side < 0 else np.flatnonzero(rt > edge)
    if idx.size < MIN_QUIET_POINTS:
        return None
    seg = y[idx]
    w = MIN_QUIET_POINTS
    csum = np.concatenate(([0.0], np.cumsum(seg)))
    k = int(np.argmin((csum[w:] - csum[:-w]) / w))
    return int(idx[k]), int(idx[k + w - 1])


def measure(
    tid: str,
    trace: Chromatogram,
    bounds: tuple[float, float],
    quiet: tuple[tuple[float, float] | None, tuple[float, float] | None],
    cut: tuple[bool, bool],
    window: int,
    params: Integration,
    *,
    require_signal: bool,
    sd0: float | None = None,
) -> tuple[Peak | None, FloatArray, tuple[float, float]]:
    """One member between the shared boundaries; also its smoothed trace and baseline."""
    rt, y = trace.rt, trace.intensity
    s_all = smooth(y, window)
    none = (None, s_all, (0.0, 0.0))
    if rt.size < 3:
        return none
    t_s, t_e = max(bounds[0], float(rt[0])), min(bounds[1], float(rt[-1]))
    if not t_e > t_s:
        return none
    inside = np.flatnonzero((rt >= t_s) & (rt <= t_e))
    if inside.size < 2:
        return none
    i0, i1 = int(inside[0]), int(inside[-1])
    line = baseline_line(
        rt,
        y,
        (_own_quiet(rt, y, quiet[0], -1, t_s), _own_quiet(rt, y, quiet[1], 1, t_e)),
    )
    b0, b1 = line if line is not None else (float(s_all[i0 : i1 + 1].min()), 0.0)
    x = np.concatenate(([t_s] * int(rt[i0] > t_s), rt[i0 : i1 + 1], [t_e] * int(rt[i1] < t_e)))
    v = np.interp(x, rt, y) - (b0 + b1 * x)
    area = max(0.0, float(np.trapezoid(v, x)))
    k = i0 + int(np.argmax(s_all[i0 : i1 + 1]))
    sd0 = noise_sd(y) if sd0 is None else sd0
    top = float(s_all[k] - (b0 + b1 * rt[k]))
    if require_signal and top < DETECTION_SN * sd0:
        return none
    height = max(0.0, float(y[k] - (b0 + b1 * rt[k])))
    kk = int(np.searchsorted(x, rt[k]))
    fwhm = _fwhm(x, v, kk, height)
    outside = np.concatenate((y[:i0], y[i1 + 1 :]))
    out_noise = noise_sd(outside) if outside.size >= 10 else sd0
    sn = height / out_noise if out_noise > 0.0 else None
    raw = y[i0 : i1 + 1]
    top_raw = float(raw.max())
    saturated = bool(top_raw >= params.saturation_intensity) or _flat_top(raw, top_raw)

    # a cut: the integration ends (group edge, or this trace's own acquisition) above baseline
    dt = median(np.diff(rt))
    own = (float(rt[0]) >= bounds[0] - 0.5 * dt, float(rt[-1]) <= bounds[1] + 0.5 * dt)
    sides: list[tuple[str, float, float, bool]] = []
    for j, (name, at, i) in enumerate((("left", t_s, i0), ("right", t_e, i1))):
        if not (cut[j] or own[j]):
            continue
        level = float(np.interp(at, rt, s_all) - (b0 + b1 * at))
        pct = 100.0 * level / top if top > 0 else 0.0
        if pct >= params.truncation_pct and level > DETECTION_SN * sd0:
            sides.append((name, pct, at, own[j] and i in (0, rt.size - 1)))
    peak = Peak(
        transition=tid,
        apex_rt=_apex_rt(rt, s_all, k),
        start_rt=float(t_s),
        end_rt=float(t_e),
        area=area,
        height=height,
        baseline_start=float(b0 + b1 * t_s),
        baseline_end=float(b0 + b1 * t_e),
        fwhm=fwhm,
        sn=sn,
        points=i1 - i0 + 1,
        saturated=saturated,
        truncated=bool(sides),
        cut_side=("both" if len(sides) == 2 else sides[0][0]) if sides else None,
        cut_pct=max(p for _, p, _, _ in sides) if sides else None,
        cut_rt=max(sides, key=lambda z: z[1])[2] if sides else None,
        acquisition_cut=any(a for *_, a in sides),
    )
    return peak, s_all, (b0, b1)


def _shape(
    peak: Peak,
    trace: Chromatogram,
    s: FloatArray,
    base: tuple[float, float],
    ref: Peak,
    ref_trace: Chromatogram,
    ref_s: FloatArray,
    ref_base: tuple[float, float],
) -> Peak:
    """Apex offset and profile correlation against the group's reference member."""
    lo, hi = max(peak.start_rt, ref.start_rt), min(peak.end_rt, ref.end_rt)
    grid = ref_trace.rt[(ref_trace.rt >= lo) & (ref_trace.rt <= hi)]
    r: float | None = None
    if grid.size >= MIN_SHAPE_POINTS:
        a = np.interp(grid, trace.rt, s) - (base[0] + base[1] * grid)
        b = np.interp(grid, ref_trace.rt, ref_s) - (ref_base[0] + ref_base[1] * grid)
        if np.std(a) > 0 and np.std(b) > 0:
            r = float(np.corrcoef(a, b)[0, 1])
    return replace(
        peak, apex_offset=peak.apex_rt - ref.apex_rt, shape_r=r, reference=ref.transition
    )


def _anchor(trace: Chromatogram, lo: float, hi: float, sd: float) -> float | None:
    """The reference's own smoothed maximum in [lo, hi], if it stands above its noise."""
    m = (trace.rt >= lo) & (trace.rt <= hi)
    if int(m.sum()) < 3:
        return None
    s = smooth(trace.intensity, 5)
    idx = np.flatnonzero(m)
    k = int(idx[np.argmax(s[idx])])
    level = low_quantile(s)
    if s[k] - level < DETECTION_SN * sd:
        return None
    return float(trace.rt[k])


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
    if len(pair) == 1:
        c = np.interp(grid, ref_rt, members[ref].intensity)
    else:
        c = np.zeros(grid.size)
        for t in pair:
            tr = members[t]
            y = np.interp(grid, tr.rt, tr.intensity)
            c += y / (sd[t] if sd[t] > 0 else max(float(np.ptp(y)) * 1e-6, 1e-300))
        if anchor_rt is None and roles.get(ref) is Role.IS_QUANT:
            anchor_rt = _anchor(members[ref], rt_lo, rt_hi, sd[ref])
    b: Bounds | None = find_bounds(
        grid,
        c,
        rt_lo,
        rt_hi,
        smoothing_points=params.smoothing_points,
        valley_depth=params.valley_depth,
        edges=edges,
        anchor_rt=anchor_rt,
    )
    if b is None:
        return empty
    span = (float(grid[b.start]), float(grid[b.end]))
    quiet = tuple(None if q is None else (float(grid[q[0]]), float(grid[q[1]])) for q in b.quiet)
    peaks: dict[str, Peak | None] = dict.fromkeys(traces)
    extra: dict[str, tuple[FloatArray, tuple[float, float]]] = {}
    for t, tr in members.items():
        p, s, base = measure(
            t,
            tr,
            span,
            (quiet[0], quiet[1]),
            (b.left_cut, b.right_cut),
            b.window,
            params,
            require_signal=len(pair) > 1 or t != ref,
            sd0=sd[t],
        )
        peaks[t] = p
        extra[t] = (s, base)
    ref_peak = peaks.get(ref)
    if ref_peak is not None:
        for t, p in peaks.items():
            if p is not None and t != ref:
                peaks[t] = _shape(p, members[t], *extra[t], ref_peak, members[ref], *extra[ref])
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
