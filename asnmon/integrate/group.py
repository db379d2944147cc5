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

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from asnmon.assay import Integration
from asnmon.integrate.boundaries import (
    DETECTION_SN,
    FLAT_FRACTION,
    MIN_QUIET_POINTS,
    Bounds,
    baseline_line,
    find_bounds,
    quiet_stretch,
)
from asnmon.integrate.interference import find_interference, find_tail
from asnmon.integrate.noise import low_quantile, median, noise_sd, smooth
from asnmon.records import Chromatogram, FloatArray, Peak, PeakGroup, Role, Truncation

FLAT_TOP_POINTS = 3  # consecutive identical maxima that mean a clipped detector
MIN_MARGIN_MIN = 0.5  # min, the slice extends at least this far beyond the search window
MIN_SHAPE_POINTS = 5  # points inside the boundaries needed to compare two profiles
PAIR_ROLES = (Role.ANALYTE_QUANT, Role.IS_QUANT)
# an IS peak this many noise SDs tall bounds the group alone: the IS is spiked clean and
# at one level, the analyte trace may carry an interferent (ornithine, an isotope)
IS_ALONE_SN = 10.0


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
    rt: FloatArray,
    y: FloatArray,
    span: tuple[float, float] | None,
    region: tuple[float, float],
    side: int,
    edge: float,
    width: int,
    sd: float,
    rel: float,
    max_slope: float,
) -> tuple[int, int] | None:
    """This trace's own quiet stretch where the group found one; None where the group did not.

    Searched on the trace itself over the group's search region: a member can
    carry something the group profile does not (an interferent on the analyte
    transition a little after the peak), and its baseline must not sit on it.
    """
    if span is None:  # the group has no quiet stretch on this side: none of its members has
        return None
    idx = np.flatnonzero((rt >= region[0]) & (rt <= region[1]))
    if idx.size >= width:
        k = 0 if side > 0 else idx.size - 1
        q = quiet_stretch(y[idx], k, side, idx.size - 1, width, sd, rel, max_slope)
        return None if q is None else (int(idx[q[0]]), int(idx[q[1]]))
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


def _lowest_run(y: FloatArray, width: int) -> float:
    """The lowest mean of ``width`` consecutive points (the whole trace if shorter)."""
    if y.size <= width:
        return float(np.mean(y))
    csum = np.concatenate(([0.0], np.cumsum(y)))
    return float(((csum[width:] - csum[:-width]) / width).min())


