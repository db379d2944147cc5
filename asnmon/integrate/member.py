"""One member of a peak group between the shared boundaries: area, height, cuts.

``measure`` takes a trace and the group's boundaries, quiet stretches and
search regions (from ``asnmon.integrate.boundaries.find_bounds`` on the
group's profile) and returns the member's ``Peak``: raw points between the
boundaries minus a straight baseline through the member's *own* quiet
stretches, the ends interpolated; height, FWHM, S/N, saturation, and whether
the integration is cut above ``integration.truncation_pct`` of the apex.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from asnmon.assay import Integration
from asnmon.integrate.boundaries import (
    DETECTION_SN,
    FLAT_FRACTION,
    MIN_QUIET_POINTS,
    baseline_line,
    quiet_stretch,
)
from asnmon.integrate.noise import median, noise_sd, smooth
from asnmon.integrate.small import amax, amin, count, cumsum0, diff, interp, nonzero, trapezoid
from asnmon.records import Chromatogram, FloatArray, Peak

FLAT_TOP_POINTS = 3  # consecutive identical maxima that mean a clipped detector


def _flat_top(raw: FloatArray, top: float) -> bool:
    """At least FLAT_TOP_POINTS consecutive points exactly at the maximum."""
    if top <= 0.0:
        return False
    at_top = raw == top
    if count(at_top) < FLAT_TOP_POINTS:  # the usual case: one maximum
        return False
    run = at_top[: at_top.size - FLAT_TOP_POINTS + 1].copy()
    for j in range(1, FLAT_TOP_POINTS):  # a run starts at i if i .. i+FLAT_TOP_POINTS-1 are top
        run &= at_top[j : at_top.size - FLAT_TOP_POINTS + 1 + j]
    return bool(run.any())


def _between(rt: FloatArray, i0: int, i1: int, t_s: float, t_e: float) -> FloatArray:
    """``rt[i0 : i1 + 1]`` with ``t_s`` before it and ``t_e`` after it where they fall between
    points: ``np.concatenate(([t_s] * (rt[i0] > t_s), rt[i0 : i1 + 1], [t_e] * (rt[i1] < t_e)))``.
    """
    lo, hi = int(rt[i0] > t_s), int(rt[i1] < t_e)
    x = np.empty(i1 - i0 + 1 + lo + hi)
    if lo:
        x[0] = t_s
    if hi:
        x[-1] = t_e
    x[lo : x.size - hi] = rt[i0 : i1 + 1]
    return x


def _fwhm(x: FloatArray, v: FloatArray, k: int, height: float) -> float | None:
    """Width at half height, interpolated; None when a side never drops to half."""
    if height <= 0.0:
        return None
    half = 0.5 * height
    left = nonzero(v[:k] < half)
    right = nonzero(v[k:] < half)
    if not left.size or not right.size:
        return None
    a = int(left[-1])
    b = k + int(right[0])
    # in Python floats (the same IEEE arithmetic as numpy's scalars, without their overhead);
    # neither step is 0: each crosses half, one end below it, the other not
    xa, xa1, va, va1 = x.item(a), x.item(a + 1), v.item(a), v.item(a + 1)
    xb0, xb, vb0, vb = x.item(b - 1), x.item(b), v.item(b - 1), v.item(b)
    xl = xa + (half - va) * (xa1 - xa) / (va1 - va)
    xr = xb0 + (half - vb0) * (xb - xb0) / (vb - vb0)
    return xr - xl


def _apex_rt(rt: FloatArray, s: FloatArray, i: int) -> float:
    """A parabola through the smoothed apex and its neighbours."""
    out = rt.item(i)  # Python floats throughout: numpy's scalar arithmetic, faster
    if 0 < i < rt.size - 1:
        ym, y0, yp = s.item(i - 1), s.item(i), s.item(i + 1)
        den = ym - 2.0 * y0 + yp
        if den < 0.0:
            off = 0.5 * (ym - yp) / den
            if abs(off) < 1.0:
                h = rt.item(i + 1) - out if off > 0 else out - rt.item(i - 1)
                out += off * h
    return out


class Axis(NamedTuple):
    """What ``measure`` works out from a trace's times and the group's bounds alone.

    The same for every member acquired on the same time points, so the group works it
    out once for them (``measure``'s ``axes``).
    """

    t_s: float  # the bounds, clipped to the trace
    t_e: float
    i0: int  # the first and last point inside them
    i1: int
    dt: float  # median spacing of the points
    regions: tuple[np.ndarray | None, np.ndarray | None]  # points in each search region
    # (None where the group found no quiet stretch: no search there)
    x: FloatArray  # the integration's times: the points inside, the ends interpolated


def _axis(
    rt: FloatArray,
    bounds: tuple[float, float],
    quiet: tuple[tuple[float, float] | None, tuple[float, float] | None],
    regions: tuple[tuple[float, float], tuple[float, float]],
) -> Axis | None:
    """``Axis`` of a trace; None when fewer than two of its points lie inside the bounds."""
    t_s, t_e = max(bounds[0], float(rt[0])), min(bounds[1], float(rt[-1]))
    if not t_e > t_s:
        return None
    inside = nonzero((rt >= t_s) & (rt <= t_e))
    if inside.size < 2:
        return None
    i0, i1 = int(inside[0]), int(inside[-1])
    idx = tuple(
        None if q is None else nonzero((rt >= r[0]) & (rt <= r[1]))
        for q, r in zip(quiet, regions, strict=True)
    )
    return Axis(
        t_s, t_e, i0, i1, median(diff(rt)), (idx[0], idx[1]), _between(rt, i0, i1, t_s, t_e)
    )


def _own_quiet(
    rt: FloatArray,
    y: FloatArray,
    span: tuple[float, float] | None,
    idx: np.ndarray | None,
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
    if span is None or idx is None:  # the group has no quiet stretch on this side: none of
        return None  # its members has
    if idx.size >= width:  # idx: the points in the group's search region
        k = 0 if side > 0 else idx.size - 1
        q = quiet_stretch(y[idx], k, side, idx.size - 1, width, sd, rel, max_slope)
        return None if q is None else (int(idx[q[0]]), int(idx[q[1]]))
    idx = nonzero((rt >= span[0]) & (rt <= span[1]))
    if idx.size >= MIN_QUIET_POINTS // 2:
        return int(idx[0]), int(idx[-1])
    # a qualifier acquired over less: its own lowest run outside the boundaries
    idx = nonzero(rt < edge) if side < 0 else nonzero(rt > edge)
    if idx.size < MIN_QUIET_POINTS:
        return None
    seg = y[idx]
    w = MIN_QUIET_POINTS
    csum = cumsum0(seg)
    k = int(((csum[w:] - csum[:-w]) / w).argmin())
    return int(idx[k]), int(idx[k + w - 1])


def _lowest_run(y: FloatArray, width: int) -> float:
    """The lowest mean of ``width`` consecutive points (the whole trace if shorter)."""
    if y.size <= width:
        return float(np.mean(y))
    csum = cumsum0(y)
    return amin((csum[width:] - csum[:-width]) / width)


def _above_noise(y: FloatArray, s_k: float, base_k: float, thr: float) -> bool:
    """``not s_k - max(base_k, median(y)) < thr``, the median worked out only when needed.

    A level below the baseline under the apex does not count; and when more than half the
    points lie at or below ``s_k - thr`` (where the apex still stands ``thr`` clear), so
    does the median, and the apex stands clear of it too.
    """
    if s_k - base_k < thr:  # clear of neither: the larger of the two is no nearer
        return False
    t = s_k - thr
    if s_k - t >= thr and t < 1e307 and count(y <= t) > y.size // 2:  # (no overflow in the
        return True  # median's mean of two)
    return not s_k - max(base_k, median(y)) < thr


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
    axes: dict[tuple, Axis | None] | None = None,
    smoothed: FloatArray | None = None,
) -> tuple[Peak | None, FloatArray, tuple[float, float]]:
    """One member between the shared boundaries; also its smoothed trace and baseline.

    ``axes``: the ``Axis`` already worked out for other members, by their times and the
    bounds (the group's members share it). ``smoothed``: ``smooth(trace.intensity,
    window)``, when the caller has it.
    """
    rt, y = trace.rt, trace.intensity
    s_all = smooth(y, window) if smoothed is None else smoothed
    none = (None, s_all, (0.0, 0.0))
    if rt.size < 3:
        return none
    if axes is None:
        ax = _axis(rt, bounds, quiet, regions)
    else:
        key = (rt.tobytes(), bounds, quiet, regions)
        if key in axes:
            ax = axes[key]
        else:
            ax = axes[key] = _axis(rt, bounds, quiet, regions)
    if ax is None:
        return none
    t_s, t_e, i0, i1, dt, region_idx, x = ax
    sd0 = noise_sd(y) if sd0 is None else sd0
    lowest = _lowest_run(y, quiet_width)
    k = i0 + int(s_all[i0 : i1 + 1].argmax())  # the smoothed apex (the first of equal maxima)
    rise = float(s_all[k]) - lowest  # its value is the maximum (NaN if any is)
    max_slope = (
        FLAT_FRACTION * rise * dt / group_fwhm if group_fwhm > 0 and dt > 0 else float("inf")
    )
    line = baseline_line(
        rt,
        y,
        (
            _own_quiet(rt, y, quiet[0], region_idx[0], -1, t_s, quiet_width, sd0, rel, max_slope),
            _own_quiet(rt, y, quiet[1], region_idx[1], 1, t_e, quiet_width, sd0, rel, max_slope),
        ),
    )
    if line is None:  # nowhere quiet: the trace's lowest run (a level, not one noisy minimum)
        b0, b1 = lowest, 0.0
    else:
        b0, b1 = line
    v = interp(x, rt, y) - (b0 + b1 * x)
    area = max(0.0, trapezoid(v, x))
    rt_k, s_k = rt.item(k), s_all.item(k)
    base_k = b0 + b1 * rt_k  # the baseline under the apex
    top = s_k - base_k
    # nothing above noise: judged against the trace's median too, so that a baseline
    # fallen back to the lowest level cannot turn noise into a peak
    if require_signal and not _above_noise(y, s_k, base_k, DETECTION_SN * sd0):
        return none
    height = max(0.0, y.item(k) - base_k)
    kk = int(x.searchsorted(rt_k))
    peak_fwhm = _fwhm(x, v, kk, height)
    outside = np.concatenate((y[:i0], y[i1 + 1 :]))
    out_noise = noise_sd(outside) if outside.size >= 10 else sd0
    sn = height / out_noise if out_noise > 0.0 else None
    raw = y[i0 : i1 + 1]
    top_raw = amax(raw)
    saturated = bool(top_raw >= params.saturation_intensity) or _flat_top(raw, top_raw)

    # a cut: the integration ends (group edge, or this trace's own acquisition) above baseline
    own = (float(rt[0]) >= bounds[0] - 0.5 * dt, float(rt[-1]) <= bounds[1] + 0.5 * dt)
    sides: list[tuple[str, float, float, bool]] = []
    for j, (name, at, i) in enumerate((("left", t_s, i0), ("right", t_e, i1))):
        if not (cut[j] or own[j]):
            continue
        level = float(interp(at, rt, s_all) - (b0 + b1 * at))
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
