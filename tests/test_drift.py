"""The CUSUM drift detector on seeded series: invariants, not timings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from asnmon.drift import DriftSettings, cusum_episodes
from asnmon.trend_stats import theil_sen


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


# ---------------------------------------------------------------- the live forecast


def true_crossing(rate_pct: float, start: int, target: float = 0.5) -> int:
    """First injection whose noise-free IS is below ``target`` of the level."""
    return start + math.floor(math.log(target) / math.log1p(-rate_pct / 100)) + 1


def test_forecast_from_the_onset_finds_rate_and_crossing() -> None:
    """Fifteen injections into a 2.5 %/injection drift the broken-line fit has the rate
    inside its 90 % interval in most runs and the 50 % crossing within 3 injections of the
    truth; the old 10-point slope at the alarm underestimated it (issue 12: -0.9 for -2.5)."""
    from asnmon.forecast import forecast_crossing

    errors, covered = [], 0
    for seed in range(20):
        order, log_is = series(2.5, seed, n=56, start=40)
        level = float(np.mean(log_is[:39]))
        fc = forecast_crossing(
            order[25:], log_is[25:], level, 50.0, 0.9, level=level, onset=(26.0, 50.0), min_sd=0.03
        )
        assert fc is not None and fc.crossing is not None and fc.crossing_early is not None
        covered += fc.rate_low_pct <= -2.5 <= fc.rate_high_pct
        errors.append(math.ceil(fc.crossing) - true_crossing(2.5, 40))
        assert fc.crossing_early <= fc.crossing <= (fc.crossing_late or math.inf)
        assert 33 <= fc.first <= 47  # the onset it found
    assert covered >= 16
    assert max(abs(e) for e in errors) <= 3
    assert float(np.median(np.abs(errors))) <= 1.5


def test_forecast_narrows_as_the_drift_goes_on() -> None:
    from asnmon.forecast import forecast_crossing

    order, log_is = series(2.5, 4, n=70, start=40)
    level = float(np.mean(log_is[:39]))
    widths = []
    for now in (48, 53, 58, 63):
        fc = forecast_crossing(
            order[30:now], log_is[30:now], level, 50.0, level=level, onset=(31.0, 47.0)
        )
        assert fc is not None
        widths.append(fc.rate_high_pct - fc.rate_low_pct)
    assert widths == sorted(widths, reverse=True)
    assert widths[-1] < widths[0] / 2


def test_forecast_ignores_one_short_injection() -> None:
    from asnmon.forecast import forecast_crossing

    order, log_is = series(2.5, 1, n=60, start=40, cv=0.01)
    level = float(np.mean(log_is[:39]))
    clean = forecast_crossing(order[30:], log_is[30:], level, 50.0, level=level)
    log_is[50] += math.log(0.3)
    short = forecast_crossing(order[30:], log_is[30:], level, 50.0, level=level)
    assert clean is not None and short is not None
    assert short.rate_pct == pytest.approx(clean.rate_pct, abs=0.1)


def test_forecast_not_heading_for_the_limit() -> None:
    from asnmon.forecast import forecast_crossing

    order, log_is = series(-2.0, 2, n=60, start=40)  # rising
    level = float(np.mean(log_is[:39]))
    fc = forecast_crossing(order[30:], log_is[30:], level, 50.0, level=level)
    assert fc is not None and fc.rate_pct > 0
    assert fc.crossing is None


def test_injection_pace_is_the_median_of_the_latest_intervals() -> None:
    from datetime import UTC, datetime, timedelta

    from asnmon.forecast import injection_pace

    t0 = datetime(2024, 5, 6, 8, 0, tzinfo=UTC)
    times: list[datetime | None] = [t0 + timedelta(minutes=8 * k) for k in range(12)]
    times[5] = None  # a file without a startTimeStamp
    times.append(times[-1] + timedelta(minutes=45))  # one long pause (a re-injection)
    pace = injection_pace(times)
    assert pace is not None
    assert pace.interval == timedelta(minutes=8)
    assert pace.at(2) == times[-1] + timedelta(minutes=16)
    assert injection_pace([t0, None]) is None


@pytest.mark.parametrize("seed", range(3))
def test_incremental_detector_matches_the_batch_one(seed: int) -> None:
    from asnmon.drift import Cusum

    order, log_is = series(2.5, seed)
    det = Cusum()
    for o, x in zip(order, log_is, strict=True):
        det.push(o, float(x))
    assert det.episodes == cusum_episodes(order, log_is)
    assert det.episodes and det.episodes[0].level == pytest.approx(math.log(1.5e5), abs=0.03)


def test_broken_line_recovers_onset_level_and_slope_and_knows_a_straight_line() -> None:
    from asnmon.trend_stats import fit_broken_line

    x = np.arange(1.0, 41.0)
    y = 3.2 + 0.01 * np.maximum(x - 25, 0)
    rng = np.random.default_rng(0)
    exact = fit_broken_line(x, y)
    assert exact is not None and exact.bent
    assert (exact.onset, exact.level, exact.slope) == pytest.approx((25, 3.2, 0.01), abs=1e-9)
    noisy = fit_broken_line(x, y + rng.normal(0, 0.005, x.size))
    assert noisy is not None and noisy.bent and noisy.slope_low <= 0.01 <= noisy.slope_high
    line = fit_broken_line(x, 3.0 + 0.004 * x + rng.normal(0, 0.005, x.size))
    assert line is not None and not line.bent  # no bend the data stand behind
    assert line.slope_low <= 0.004 <= line.slope_high


@pytest.mark.parametrize("seed", range(4))
def test_theil_sen_interval_is_scipys_to_the_last_bit(seed: int) -> None:
    """The fast Theil-Sen gives scipy's slope and interval exactly, ties in x and y too."""
    from scipy import stats

    from asnmon.trend_stats import theil_sen_interval

    rng = np.random.default_rng(seed)
    for k in range(40):
        n = int(rng.integers(2, 30))
        x = np.sort(rng.choice(100, n, replace=False)).astype(float)
        x = np.round(x / 4) if k % 3 == 0 else x  # repeated injection orders
        y = 0.003 * x + rng.normal(0, 0.01, n)
        y = np.round(y, 2) if k % 4 == 0 else y  # repeated values
        if np.ptp(x) == 0:
            continue
        conf = (0.95, 0.9, 0.8)[k % 3]
        fit = stats.theilslopes(y, x, alpha=conf)
        assert theil_sen_interval(x, y, conf) == (fit.slope, fit.low_slope, fit.high_slope)


