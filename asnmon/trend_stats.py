"""Robust trend statistics for short series: Theil-Sen with Sen's interval, a broken line.

Written here rather than called from scipy for two reasons: scipy's ``theilslopes``
layer costs more than its arithmetic on the 5-60 points a drift forecast or an RT
trend rests on, at every injection (the same arithmetic; scipy still handles ties
and odd inputs, and a test holds the two equal to the last bit), and no library
fits a flat-then-sloped line with a profile-likelihood interval over its onset.
Quantiles are kept per degree of freedom for the same reason.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def theil_sen(x: Sequence[float], y: Sequence[float]) -> float:
    """Median of pairwise slopes: one outlier in ten points does not move it."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    i, j = np.triu_indices(xs.size, k=1)
    dx = xs[j] - xs[i]
    ok = dx != 0
    if not ok.any():
        return 0.0
    return float(np.median((ys[j] - ys[i])[ok] / dx[ok]))


@functools.lru_cache(maxsize=256)
def t_quantile(q: float, dof: int) -> float:
    """Student's t quantile, kept per (q, dof): scipy's call costs ~0.2 ms for a fixed value."""
    return float(stats.t.ppf(q, dof))


@functools.lru_cache(maxsize=32)
def chi2_quantile(q: float, dof: int) -> float:
    """Chi-square quantile, kept like ``t_quantile``."""
    return float(stats.chi2.ppf(q, dof))


@functools.lru_cache(maxsize=32)
def _norm_quantile(q: float) -> float:
    return float(stats.norm.ppf(q))


def theil_sen_interval(
    x: np.ndarray, y: np.ndarray, confidence: float
) -> tuple[float, float, float]:
    """(slope, low, high) exactly as ``scipy.stats.theilslopes(y, x, confidence)`` gives them.

    The same arithmetic as scipy's (method "separate", Sen's 1968 interval) without its
    per-call argument handling, which costs ~1 ms on a 15-point window judged several
    times per injection. Series scipy treats specially (fewer than 2 points, a non-finite
    value, no spread in x) go to scipy itself. ``tests/test_drift.py`` holds the two equal.
    """
    xs = np.array(x, dtype=float).ravel()
    ys = np.array(y, dtype=float).ravel()
    if (
        xs.size < 2
        or xs.size != ys.size
        or not (np.isfinite(xs).all() and np.isfinite(ys).all())
        or xs.max() == xs.min()
    ):
        fit = stats.theilslopes(ys, xs, alpha=confidence)
        return float(fit.slope), float(fit.low_slope), float(fit.high_slope)
    deltax = xs[:, np.newaxis] - xs
    deltay = ys[:, np.newaxis] - ys
    pos = deltax > 0
    slopes = deltay[pos] / deltax[pos]
    slopes.sort()
    nt = int(slopes.size)
    half = nt // 2  # np.median of the sorted slopes: the middle one, or the mean of two
    medslope = float(slopes[half] if nt % 2 else (slopes[half - 1] + slopes[half]) / 2.0)
    alpha = 1.0 - confidence if confidence > 0.5 else confidence
    z = _norm_quantile(alpha / 2.0)
    ny = int(ys.size)
    ties = _ties(xs) + _ties(ys)
    sigsq = 1 / 18.0 * (ny * (ny - 1) * (2 * ny + 5) - ties)
    if sigsq < 0:
        return medslope, math.nan, math.nan
    sigma = math.sqrt(sigsq)
    upper = min(int(np.round((nt - z * sigma) / 2.0)), nt - 1)
    lower = max(int(np.round((nt + z * sigma) / 2.0)) - 1, 0)
    if not (-nt <= lower < nt and -nt <= upper < nt):
        return medslope, math.nan, math.nan
    return medslope, float(slopes[lower]), float(slopes[upper])


def _ties(values: np.ndarray) -> int:
    """Sen's tie term, sum of k(k-1)(2k+5) over the values repeated k > 1 times.

    Most windows repeat nothing: a set says so in ~1 us where ``np.unique`` takes ~15
    (finite values: a set and ``np.unique`` count 0.0 and -0.0 as one alike).
    """
    listed = values.tolist()
    if len(set(listed)) == len(listed):
        return 0
    return sum(int(k) * (int(k) - 1) * (2 * int(k) + 5) for k in _repeats(values))


def _repeats(values: np.ndarray) -> np.ndarray:
    """How often each value that occurs more than once occurs (scipy's ``_find_repeats``)."""
    _, counts = np.unique(values, return_counts=True)
    return counts[counts > 1]


@dataclass(frozen=True, slots=True)
class BrokenLine:
    """Flat at ``level`` until ``onset``, then ``slope`` per injection (``fit_broken_line``)."""

    onset: float
    level: float
    slope: float
    slope_low: float  # confidence interval over every onset the data do not rule out
    slope_high: float
    n: int
    plausible: tuple[tuple[float, float, float], ...]  # (onset, level, slope) not ruled out
    bent: bool  # a straight line through all the points is ruled out (the trend began in view)

    def at(self, x: float) -> float:
        return self.level + self.slope * max(x - self.onset, 0.0)


def fit_broken_line(
    xs: Sequence[float], ys: Sequence[float], confidence: float = 0.95, min_flat: int = 3
) -> BrokenLine | None:
    """Least-squares broken line with a free level and onset (a trend that began in view).

    Onsets are tried at and between the points, from the first to the third-last;
    one with fewer than ``min_flat`` points before it is a straight line through
    all of them (the trend began before the first). The interval of the slope
    spans every onset whose fit is not worse than the best by more than the
    chi-square quantile (profile likelihood), as for the IS forecast. None with
    fewer than 5 points.
    """
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.size < 5 or np.ptp(x) == 0:
        return None
    fits: list[tuple[float, float, float, float, float]] = []  # onset, level, slope, ss, sxx
    for t0 in np.unique(np.concatenate([x[:-2], x[:-2] + 0.5])):
        flat = int(np.sum(x <= t0))
        if flat < min_flat:
            if t0 != x[0]:
                continue
            u = x - x[0]  # a straight line: "onset" at the first point, level free
        else:
            u = np.maximum(x - t0, 0.0)
        du = u - u.mean()
        sxx = float(du @ du)
        if sxx == 0:
            continue
        b = float(du @ (y - y.mean())) / sxx
        a = float(y.mean() - b * u.mean())
        ss = float(np.sum((y - a - b * u) ** 2))
        fits.append((float(x[0]) if flat < min_flat else float(t0), a, b, ss, sxx))
    if not fits:
        return None
    best = min(fits, key=lambda f: f[3])
    dof = max(x.size - 3, 1)
    s2 = max(best[3] / dof, 1e-12)
    chi = chi2_quantile(confidence, 1)
    tq = t_quantile(0.5 + confidence / 2, dof)
    plausible = [f for f in fits if (f[3] - best[3]) / s2 <= chi]
    low = min(f[2] - tq * math.sqrt(s2 / f[4]) for f in plausible)
    high = max(f[2] + tq * math.sqrt(s2 / f[4]) for f in plausible)
    straight = next((f for f in fits if f[0] == float(x[0])), None)
    return BrokenLine(
        best[0],
        best[1],
        best[2],
        low,
        high,
        int(x.size),
        tuple((f[0], f[1], f[2]) for f in plausible),
        straight is None or (straight[3] - best[3]) / s2 > chi,
    )
