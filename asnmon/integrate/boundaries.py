"""Where a peak starts and ends on one profile, and where its baseline is measured.

The profile is a group's consensus (the sum of its quantifier traces in noise
units) or a single trace. On it, in order:

1. **apex**: local maxima of the smoothed profile whose prominence is at
   least ``DETECTION_SN`` x the baseline noise; of those inside the search
   window, the one nearest the anchor (the IS apex) or else the tallest.
2. **smoothing** sized to the peak: the window is half the points above half
   height (``integration.smoothing_points = 0``), so a 12-point peak is not
   flattened and a 60-point one is not left spiky.
3. **quiet stretches**: on each side, beyond 2.5 FWHM of the outermost apex,
   runs of ``max(8, FWHM points)`` points whose mean is near the lowest, that
   scatter about a line no more than 2.5 x the noise and change by less than
   8 % of the peak height per FWHM (a drift, not a tail or a neighbour's
   flank). A side with no such stretch inside the acquired interval has no
   baseline of its own -- a tail cut off by a scheduled window, or an
   interferent's flank, is never taken for baseline.
4. **valleys**: a neighbouring apex is a separate peak only if the valley to it
   dips by ``integration.valley_depth`` (half) of the smaller apex above the
   baseline *and* by more than 3 x the noise at the valley's level (the noise
   grows with the signal); otherwise it is part of this peak (a spiky top, a
   shoulder). A split is a perpendicular drop at the lowest point between them.
5. **ends**: walking out from the outermost apex, the first point where the
   profile, averaged over a third of the peak's width, is back on the line
   through the quiet stretches -- or the first acquired point (the peak is cut).
   A walk that reaches a quiet stretch without coming back to the line (a
   hump or a neighbour's tail between them) ends at the lowest point between
   the apex and the stretch, not on the hump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import _nd_image
from scipy.signal._peak_finding_utils import _local_maxima_1d, _peak_prominences

from asnmon.integrate.noise import (
    _NEAREST,
    NoiseModel,
    auto_window,
    estimate_noise,
    low_quantile,
    median,
    noise_sd,
    odd_window,
    smooth,
    smoothing_gain,
)
from asnmon.integrate.small import amax, amin, cumsum0, diff, mean, nonzero
from asnmon.records import FloatArray

DETECTION_SN = 3.0  # apex prominence / noise needed to call a peak at all (LOD convention)
VALLEY_SN = 3.0  # a valley must also dip this many noise SDs (at its level) to split
QUIET_OFFSET_FWHM = 2.5  # quiet stretches start this many FWHM beyond the outermost apex
QUIET_SPAN_FWHM = 5.0  # ... and are searched over this many FWHM further out
MIN_QUIET_POINTS = 8  # a baseline stretch has at least this many points
QUIET_SD = 2.5  # a quiet stretch scatters about its line by at most this x the noise there
FLAT_FRACTION = 0.08  # ... and changes by at most this fraction of the peak height per FWHM
TAILING = 1.5  # half width after / before the apex that makes a tailing peak
BASELINE_FRACTION = 1e-4  # "back on the baseline": the averaged profile within this of it


@dataclass(frozen=True, slots=True)
class Bounds:
    """Indices into the profile: apex, first and last integrated point; how each side ends."""

    apex: int
    start: int
    end: int
    left_cut: bool  # the first acquired point was reached above baseline
    right_cut: bool
    quiet: tuple[tuple[int, int] | None, tuple[int, int] | None]  # index ranges, inclusive
    regions: tuple[tuple[int, int], tuple[int, int]]  # where they were searched for
    quiet_width: int  # points in one run of a quiet stretch
    fwhm: float  # min, of the profile
    window: int  # smoothing points used
    noise: NoiseModel
    smoothed: FloatArray


def _candidates(s: FloatArray, thr: float, pad_lo: bool, pad_hi: bool) -> tuple:
    """Local maxima with their prominences; an apex on the first/last point counts."""
    if pad_lo or pad_hi:
        floor = amin(s)
        s_pad = np.concatenate(([floor] * int(pad_lo), s, [floor] * int(pad_hi)))
    else:  # nothing to pad: the profile itself (a contiguous float64 array, as the copy)
        s_pad = s
    # = find_peaks(s_pad, prominence=thr): its two compiled steps, past the checks of its
    # other options (a 1-D contiguous float64 profile, no window: wlen -1), which cost
    # more than the search on 60 points
    cand = _local_maxima_1d(s_pad)[0]
    prom = _peak_prominences(s_pad, cand, -1)[0]
    keep = thr <= prom
    return cand[keep] - int(pad_lo), prom[keep]


def _pick(
    rt: FloatArray,
    s: FloatArray,
    cand: np.ndarray,
    lo: float,
    hi: float,
    anchor: float | None,
    level: float,
    thr: float,
) -> int | None:
    ok = cand[(rt[cand] >= lo) & (rt[cand] <= hi) & (s[cand] - level >= thr)]
    if ok.size == 0:
        return None
    if anchor is not None:
        return int(ok[np.abs(rt[ok] - anchor).argmin()])
    return int(ok[s[ok].argmax()])


def _crossings(s: FloatArray, apex: int, level: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Half height above ``level``, and the points below it left and right of the apex."""
    half = level + 0.5 * (s[apex] - level)
    below = nonzero(s < half)
    return half, below[below < apex], below[below > apex]