def test_a_kept_forecast_is_the_forecast_of_the_same_numbers() -> None:
    """Forecasts are kept by their inputs' exact values: one changed point is a new fit."""
    from asnmon.forecast import DriftForecast, _forecast_crossing, forecast_crossing

    order, log_is = series(2.5, 3, n=60, start=40)
    level = float(np.mean(log_is[:39]))

    def fit(kept: bool = True) -> DriftForecast | None:
        f = forecast_crossing if kept else _forecast_crossing
        return f(order[30:], log_is[30:], level, 50.0, 0.9, level=level, onset=(31.0, 50.0))

    first = fit()
    log_is[55] -= 0.2
    moved = fit()
    assert moved == fit(kept=False) != first
    log_is[55] += 0.2
    assert fit() is first


@pytest.mark.parametrize("seed", range(3))
def test_pace_from_the_latest_times_is_the_pace_from_all(seed: int) -> None:
    """Unknown times, repeated stamps and a clock set back leave the same pace."""
    from datetime import datetime, timedelta

    from asnmon.forecast import injection_pace, pace_times

    rng = np.random.default_rng(seed)
    t = datetime(2026, 3, 1, 8, 0)
    times: list[datetime | None] = []
    for _ in range(80):
        t += timedelta(seconds=float(rng.choice([0.0, -120.0, 400.0, 415.5, 430.0])))
        times.append(None if rng.random() < 0.15 else t)
    for n in (1, 3, 10):
        for end in (0, 1, 2, 5, 30, 80):
            head = times[:end]
            assert injection_pace(head, n) == injection_pace(pace_times(reversed(head), n), n)


@pytest.mark.parametrize("seed", range(3))
def test_a_restored_detector_goes_on_as_if_the_points_since_had_not_been(seed: int) -> None:
    """``Cusum.restore`` undoes what-if points (alarms and episode ends among them)."""
    from asnmon.drift import Cusum

    order, log_is = series(2.5, seed)
    det, plain = Cusum(), Cusum()
    for o, x in zip(order, log_is, strict=True):
        saved = det.state()
        for what_if in (x + 0.6, x - 0.6, math.nan):
            det.push(o, float(what_if))
            det.restore(saved)
        det.push(o, float(x))
        plain.push(o, float(x))
        assert vars(det) == vars(plain)
    assert det.episodes


@pytest.mark.parametrize("seed", range(3))
def test_the_pace_median_is_numpys_to_the_last_bit(seed: int) -> None:
    """``injection_pace`` takes the median of its intervals without np.median's call."""
    from asnmon.forecast import _median

    rng = np.random.default_rng(seed)
    for k in range(300):
        gaps = rng.lognormal(5, 2, int(rng.integers(1, 12)))
        gaps = np.round(gaps) if k % 3 == 0 else gaps  # whole seconds: equal intervals
        assert _median(gaps.tolist()) == float(np.median(gaps))
