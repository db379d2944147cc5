"""The wrapper-free numpy helpers give numpy's own bits (seeded arrays of trace sizes)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import convolve1d
from scipy.signal import find_peaks

from asnmon.integrate import boundaries, group, member, noise, small
from asnmon.records import Peak

_RNG = np.random.default_rng(11)
ARRAYS = [
    _RNG.normal(size=n) * scale + offset
    for n in (1, 2, 3, 7, 20, 61, 257)
    for scale, offset in ((1.0, 0.0), (1e4, 3e5), (1e-3, -1.0))
] + [np.array([0.0, 5.0, 5.0, 5.0, 1.0]), np.zeros(9), np.array([np.nan, 1.0, 2.0])]


def same(a: object, b: object) -> bool:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return x.shape == y.shape and x.tobytes() == y.tobytes()


@pytest.mark.parametrize("a", ARRAYS, ids=lambda a: f"n{a.size}")
def test_each_helper_is_bit_identical_to_numpy(a: np.ndarray) -> None:
    assert same(small.amax(a), a.max())
    assert same(small.amin(a), a.min())
    assert same(small.mean(a), a.mean())
    assert same(small.std(a), np.std(a))
    assert same(small.diff(a), np.diff(a))
    assert same(small.cumsum0(a), np.concatenate(([0.0], a.cumsum())))
    mask = a > np.median(a)
    assert same(small.nonzero(mask), np.flatnonzero(mask))
    assert small.count(mask) == int(np.count_nonzero(mask))
    assert same(small.total(a), a.sum())
    # the integration's dot products (of fresh, contiguous arrays): matmul's bits
    b = a[::-1].copy()
    assert same(a.dot(b), a @ b) and same(a[::2].dot(b[::2]), a[::2] @ b[::2])
    x = np.cumsum(np.abs(_RNG.normal(size=a.size))) + 2.5
    assert same(small.trapezoid(a, x), np.trapezoid(a, x))
    at = np.linspace(x[0] - 1.0, x[-1] + 1.0, 2 * a.size + 3)
    assert same(small.interp(at, x, a), np.interp(at, x, a))
    assert same(small.interp(float(at[1]), x, a), np.interp(float(at[1]), x, a))
    for w in (5, 7, 21):  # the filter past scipy's argument checks: the same as through them
        if a.size >= w:
            assert same(noise.smooth(a, w), convolve1d(a, noise._sg_kernel(w), mode="nearest"))
    if a.size > 1 and np.isfinite(a).all():  # trace checks: np.median of finite steps
        assert same(noise.median(a), np.median(a))
        assert same(noise.median(a[1:]), np.median(a[1:]))
        d = np.diff(a)
        mad = np.median(np.abs(d - np.median(d)))
        if a.size >= 3 and mad > 0:  # the MAD's median partitions its own copy in place
            assert same(noise.noise_sd(a), 1.4826 * mad / np.sqrt(2.0))


@pytest.mark.parametrize("a", ARRAYS[:-1], ids=lambda a: f"n{a.size}")
def test_peak_candidates_are_find_peaks(a: np.ndarray) -> None:
    """boundaries calls find_peaks' compiled steps directly: the same peaks and prominences."""
    s = np.abs(a) + np.sin(np.arange(a.size))  # a few maxima on every size
    for pad_lo, pad_hi in ((False, False), (True, True)):
        floor = [s.min()]
        padded = np.concatenate((floor * pad_lo, s, floor * pad_hi))
        for thr in (1e-9, 0.5):
            cand, prom = boundaries._candidates(s, thr, pad_lo, pad_hi)
            ref, props = find_peaks(padded, prominence=thr)
            assert same(cand, ref - int(pad_lo)) and same(prom, props["prominences"])


def test_peak_update_is_dataclass_replace() -> None:
    p = Peak("t", 1.0, 0.9, 1.1, 10.0, 5.0, 0.5, 0.25, 0.1, 20.0, 12, cut_side="left")
    changes = {"apex_offset": 0.01, "shape_r": 0.99, "reference": "is", "area": 7.0}
    assert group._updated(p, changes) == replace(p, **changes)


@pytest.mark.parametrize("a", ARRAYS[2:], ids=lambda a: f"n{a.size}")
def test_signal_check_is_the_median_one(a: np.ndarray) -> None:
    """measure's 'above noise' test, its median skipped when a count decides: the same."""
    med = noise.median(a)
    for s_k in (a.max(), med, med + 1e-3, a.min(), 1e308, np.nan):
        for base_k in (a.min(), med, a.max(), np.nan):
            for thr in (0.0, 1e-3, 0.5 * np.ptp(a), 3.0, np.nan):
                expected = not s_k - max(base_k, med) < thr
                assert member._above_noise(a, float(s_k), float(base_k), float(thr)) == expected


@pytest.mark.parametrize("a", ARRAYS[4:-1], ids=lambda a: f"n{a.size}")
def test_bounds_from_known_noise_and_smoothing_are_the_same(a: np.ndarray) -> None:
    """find_bounds handed the profile's noise, 5-point smoothing and level: the same bounds."""
    rt = np.linspace(1.0, 3.0, a.size)
    c = np.abs(a) + 50.0 * np.exp(-0.5 * ((rt - 2.0) / 0.1) ** 2)
    s5 = noise.smooth(c, 5)
    known = (noise.noise_sd(c), s5, noise.low_quantile(s5))
    for points in (0, 5, 9):
        kw = {"smoothing_points": points, "valley_depth": 0.5, "edges": (True, False)}
        fresh = boundaries.find_bounds(rt, c, 1.5, 2.5, **kw)
        given = boundaries.find_bounds(rt, c, 1.5, 2.5, known=known, **kw)
        assert repr(fresh) == repr(given)