def _half_widths(
    s: FloatArray, apex: int, crossings: tuple[float, np.ndarray, np.ndarray]
) -> tuple[float, float]:
    """Points from the apex to the half-height crossing on each side (interpolated)."""
    half, left, right = crossings
    out = []
    for side, default in ((left, 0), (right, s.size - 1)):
        if not side.size:
            out.append(float(abs(apex - default)) or 1.0)
            continue
        a = int(side[-1]) if side is left else int(side[0])
        b = a + 1 if side is left else a - 1
        frac = (half - s[a]) / (s[b] - s[a]) if s[b] != s[a] else 0.0
        out.append(max(abs(apex - (a + frac * (b - a))), 0.5))
    return out[0], out[1]


def _fwhm_points(n: int, crossings: tuple[float, np.ndarray, np.ndarray]) -> float:
    """Points above half height around the apex, on a profile of ``n`` points."""
    _, left, right = crossings
    a = int(left[-1]) if left.size else -1
    b = int(right[0]) if right.size else n
    return float(max(b - a - 1, 1))


def _line_fit(seg: FloatArray) -> tuple[float, float, float]:
    """Least-squares line through equally spaced points: slope per point, mean, residual SD.

    Closed form (np.polyfit's lstsq dominated the integration time).
    """
    n = seg.size
    x, sxx = _centred(n)
    level = mean(seg)
    dev = seg - level
    slope = float(x.dot(dev)) / sxx if sxx > 0 else 0.0
    resid = dev - slope * x
    return slope, level, math.sqrt(float(resid.dot(resid)) / n)


@lru_cache(maxsize=256)
def _centred(n: int) -> tuple[FloatArray, float]:
    """Point positions about their mean, and their sum of squares (read-only: shared)."""
    x = np.arange(n, dtype=float) - 0.5 * (n - 1)
    x.setflags(write=False)
    return x, float(x.dot(x))


