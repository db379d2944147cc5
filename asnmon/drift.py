"""Early warning of a drifting internal standard: a causal, robust CUSUM on log IS area.

Why CUSUM and not EWMA: Panorama (the QC tool labs already know) uses CUSUM
with k = 0.5 and h = 5 SD units, so the numbers mean the same thing in both
tools; CUSUM is the optimal detector for a sustained shift of 2k = 1 SD, and it
gives the change point for free (the last injection where the sum was zero),
which is the "drift began at injection N" the analyst needs. An EWMA of equal
sensitivity has no such natural start estimate.

Choices, each made so the detector can be recomputed from the run's history
at every injection and still raise **once per episode**:

- **log scale**: a drift is a multiplicative loss (source fouling), so
  log(IS) turns "% per injection" into a constant slope and the SD into a CV.
- **causal estimates**: the in-control level (mean of log IS) and SD at
  injection j come only from in-control injections *before* j, so a prefix of
  the series always gives the same CUSUM: a recomputation never moves an
  alarm that was already raised.
- **SD from the run, robustly**: mean moving range / 1.128 (the Shewhart MR
  estimate Panorama also uses), each range winsorized at 3.5 x the current
  estimate. Successive differences remove a slow trend, so a drift barely
  inflates it. Floored at ``min_cv`` (default 3 %, below CLSI C62-A's expected
  5-10 % IS CV): an unusually quiet run must not turn a 1 % wobble into an alarm,
  and the floor guards the estimate while it rests on few injections.
- **warm-up**: no decision before ``baseline_n`` (8) IS-bearing injections
  (typically the calibrators); the level then is their mean.
- **robust to single outliers**: injections outside the hard IS window are left
  out (IS_LOW/IS_HIGH already speak for them), and each standardized value is
  clipped at ±``clip`` (3) SD, so one short injection cannot raise a drift.
- **episodes**: an alarm when either one-sided sum exceeds ``h``; while in
  alarm the level and SD are frozen and the sum is capped at 2h, so a
  recovery is recognised within about 2h/k = 20 in-control injections however
  long the drift lasted; the episode ends (and the detector re-arms) when the
  sum returns to zero.
- **rate**: Theil-Sen slope of log IS against injection order over the
  episode's last ``slope_window`` (10) points (at least the last 5, even if the
  episode is shorter), reported as % per injection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

MR_TO_SD = 1.128  # d2 for n = 2: mean moving range / d2 = SD
MR_WINSOR = 3.5  # moving ranges clipped at this multiple of the current SD estimate


@dataclass(frozen=True, slots=True)
class DriftSettings:
    k: float = 0.5  # SD units, Panorama
    h: float = 5.0  # SD units, Panorama
    baseline_n: int = 8
    min_cv: float = 0.03  # floor of the SD of log IS (~ CV)
    clip: float = 3.0
    slope_window: int = 10
    min_rate_pct: float = 0.0  # |% per injection| the trend must show to raise the alarm


@dataclass(frozen=True, slots=True)
class DriftEpisode:
    """One sustained departure of the IS level, indexes into the series given."""

    direction: str  # "down" | "up"
    start: int  # first point of the episode (the CUSUM left zero just before it)
    alarm: int  # point at which the sum crossed h
    end: int | None  # point at which the sum returned to zero; None: ongoing
    rate_pct: float  # % per injection (negative: falling), robust slope
    level_pct: float  # IS at the alarm relative to the in-control level, %
    sd: float  # SD of log IS used (~ CV)
    cusum: float  # the sum at the alarm, SD units


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


def cusum_episodes(
    order: Sequence[float],
    log_is: Sequence[float],
    settings: DriftSettings = DriftSettings(),
    excluded: Sequence[bool] | None = None,
) -> list[DriftEpisode]:
    """All drift episodes in a series of log IS areas, in injection order.

    ``order`` is the injection number of each point (for the rate);
    ``excluded`` marks points to skip (outside the hard window).
    """
    n = len(log_is)
    s = settings
    lo = hi = 0.0
    lo_start = hi_start = 0
    in_alarm: str | None = None
    episodes: list[DriftEpisode] = []
    level_sum = 0.0
    n_level = 0
    mr_sum = 0.0
    n_mr = 0
    prev: float | None = None
    for j in range(n):
        x = float(log_is[j])
        if (excluded is not None and excluded[j]) or not math.isfinite(x):
            continue
        if n_level < s.baseline_n:  # warm-up: learn the level and the SD
            if prev is not None:
                mr_sum += abs(x - prev)
                n_mr += 1
            prev = x
            level_sum += x
            n_level += 1
            lo_start = hi_start = j + 1
            continue
        mu = level_sum / n_level
        sd = max(mr_sum / n_mr / MR_TO_SD if n_mr else 0.0, s.min_cv)
        z = max(-s.clip, min(s.clip, (x - mu) / sd))
        if lo == 0.0:
            lo_start = j
        if hi == 0.0:
            hi_start = j
        lo = max(0.0, lo - z - s.k)
        hi = max(0.0, hi + z - s.k)
        if in_alarm is None:
            side = "down" if lo > s.h else "up" if hi > s.h else None
            if side is not None:
                start = lo_start if side == "down" else hi_start
                total = lo if side == "down" else hi
                episode = _episode(order, log_is, excluded, side, start, j, mu, sd, total, s)
                # Confirmation: the sum says "shifted", the slope must say "still moving
                # that way" at the minimum rate; else wait (the sum keeps its evidence).
                moving = (episode.rate_pct < 0) == (side == "down")
                if s.min_rate_pct <= 0 or (moving and abs(episode.rate_pct) >= s.min_rate_pct):
                    in_alarm = side
                    episodes.append(episode)
        else:
            if in_alarm == "down":
                lo = min(lo, 2 * s.h)
            else:
                hi = min(hi, 2 * s.h)
            total = lo if in_alarm == "down" else hi
            if total == 0.0:
                episodes[-1] = replace(episodes[-1], end=j)
                in_alarm = None
        if in_alarm is None and lo <= s.h and hi <= s.h:
            mr = abs(x - prev) if prev is not None else None
            if mr is not None:
                mr_sum += min(mr, MR_WINSOR * sd)
                n_mr += 1
            prev = x
            level_sum += x
            n_level += 1
    return episodes


def _episode(
    order: Sequence[float],
    log_is: Sequence[float],
    excluded: Sequence[bool] | None,
    side: str,
    start: int,
    alarm: int,
    mu: float,
    sd: float,
    total: float,
    s: DriftSettings,
) -> DriftEpisode:
    idx = [
        i
        for i in range(max(min(start, alarm - 4), 0), alarm + 1)
        if not (excluded is not None and excluded[i]) and math.isfinite(float(log_is[i]))
    ][-s.slope_window :]
    enough = len(idx) >= 3
    slope = theil_sen([order[i] for i in idx], [log_is[i] for i in idx]) if enough else 0.0
    recent = float(np.median([log_is[i] for i in idx])) if idx else float(log_is[alarm])
    return DriftEpisode(
        direction=side,
        start=start,
        alarm=alarm,
        end=None,
        rate_pct=100.0 * math.expm1(slope),
        level_pct=100.0 * math.exp(recent - mu),
        sd=sd,
        cusum=total,
    )
