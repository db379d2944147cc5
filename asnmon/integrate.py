"""Chromatogram -> Peak: find, bound and integrate one peak per transition.

How a peak is found and measured (all on a slice around the search window):

- **noise**: ``1.4826 * MAD(diff(raw)) / sqrt(2)`` -- the robust standard
  deviation of the raw signal estimated from its first difference, which a
  sloping or drifting baseline does not inflate. For S/N it is taken over the
  whole trace *outside* the peak; detection uses the whole trace. When the MAD
  is 0 (integer counts on an all-zero baseline) the mean absolute difference
  stands in; a trace with no variation at all has noise 0 and ``sn = None``.
- **detection**: the raw signal is smoothed (Savitzky-Golay, quadratic,
  ``smoothing_points``) for detection only; the baseline trend (median slope,
  robust level) is removed; apexes are local maxima whose prominence is at
  least ``DETECTION_SN`` (3) x noise -- the usual limit-of-detection
  convention. No such apex inside [rt_lo, rt_hi] -> ``None``. Of several, the
  tallest above the baseline is taken, or the one nearest ``anchor_rt``.
- **boundaries**: walking out from the apex, the first point where the
  smoothed, detrended signal falls back to the baseline level; but if another
  detected apex lies before that point, the lowest point between the two
  (the valley) is the boundary -- a perpendicular drop, so the areas of two
  merged peaks add up to the area of the pair.
- **baseline**: one straight line fitted to the raw points just outside the
  cluster of merged peaks (as many points on each side as the cluster is half
  wide, stopping at the next rise), evaluated at the peak's boundaries. A
  line through many points, not through two noisy boundary points, keeps
  the area unbiased at low S/N.
- **measures** on the raw signal minus that baseline: area (trapezoid,
  intensity x minutes), height (raw value at the smoothed apex), FWHM (linear
  interpolation of the half-height crossings), points between the boundaries.
  The apex RT is refined by a parabola through the three smoothed points.
- **saturated**: a raw maximum >= ``saturation_intensity`` or a flat top of
  at least ``FLAT_TOP_POINTS`` consecutive identical maxima (a clipped detector).
  **truncated**: the peak reaches the first or last point of the acquisition.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.ndimage import convolve1d, uniform_filter1d
from scipy.signal import find_peaks, savgol_coeffs

from asnmon.assay import Assay, Integration
from asnmon.records import Chromatogram, FloatArray, Injection, Peak, Role

DETECTION_SN = 3.0  # apex prominence / noise needed to call a peak at all (LOD convention)
SPLIT_SN = 5.0  # a neighbour's prominence / noise needed to split at the valley
BASELINE_FRACTION = 1e-4  # "back at baseline": within this fraction of the height
FLAT_TOP_POINTS = 3  # consecutive identical maxima that mean a clipped detector
MIN_MARGIN_MIN = 0.5  # min, the slice extends at least this far beyond the search window
_MAD_TO_SD = 1.4826
_SQRT2 = float(np.sqrt(2.0))


def noise_sd(values: FloatArray) -> float:
    """Robust SD of white noise on ``values``, from the MAD of its first difference."""
    if values.size < 3:
        return 0.0
    d = np.diff(values)
    mad = float(np.median(np.abs(d - np.median(d))))
    if mad > 0.0:
        return _MAD_TO_SD * mad / _SQRT2
    # integer counts on an all-zero baseline: the MAD is 0, the spikes are not
    return float(np.mean(np.abs(d))) * float(np.sqrt(np.pi / 2.0)) / _SQRT2


@lru_cache(maxsize=32)
def _sg_kernel(points: int) -> FloatArray:
    return savgol_coeffs(points, 2, use="conv")


def _smooth(y: FloatArray, points: int) -> FloatArray:
    """Savitzky-Golay (quadratic); an even window is widened by one, < 5 means none."""
    if points % 2 == 0:
        points += 1
    if points < 5 or y.size < points:
        return y
    return convolve1d(y, _sg_kernel(points), mode="nearest")


def _trend(rt: FloatArray, s: FloatArray) -> float:
    """Baseline slope per minute: medians of the outer thirds, robust to a central peak."""
    k = rt.size // 3
    if k < 2:
        return 0.0
    dx = float(np.median(rt[-k:]) - np.median(rt[:k]))
    return float(np.median(s[-k:]) - np.median(s[:k])) / dx if dx > 0 else 0.0


def _quiet_run(z: FloatArray, start: int, stop: int, limit: float) -> npt.NDArray[np.intp]:
    """Indices from ``start`` towards ``stop`` (inclusive) until ``z`` first exceeds ``limit``."""
    step = 1 if stop >= start else -1
    idx = np.arange(start, stop + step, step)
    above = np.flatnonzero(z[idx] > limit)
    return idx[: int(above[0])] if above.size else idx


def _baseline(
    rt: FloatArray,
    y: FloatArray,
    z: FloatArray,
    lo: int,
    hi: int,
    sides: tuple[bool, bool],
    limit: float,
    slope: float,
) -> tuple[float, float]:
    """Line (intercept, slope per minute) through the raw points just outside [lo, hi].

    ``sides`` says on which side the signal came back to baseline; a truncated
    side has no baseline to measure, so the other side's level and the trace's
    trend are used.
    """
    m = max(3, (hi - lo) // 2)
    parts = []
    if sides[0]:
        parts.append(_quiet_run(z, lo, max(lo - m, 0), limit))
    if sides[1]:
        parts.append(_quiet_run(z, hi, min(hi + m, rt.size - 1), limit))
    parts = [p for p in parts if p.size]
    if not parts:  # nowhere quiet: the straight line between the end points
        parts = [np.array([lo, hi])]
    idx = np.concatenate(parts)
    x, v = rt[idx], y[idx]
    if len(parts) == 2 and np.ptp(x) > 0:
        xm = x.mean()
        b = float(np.dot(x - xm, v - v.mean()) / np.dot(x - xm, x - xm))
        return float(v.mean() - b * xm), b
    return float(v.mean() - slope * x.mean()), slope


def integrate_peak(
    trace: Chromatogram,
    rt_lo: float,
    rt_hi: float,
    params: Integration,
    transition: str,
    *,
    anchor_rt: float | None = None,
) -> Peak | None:
    """The peak whose apex lies in [rt_lo, rt_hi], or None if nothing rises above noise."""
    rt_all, y_all = trace.rt, trace.intensity
    n_all = rt_all.size
    if n_all < 3 or not rt_hi > rt_lo:
        return None
    margin = max(MIN_MARGIN_MIN, 2.0 * (rt_hi - rt_lo))
    i0 = int(np.searchsorted(rt_all, rt_lo - margin, side="left"))
    i1 = int(np.searchsorted(rt_all, rt_hi + margin, side="right"))
    if i1 - i0 < 3:
        return None
    rt, y = rt_all[i0:i1], y_all[i0:i1]
    noise = noise_sd(y_all)
    s = _smooth(y, params.smoothing_points)

    # remove the baseline trend so that "back to baseline" is a level, not a line
    slope = _trend(rt, s)
    detr = s - slope * (rt - rt[0])
    level = float(np.median(detr))
    level = float(np.median(detr[detr <= level + 3.0 * noise]))
    z = detr - level

    # an apex at the very first/last acquired point is still a (truncated) peak
    pad_lo, pad_hi = i0 == 0, i1 == n_all
    floor = float(s.min())
    s_pad = np.concatenate(([floor] * pad_lo, s, [floor] * pad_hi))
    # noise-free (simulated) traces: a floor far below anything real
    thr = max(DETECTION_SN * noise, 1e-9 * float(np.ptp(s)), 1e-300)
    cand, props = find_peaks(s_pad, prominence=thr)
    cand = cand - int(pad_lo)
    strong = cand[props["prominences"] >= max(SPLIT_SN * noise, thr)]
    if cand.size == 0:
        return None
    in_win = (rt[cand] >= rt_lo) & (rt[cand] <= rt_hi)
    chosen = cand[in_win & (z[cand] >= thr)]
    if chosen.size == 0:
        return None
    if anchor_rt is not None:
        apex = int(chosen[np.argmin(np.abs(rt[chosen] - anchor_rt))])
    else:
        apex = int(chosen[np.argmax(z[chosen])])

    # cluster: where the signal, averaged over half the peak's width, stays above the
    # baseline level; the wider average keeps noise on the flanks from ending it early
    half = np.flatnonzero(z < 0.5 * z[apex])
    hl = half[half < apex]
    hr = half[half > apex]
    width = (int(hr[0]) if hr.size else rt.size) - (int(hl[-1]) if hl.size else -1)
    zz = uniform_filter1d(z, max(1, width // 3) | 1, mode="nearest")
    back = BASELINE_FRACTION * z[apex]
    below = np.flatnonzero(zz[:apex] <= back)
    left_back = bool(below.size)
    c_lo = int(below[-1]) if left_back else 0
    below = np.flatnonzero(zz[apex:] <= back)
    right_back = bool(below.size)
    c_hi = apex + int(below[0]) if right_back else rt.size - 1

    # valleys to detected neighbours inside the cluster
    start, end = c_lo, c_hi
    left_nb = strong[(strong > c_lo) & (strong < apex)]
    if left_nb.size:
        q = int(left_nb[-1])
        start = q + int(np.argmin(s[q : apex + 1]))
    right_nb = strong[(strong > apex) & (strong < c_hi)]
    if right_nb.size:
        q = int(right_nb[0])
        end = apex + int(np.argmin(s[apex : q + 1]))

    b0, b1 = _baseline(rt, y, z, c_lo, c_hi, (left_back, right_back), thr, slope)
    seg_rt = rt[start : end + 1]
    seg = y[start : end + 1] - (b0 + b1 * seg_rt)
    area = float(np.trapezoid(seg, seg_rt)) if seg.size > 1 else 0.0
    k = apex - start
    height = float(seg[k])

    # apex RT: parabola through the smoothed apex and its neighbours
    apex_rt = float(rt[apex])
    if 0 < apex < rt.size - 1:
        ym, y0, yp = s[apex - 1], s[apex], s[apex + 1]
        den = ym - 2.0 * y0 + yp
        if den < 0.0:
            off = 0.5 * (ym - yp) / den
            if abs(off) < 1.0:
                h = rt[apex + 1] - rt[apex] if off > 0 else rt[apex] - rt[apex - 1]
                apex_rt += float(off * h)

    fwhm = _fwhm(seg_rt, seg, k, height)

    # S/N against the noise outside the peak
    g0, g1 = i0 + start, i0 + end
    outside = np.concatenate((y_all[:g0], y_all[g1 + 1 :])) if g1 - g0 < n_all - 10 else y_all
    out_noise = noise_sd(outside) if outside.size >= 10 else noise
    sn = height / out_noise if out_noise > 0.0 else None

    raw_peak = y[start : end + 1]
    top = float(raw_peak.max())
    saturated = bool(top >= params.saturation_intensity) or _flat_top(raw_peak, top)
    truncated = (start == c_lo and not left_back and i0 == 0) or (
        end == c_hi and not right_back and i1 == n_all
    )

    return Peak(
        transition=transition,
        apex_rt=apex_rt,
        start_rt=float(rt[start]),
        end_rt=float(rt[end]),
        area=area,
        height=height,
        baseline_start=float(b0 + b1 * rt[start]),
        baseline_end=float(b0 + b1 * rt[end]),
        fwhm=fwhm,
        sn=sn,
        points=end - start + 1,
        saturated=saturated,
        truncated=bool(truncated),
    )


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


def _flat_top(raw: FloatArray, top: float) -> bool:
    """At least FLAT_TOP_POINTS consecutive points exactly at the maximum."""
    if top <= 0.0:
        return False
    at_top = np.concatenate(([0], (raw == top).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(at_top))
    runs = edges[1::2] - edges[::2]
    return bool(runs.size and runs.max() >= FLAT_TOP_POINTS)


def integrate_injection(injection: Injection, assay: Assay) -> dict[str, Peak | None]:
    """Peaks by transition id: the IS first, then everything else anchored on its apex.

    The analyte and the IS qualifier co-elute with the IS quantifier, so they are
    searched in IS apex +/- ``analyte_window`` with the IS apex as anchor; without
    an IS peak they fall back to expected_rt +/- window. ``other`` transitions
    (ornithine, aspartate: informational neighbours) are searched in
    expected_rt +/- window without an anchor. Missing traces give None.
    """
    ret, params = assay.retention, assay.integration
    is_t = assay.is_quant  # None: external calibration, nothing anchors the analyte
    is_trace = injection.traces.get(is_t.id) if is_t is not None else None
    is_peak = (
        integrate_peak(
            is_trace, ret.expected_rt - ret.window, ret.expected_rt + ret.window, params, is_t.id
        )
        if is_trace is not None and is_t is not None
        else None
    )
    peaks: dict[str, Peak | None] = {is_t.id: is_peak} if is_t is not None else {}
    for t in assay.transitions:
        if is_t is not None and t.id == is_t.id:
            continue
        trace = injection.traces.get(t.id)
        if trace is None:
            peaks[t.id] = None
            continue
        if t.role is not Role.OTHER and is_peak is not None:
            lo, hi = is_peak.apex_rt - ret.analyte_window, is_peak.apex_rt + ret.analyte_window
            anchor: float | None = is_peak.apex_rt
        else:
            lo, hi = ret.expected_rt - ret.window, ret.expected_rt + ret.window
            anchor = None
        peaks[t.id] = integrate_peak(trace, lo, hi, params, t.id, anchor_rt=anchor)
    return peaks