def measure(
    tid: str,
    trace: Chromatogram,
    bounds: tuple[float, float],
    quiet: tuple[tuple[float, float] | None, tuple[float, float] | None],
    regions: tuple[tuple[float, float], tuple[float, float]],
    quiet_width: int,
    group_fwhm: float,
    cut: tuple[bool, bool],
    window: int,
    params: Integration,
    *,
    require_signal: bool,
    sd0: float | None = None,
    rel: float = 0.0,
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
    sd0 = noise_sd(y) if sd0 is None else sd0
    dt = median(np.diff(rt))
    rise = float(s_all[i0 : i1 + 1].max()) - _lowest_run(y, quiet_width)
    max_slope = (
        FLAT_FRACTION * rise * dt / group_fwhm if group_fwhm > 0 and dt > 0 else float("inf")
    )
    line = baseline_line(
        rt,
        y,
        (
            _own_quiet(rt, y, quiet[0], regions[0], -1, t_s, quiet_width, sd0, rel, max_slope),
            _own_quiet(rt, y, quiet[1], regions[1], 1, t_e, quiet_width, sd0, rel, max_slope),
        ),
    )
    if line is None:  # nowhere quiet: the trace's lowest run (a level, not one noisy minimum)
        b0, b1 = _lowest_run(y, quiet_width), 0.0
    else:
        b0, b1 = line
    x = np.concatenate(([t_s] * int(rt[i0] > t_s), rt[i0 : i1 + 1], [t_e] * int(rt[i1] < t_e)))
    v = np.interp(x, rt, y) - (b0 + b1 * x)
    area = max(0.0, float(np.trapezoid(v, x)))
    k = i0 + int(np.argmax(s_all[i0 : i1 + 1]))
    top = float(s_all[k] - (b0 + b1 * rt[k]))
    # nothing above noise: judged against the trace's median too, so that a baseline
    # fallen back to the lowest level cannot turn noise into a peak
    level = max(float(b0 + b1 * rt[k]), median(y))
    if require_signal and float(s_all[k]) - level < DETECTION_SN * sd0:
        return none
    height = max(0.0, float(y[k] - (b0 + b1 * rt[k])))
    kk = int(np.searchsorted(x, rt[k]))
    peak_fwhm = _fwhm(x, v, kk, height)
    outside = np.concatenate((y[:i0], y[i1 + 1 :]))
    out_noise = noise_sd(outside) if outside.size >= 10 else sd0
    sn = height / out_noise if out_noise > 0.0 else None
    raw = y[i0 : i1 + 1]
    top_raw = float(raw.max())
    saturated = bool(top_raw >= params.saturation_intensity) or _flat_top(raw, top_raw)

    # a cut: the integration ends (group edge, or this trace's own acquisition) above baseline
    own = (float(rt[0]) >= bounds[0] - 0.5 * dt, float(rt[-1]) <= bounds[1] + 0.5 * dt)
    sides: list[tuple[str, float, float, bool]] = []
    for j, (name, at, i) in enumerate((("left", t_s, i0), ("right", t_e, i1))):
        if not (cut[j] or own[j]):
            continue
        level = float(np.interp(at, rt, s_all) - (b0 + b1 * at))
        pct = 100.0 * level / top if top > 0 else 0.0
        if pct >= params.truncation_pct and level > DETECTION_SN * sd0:
            sides.append((name, pct, at, own[j] and i in (0, rt.size - 1)))
    # a side this trace's own acquisition cut is what its flag is about; a side only held
    # to a partner's shorter window is reported when nothing of its own is cut
    own_cuts = [z for z in sides if z[3]]
    shown = own_cuts or sides
    peak = Peak(
        transition=tid,
        apex_rt=_apex_rt(rt, s_all, k),
        start_rt=float(t_s),
        end_rt=float(t_e),
        area=area,
        height=height,
        baseline_start=float(b0 + b1 * t_s),
        baseline_end=float(b0 + b1 * t_e),
        fwhm=peak_fwhm,
        sn=sn,
        points=i1 - i0 + 1,
        saturated=saturated,
        truncated=bool(sides),
        cut_side=("both" if len(shown) == 2 else shown[0][0]) if shown else None,
        cut_pct=max(p for _, p, _, _ in shown) if shown else None,
        cut_rt=max(shown, key=lambda z: z[1])[2] if shown else None,
        acquisition_cut=bool(own_cuts),
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
        a, b = a - a.mean(), b - b.mean()
        den = float(np.sqrt(float(a @ a) * float(b @ b)))
        if den > 0:
            r = float(a @ b) / den
    return replace(
        peak, apex_offset=peak.apex_rt - ref.apex_rt, shape_r=r, reference=ref.transition
    )


def _anchor(trace: Chromatogram, lo: float, hi: float, sd: float) -> tuple[float, float] | None:
    """The reference's own smoothed maximum in [lo, hi] and its height in noise SDs.

    None unless it stands DETECTION_SN above the trace's noise.
    """
    m = (trace.rt >= lo) & (trace.rt <= hi)
    if int(m.sum()) < 3 or sd <= 0:
        return None
    s = smooth(trace.intensity, 5)
    idx = np.flatnonzero(m)
    k = int(idx[np.argmax(s[idx])])
    strength = (float(s[k]) - low_quantile(s)) / sd
    if strength < DETECTION_SN:
        return None
    return float(trace.rt[k]), strength


def _skim_tail(
    t: str,
    p: Peak,
    members: Mapping[str, Chromatogram],
    extra: dict[str, tuple[FloatArray, tuple[float, float]]],
    ref: str,
    quiet: tuple[tuple[float, float] | None, ...],
    regions: tuple[tuple[float, float], ...],
    b: Bounds,
    params: Integration,
    sd: Mapping[str, float],
) -> tuple[Peak, tuple[FloatArray, tuple[float, float]]] | None:
    """A member riding on an earlier peak's tail: its baseline from the far side, the tail skimmed."""
    args = (members[ref], *extra[ref], b.window, sd[t], b.noise.rel)
    if find_tail(members[t], *extra[t], (p.start_rt, p.end_rt), *args) is None:
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
    found = find_tail(members[t], s, base, (q.start_rt, q.end_rt), *args)
    if found is None:
        return replace(q, area=q.area), (s, base)
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
    if len(pair) == 1:
        c = np.interp(grid, ref_rt, members[ref].intensity)
    else:
        c = np.zeros(grid.size)
        for t in pair:
            tr = members[t]
            y = np.interp(grid, tr.rt, tr.intensity)
            c += y / (sd[t] if sd[t] > 0 else max(float(np.ptp(y)) * 1e-6, 1e-300))
        if anchor_rt is None and roles.get(ref) is Role.IS_QUANT:
            found = _anchor(members[ref], rt_lo, rt_hi, sd[ref])
            if found is not None:
                anchor_rt = found[0]
                if found[1] >= IS_ALONE_SN:  # a clean IS peak: it alone bounds the group
                    c = np.interp(grid, ref_rt, members[ref].intensity)
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
    n = grid.size - 1
    regions = tuple(
        (float(grid[max(0, min(n, a))]), float(grid[max(0, min(n, z))])) for a, z in b.regions
    )
    peaks: dict[str, Peak | None] = dict.fromkeys(traces)
    extra: dict[str, tuple[FloatArray, tuple[float, float]]] = {}
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
        )
        peaks[t] = p
        extra[t] = (s, base)
    ref_peak = peaks.get(ref)
    if ref_peak is not None:
        for t, p in list(peaks.items()):
            if p is None or t == ref:
                continue
            found = find_interference(
                members[t],
                *extra[t],
                (p.start_rt, p.end_rt),
                members[ref],
                *extra[ref],
                float(grid[b.apex]),
                b.fwhm,
                b.window,
                sd[t],
                b.noise.rel,
                params.valley_depth,
            )
            if found is None:
                skimmed = _skim_tail(t, p, members, extra, ref, quiet, regions, b, params, sd)
                if skimmed is not None:
                    peaks[t], extra[t] = skimmed
                continue
            if not found.separated:
                peaks[t] = replace(p, interference=found)
                continue
            clean = (p.start_rt, found.cut_rt) if found.side == "right" else (found.cut_rt, p.end_rt)
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
