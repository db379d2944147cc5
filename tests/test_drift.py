"""The CUSUM drift detector on seeded series: invariants, not timings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asnmon.drift import DriftSettings, cusum_episodes, theil_sen


def series(rate_pct: float, seed: int, n: int = 120, start: int = 40, cv: float = 0.04):
    rng = np.random.default_rng(seed)
    order = np.arange(1, n + 1, dtype=float)
    k = np.maximum(order - start, 0)
    log_is = math.log(1.5e5) + k * math.log1p(-rate_pct / 100) + rng.normal(0, cv, n)
    return order, log_is


@pytest.mark.parametrize("seed", range(5))
def test_prefix_consistency(seed: int) -> None:
    """Recomputing on a prefix never moves an alarm: the basis of 'raise once'."""
    order, log_is = series(2.5, seed)
    full = cusum_episodes(order, log_is)
    for cut in (45, 50, 60, 90):
        part = cusum_episodes(order[:cut], log_is[:cut])
        assert [e.alarm for e in part] == [e.alarm for e in full if e.alarm < cut]


@pytest.mark.parametrize(("rate", "within"), [(2.5, 10), (5.0, 6)])
def test_detects_decline_early_with_start_and_rate(rate: float, within: int) -> None:
    for seed in range(10):
        order, log_is = series(rate, seed)
        down = [e for e in cusum_episodes(order, log_is) if e.direction == "down" and e.alarm >= 39]
        assert down, seed
        e = down[0]
        assert e.alarm - 39 <= within
        assert 30 <= e.start <= e.alarm
        assert -2 * rate < e.rate_pct < 0


def test_warm_up_makes_no_decision() -> None:
    order, log_is = series(0.0, 1, n=8)
    assert cusum_episodes(order, log_is, DriftSettings(baseline_n=8)) == []


def test_excluded_points_are_skipped() -> None:
    order, log_is = series(0.0, 2, n=40)
    log_is[20] -= 1.2  # a short injection (x 0.3)
    excl = [i == 20 for i in range(40)]
    assert cusum_episodes(order, log_is, excluded=excl) == []


def test_theil_sen_ignores_one_outlier() -> None:
    x = list(range(10))
    y = [0.5 * v for v in x]
    y[4] = 100.0
    assert theil_sen(x, y) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(3))
def test_confirmation_needs_the_is_still_moving(seed: int) -> None:
    """A small offset that stays put (the sum crosses h, the slope is flat) is not a drift
    when a minimum rate is asked; a real decline still is, and prefixes still agree."""
    rng = np.random.default_rng(seed)
    n = 80
    order = np.arange(1, n + 1, dtype=float)
    offset = np.where(order > 30, math.log(0.96), 0.0)  # 4 % lower from injection 31, flat
    log_is = math.log(1.5e5) + offset + rng.normal(0, 0.005, n)
    plain = cusum_episodes(order, log_is, DriftSettings())
    strict = DriftSettings(min_rate_pct=0.75)
    assert [e.direction for e in plain] == ["down"]
    assert abs(plain[0].rate_pct) < 0.75
    assert cusum_episodes(order, log_is, strict) == []
    order2, drifting = series(2.5, seed=seed)
    full = cusum_episodes(order2, drifting, strict)
    down = [e for e in full if e.direction == "down"]
    assert down
    assert down[0].rate_pct <= -0.75
    for cut in (50, 60, 90):
        part = cusum_episodes(order2[:cut], drifting[:cut], strict)
        assert [e.alarm for e in part] == [e.alarm for e in full if e.alarm < cut]