def quiet_stretch(
    c: FloatArray,
    edge: int,
    step: int,
    span: int,
    width: int,
    sd: float,
    rel: float = 0.0,
    max_slope: float = float("inf"),
) -> tuple[int, int] | None:
    """The quiet stretch up to ``span`` points beyond ``edge``: None if shorter than ``width``.

    Runs of ``width`` points whose mean is within 5 standard errors of the
    lowest run's are quiet; the stretch is the contiguous set of them nearest
    the peak. Taking every such run (not only the lowest) keeps the level
    unbiased -- the lowest of many noisy means sits below the true baseline --
    while a neighbouring peak's runs, or a tail, stand far above and are left
    out. On a drifting baseline the stretch is the low part of the region,
    still on the drift's line.
    """
    n = c.size
    if step > 0:
        a, b = edge, min(n - 1, edge + span)
    else:
        a, b = max(0, edge - span), edge
    if b - a + 1 < width or a < 0 or b > n - 1:
        return None
    seg = c[a : b + 1]
    csum = cumsum0(seg)
    means = (csum[width:] - csum[:-width]) / width
    ok = means <= amin(means) + 5.0 * sd / math.sqrt(width)
    # the first True / first False by argmax / argmin of the booleans (False < True): the
    # indices np.flatnonzero gives, one call each. No True at all (a NaN noise SD): the
    # IndexError that indexing flatnonzero's empty answer raises.
    if step > 0:  # nearest the peak: the first accepted run, extended outwards
        k0 = int(ok.argmax())
        if not ok[k0]:
            k0 = int(nonzero(ok)[0])
        rest = ok[k0:]
        g = int(rest.argmin())
        k1 = k0 + (g - 1 if not rest[g] else ok.size - 1 - k0)
    else:
        back = ok[::-1]
        j = int(back.argmax())
        if not back[j]:
            j = int(nonzero(ok)[-1])
        k1 = ok.size - 1 - j
        rest = back[j:]  # = ok[: k1 + 1][::-1]
        g = int(rest.argmin())
        k0 = k1 - (g - 1 if not rest[g] else k1)
    lo, hi = a + k0, a + k1 + width - 1
    # quiet means noise about a line (a drift is allowed), not a tail or a neighbour's
    # flank; the part nearest the peak is given up, run by run, until the rest is quiet
    while hi - lo + 1 >= width:
        slope, level, resid_sd = _line_fit(c[lo : hi + 1])
        quiet = resid_sd <= QUIET_SD * float(np.hypot(sd, rel * max(level, 0.0)))
        if quiet and abs(slope) <= max_slope:
            return lo, hi
        if step > 0:
            lo += max(1, width // 2)
        else:
            hi -= max(1, width // 2)
    return None


def baseline_line(
    rt: FloatArray, y: FloatArray, quiet: tuple[tuple[int, int] | None, tuple[int, int] | None]
) -> tuple[float, float] | None:
    """(intercept, slope) through the medians of the quiet stretches; flat with one."""
    pts = [
        (0.5 * float(rt[a] + rt[b]), median(y[a : b + 1]))
        for q in quiet
        if q is not None
        for a, b in (q,)
    ]
    if not pts:
        return None
    if len(pts) == 2 and pts[1][0] > pts[0][0]:
        (x0, y0), (x1, y1) = pts
        slope = (y1 - y0) / (x1 - x0)
        return y0 - slope * x0, slope
    return pts[0][1], 0.0


def _valley(z: FloatArray, a: int, b: int, side: int, at: int) -> int:
    """The lowest point of ``z`` in [a, b] when it lies inside (a valley), else ``at``.

    The walk out from the apex reached a quiet stretch without coming back to
    the baseline: a hump or a neighbour's tail sits between them. The peak
    ends at the lowest point before it (a perpendicular drop), not on it.
    """
    if b - a < 2:
        return at
    k = a + int(z[a : b + 1].argmin())
    return k if a < k < b else at


def find_bounds(
    rt: FloatArray,
    c: FloatArray,
    lo: float,
    hi: float,
    *,
    smoothing_points: int,
    valley_depth: float,
    edges: tuple[bool, bool],
    anchor_rt: float | None = None,
    known: tuple[float, FloatArray, float] | None = None,
) -> Bounds | None:
    """The peak of profile ``c`` whose apex lies in [lo, hi]; None if nothing rises above noise.

    ``edges`` says whether the first/last point of ``rt`` is the end of the
    acquisition (else only the end of the slice looked at). ``known``: ``noise_sd(c)``,
    ``smooth(c, 5)`` and its ``low_quantile``, when the caller has them (the group's
    reference trace, when it is the profile).
    """
    n = rt.size
    if n < 3:
        return None
    if known is None:
        sd = noise_sd(c)
        s5 = smooth(c, 5)
        level5 = low_quantile(s5)
    else:
        sd, s5, level5 = known
    thr = max(DETECTION_SN * sd, 1e-9 * (amax(c) - amin(c)), 1e-300)  # np.ptp's two reductions
    cand, _ = _candidates(s5, thr, *edges)
    first = _pick(rt, s5, cand, lo, hi, anchor_rt, level5, thr)
    if first is None:
        return None
    cross = _crossings(s5, first, level5)
    fw_pts = _fwhm_points(n, cross)
    window = auto_window(fw_pts) if smoothing_points == 0 else smoothing_points
    again = odd_window(window) != odd_window(5)  # else the same filter: s5, its peaks, level
    s = smooth(c, window) if again else s5
    level = low_quantile(s) if again else level5
    noise = estimate_noise(c, s, window, sd, level)
    noise_rel = noise.rel
    if again:
        cand, _ = _candidates(s, thr, *edges)
    if again or anchor_rt is None:
        apex = _pick(rt, s, cand, lo, hi, rt[first] if anchor_rt is None else anchor_rt, level, thr)
        if apex is None:
            return None
        cross = _crossings(s, apex, level)
        fw_pts = _fwhm_points(n, cross)
    else:  # the same profile, peaks, level and anchor as the first pick: its apex and width
        apex = first
    dt = median(diff(rt))
    fwhm = fw_pts * dt
    width = max(MIN_QUIET_POINTS, round(fw_pts))
    # per side: a tailing peak's front is steep, so the quiet stretch before it starts
    # sooner and the one after it later (2 x each side's half width for the FWHM)
    hw_left, hw_right = _half_widths(s, apex, cross)
    offset = QUIET_OFFSET_FWHM * fw_pts
    off_lo = math.ceil(offset)
    tailing = hw_right >= TAILING * hw_left
    off_hi = math.ceil(max(offset, QUIET_OFFSET_FWHM * 2.0 * hw_right) if tailing else offset)
    span = max(math.ceil(QUIET_SPAN_FWHM * fw_pts), 2 * width)
    strong = cand  # _candidates keeps only the maxima whose prominence is thr or more
    max_slope = FLAT_FRACTION * float(s[apex] - level) / max(fw_pts, 1.0)

    regions: list[tuple[int, int]] = [(0, 0), (0, 0)]

    def quiet_for(
        left: int, right: int
    ) -> tuple[tuple[tuple[int, int] | None, tuple[int, int] | None], FloatArray]:
        # beyond the main peak's tail, and at least one FWHM beyond a merged shoulder
        lo_edge = min(apex - off_lo, left - math.ceil(fw_pts))
        hi_edge = max(apex + off_hi, right + math.ceil(fw_pts))
        regions[:] = [(lo_edge - span, lo_edge), (hi_edge, hi_edge + span)]
        q = (
            quiet_stretch(c, lo_edge, -1, span, width, sd, noise_rel, max_slope),
            quiet_stretch(c, hi_edge, 1, span, width, sd, noise_rel, max_slope),
        )

        line = baseline_line(rt, c, q)
        base = (
            np.full(n, amin(s)) if line is None else line[0] + line[1] * rt
        )  # nowhere quiet: the lowest point, so the peak is never below it
        return q, base

    quiet, base = quiet_for(apex, apex)
    z = s - base
    gain = smoothing_gain(window)

    def walk(step: int) -> tuple[int, bool]:
        """Outermost merged apex -> the end on one side; True if a valley split it."""
        top = apex
        cluster_h = z[apex]
        side = strong[strong < apex][::-1] if step < 0 else strong[strong > apex]
        for q in side:
            q = int(q)
            seg = z[min(top, q) : max(top, q) + 1]
            v = min(top, q) + int(seg.argmin())
            smaller = min(float(z[q]), float(cluster_h))
            # a neighbour beyond a return to baseline is another peak, not a valley
            if smaller <= 0 or float(z[v]) <= gain * noise.sd0:
                break
            dip = smaller - float(z[v])
            if dip >= valley_depth * smaller and dip >= VALLEY_SN * gain * noise.sd(float(z[v])):
                return v, True
            top = q
            cluster_h = max(cluster_h, float(z[q]))
        return top, False

    left_top, left_split = walk(-1)
    right_top, right_split = walk(1)
    if not (left_split and right_split) and (left_top, right_top) != (apex, apex):
        quiet, base = quiet_for(left_top, right_top)  # (apex, apex): the same as above
        z = s - base
    half = max(1, int(fw_pts) // 3) | 1
    # = uniform_filter1d(z, half, mode="nearest"), past its argument checks (as smooth)
    zz = np.empty(z.shape, z.dtype)
    _nd_image.uniform_filter1d(z, half, 0, zz, _NEAREST, 0.0, 0)
    back = BASELINE_FRACTION * float(z[apex])

    if left_split:
        start, left_cut = left_top, False
    else:
        below = nonzero(zz[: left_top + 1] <= back)
        stop = quiet[0][1] if quiet[0] is not None else -1
        start = max(int(below[-1]) if below.size else 0, stop)
        left_cut = not below.size and stop < 0 and edges[0]
        if start == stop >= 0:
            start = _valley(z, stop, left_top, -1, start)
    if right_split:
        end, right_cut = right_top, False
    else:
        below = nonzero(zz[right_top:] <= back)
        stop = quiet[1][0] if quiet[1] is not None else n
        end = min(right_top + int(below[0]) if below.size else n - 1, stop)
        right_cut = not below.size and stop >= n and edges[1]
        if end == stop < n:
            end = _valley(z, right_top, stop, 1, end)
    return Bounds(
        apex=apex,
        start=start,
        end=end,
        left_cut=bool(left_cut),
        right_cut=bool(right_cut),
        quiet=quiet,
        regions=(regions[0], regions[1]),
        quiet_width=width,
        fwhm=fwhm,
        window=window,
        noise=noise,
        smoothed=s,
    )
