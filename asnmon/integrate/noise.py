"""How noisy a trace is, at its baseline and at the top of its peak; smoothing.

Real MRM traces are not white noise on a baseline: the scatter grows with the
signal (counting statistics and spray flicker), so a peak top of 45,000 counts
jumps by +/- 10,000 where the baseline jumps by +/- 200. One number for "the
noise" either calls top dips valleys (baseline noise) or misses small peaks
(top noise), so the model has two terms: ``sd(level) = sqrt(sd0^2 + (rel*level)^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import _nd_image, _ni_support  # what correlate1d calls, past its checks
from scipy.signal import savgol_coeffs

from asnmon.integrate.small import amax, count, diff
from asnmon.records import FloatArray

_MAD_TO_SD = 1.4826
_SQRT2 = math.sqrt(2.0)
_MEDIAN_CHI2_1 = 0.4549  # median of a chi-square with one degree of freedom
MIN_WINDOW = 5  # points: below this a quadratic Savitzky-Golay filter does nothing useful
MAX_WINDOW = 51
_NEAREST = _ni_support._extend_mode_to_code("nearest")


def median(values: FloatArray) -> float:
    """np.median without its overhead (it dominates on 20-100-point traces)."""
    n = values.size
    if n == 0:
        return float("nan")
    # np.partition is copy + partition, without its wrapper; _median_of's lines, inline
    # (some 40 calls per injection)
    part = values.copy()
    k = n // 2
    part.partition((k - 1, k) if n % 2 == 0 and n > 1 else k)
    return float(part[k]) if n % 2 else 0.5 * float(part[k - 1] + part[k])


def _median_of(part: FloatArray) -> float:
    """``median`` of a non-empty array the caller no longer needs: it is partitioned in place."""
    n = part.size
    k = n // 2
    part.partition((k - 1, k) if n % 2 == 0 and n > 1 else k)
    return float(part[k]) if n % 2 else 0.5 * float(part[k - 1] + part[k])


def low_quantile(values: FloatArray, q: float = 0.1) -> float:
    """The ``q`` quantile, nearest rank below (a baseline level, not a statistic)."""
    if values.size == 0:
        return float("nan")
    k = int(q * (values.size - 1))
    part = values.copy()
    part.partition(k)
    return float(part[k])


def noise_sd(values: FloatArray) -> float:
    """Robust SD of white noise on ``values``, from the MAD of its first difference.

    A slope or a drifting baseline does not inflate it, and a peak covering a
    small part of the trace hardly moves a median. When the MAD is 0 (integer
    counts on an all-zero baseline) the mean absolute difference stands in.
    """
    if values.size < 3:
        return 0.0
    d = diff(values)
    dev = d - median(d)
    mad = _median_of(np.abs(dev, out=dev))  # = median(np.abs(d - median(d))), one copy less
    if mad > 0.0:
        return _MAD_TO_SD * mad / _SQRT2
    return float(np.mean(np.abs(d))) * math.sqrt(math.pi / 2.0) / _SQRT2


@dataclass(frozen=True, slots=True)
class NoiseModel:
    """Noise SD as a function of the signal level: baseline term and proportional term."""

    sd0: float  # counts, at the baseline
    rel: float  # fraction of the signal level, at the top

    def sd(self, level: float) -> float:
        lv = max(level, 0.0)
        return math.sqrt(self.sd0 * self.sd0 + (self.rel * lv) ** 2)


@lru_cache(maxsize=64)
def _sg_kernel(points: int) -> FloatArray:
    k = savgol_coeffs(points, 2, use="conv")
    k.setflags(write=False)  # shared by every caller
    return k


@lru_cache(maxsize=64)
def _sg_weights(points: int) -> FloatArray:
    """The kernel reversed, contiguous: what ``convolve1d`` hands ``correlate1d``."""
    w = np.ascontiguousarray(_sg_kernel(points)[::-1])
    w.setflags(write=False)
    return w


def odd_window(points: int) -> int:
    """An odd Savitzky-Golay window within [MIN_WINDOW, MAX_WINDOW] (0/1: none)."""
    if points < MIN_WINDOW:
        return 1
    points = min(points, MAX_WINDOW)
    return points if points % 2 else points + 1


def smooth(y: FloatArray, points: int) -> FloatArray:
    """Quadratic Savitzky-Golay; a window under 5 points (or longer than y) returns y."""
    w = odd_window(points)
    if w < MIN_WINDOW or y.size < w:
        return y
    # = convolve1d(y, _sg_kernel(w), mode="nearest"): scipy's correlate1d on the reversed
    # kernel, called past its argument checks (a 1-D float64 trace, contiguous float64
    # weights, origin 0 pass them all); they cost more than the filter on 20 points
    out = np.empty(y.shape, y.dtype)
    _nd_image.correlate1d(y, _sg_weights(w), 0, out, _NEAREST, 0.0, 0)
    return out


@lru_cache(maxsize=64)
def smoothing_gain(points: int) -> float:
    """How much the filter shrinks white noise (SD after / SD before)."""
    w = odd_window(points)
    if w < MIN_WINDOW:
        return 1.0
    return float(np.sqrt(np.sum(_sg_kernel(w) ** 2)))


@lru_cache(maxsize=64)
def _residual_variance(w: int) -> float:
    """Variance of (y - s) for white noise of unit SD under the filter of odd window ``w``."""
    k = _sg_kernel(w) if w >= MIN_WINDOW else np.array([1.0])
    mid = k.size // 2
    return 1.0 - 2.0 * float(k[mid]) + float(np.sum(k * k)) if k.size > 1 else 1.0


def auto_window(fwhm_points: float) -> int:
    """Smoothing sized to the peak: about 60 % of the points above half height, at least 5.

    A quadratic filter that wide keeps a Gaussian's height within ~2 % while
    it averages away most point-to-point spikes; a fixed window is too wide
    for a peak 12 points across and leaves one 60 points across spiky.
    """
    return odd_window(max(MIN_WINDOW, round(0.6 * fwhm_points)))


def estimate_noise(
    y: FloatArray,
    s: FloatArray,
    window: int,
    sd0: float | None = None,
    level: float | None = None,
) -> NoiseModel:
    """Baseline SD from the whole trace; the proportional term from the peak top.

    The residual of the raw signal about its smoothed version, on points above
    a quarter of the smoothed maximum, gives the scatter at the top once the
    baseline term is taken out (a median of squared residuals, so one wild
    spike does not set it). ``window`` is the smoothing window that made ``s``;
    ``sd0``: ``noise_sd(y)``, ``level``: ``low_quantile(s)``, when the caller has them.
    """
    sd0 = noise_sd(y) if sd0 is None else sd0
    if y.size < 8:
        return NoiseModel(sd0, 0.0)
    lo = low_quantile(s) if level is None else level
    top = s - lo
    top_max = amax(top)
    high = top > 0.25 * top_max if top_max > 0 else np.zeros(s.size, bool)
    if count(high) < 5:
        return NoiseModel(sd0, 0.0)
    shrink = _residual_variance(odd_window(window))
    if shrink <= 1e-6:
        return NoiseModel(sd0, 0.0)
    r2 = (y[high] - s[high]) ** 2 / shrink
    excess = median((r2 - sd0 * sd0) / np.maximum(top[high], 1e-300) ** 2) / _MEDIAN_CHI2_1
    return NoiseModel(sd0, float(math.sqrt(excess)) if excess > 0 else 0.0)
