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
- **rate at the alarm**: Theil-Sen slope of log IS against injection order over
  the episode's last ``slope_window`` (10) points (at least the last 5, even if
  the episode is shorter), reported as % per injection. It only confirms the
  alarm: ten points straddling the onset underestimate the rate (issue 12).
- **forecast** (``asnmon.forecast.forecast_crossing``): recomputed at every
  injection from *all* points since the onset, with its confidence interval, and
  the injection at which the fitted line reaches the window's limit; the
  statistics it rests on are in ``asnmon.trend_stats``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from asnmon.trend_stats import theil_sen

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
    level: float = math.nan  # in-control mean of log IS the episode departs from


@dataclass(frozen=True, slots=True)
class CusumState:
    """A ``Cusum`` as of some point (``Cusum.state``): its lists by length, the rest as is."""

    n: int
    n_episodes: int
    last: DriftEpisode | None
    in_alarm: str | None
    lo: float
    hi: float
    lo_start: int
    hi_start: int
    level_sum: float
    n_level: int
    mr_sum: float
    n_mr: int
    prev: float | None


class Cusum:
    """The detector fed one point at a time: the same episodes as ``cusum_episodes``.

    Incremental so that a caller can act on an alarm at the point it is raised
    (the IS reference freezes at the drift's onset, ``asnmon.qc.is_context``).
    ``episodes`` index into the points pushed so far, excluded ones included.
    """

    def __init__(self, settings: DriftSettings = DriftSettings()) -> None:
        self.s = settings
        self.order: list[float] = []
        self.log_is: list[float] = []
        self.excluded: list[bool] = []
        self.episodes: list[DriftEpisode] = []
        self.in_alarm: str | None = None
        self._lo = self._hi = 0.0
        self._lo_start = self._hi_start = 0
        self._level_sum = 0.0
        self._n_level = 0
        self._mr_sum = 0.0
        self._n_mr = 0
        self._prev: float | None = None

    def state(self) -> CusumState:
        """What ``push`` changes (of its lists, their lengths), for ``restore``."""
        return CusumState(
            len(self.order),
            len(self.episodes),
            self.episodes[-1] if self.episodes else None,
            self.in_alarm,
            self._lo,
            self._hi,
            self._lo_start,
            self._hi_start,
            self._level_sum,
            self._n_level,
            self._mr_sum,
            self._n_mr,
            self._prev,
        )

    def restore(self, state: CusumState) -> None:
        """Back to ``state``, as if the points pushed since had not been (``push`` only
        appends to the lists, and changes no more than the last episode)."""
        n, n_episodes = state.n, state.n_episodes
        del self.order[n:], self.log_is[n:], self.excluded[n:], self.episodes[n_episodes:]
        if state.last is not None:
            self.episodes[n_episodes - 1] = state.last
        self.in_alarm = state.in_alarm
        self._lo, self._hi = state.lo, state.hi
        self._lo_start, self._hi_start = state.lo_start, state.hi_start
        self._level_sum, self._n_level = state.level_sum, state.n_level
        self._mr_sum, self._n_mr = state.mr_sum, state.n_mr
        self._prev = state.prev

    @property
    def level(self) -> float | None:
        """In-control mean of log IS (frozen while in alarm); None during the first point."""
        return self._level_sum / self._n_level if self._n_level else None

    @property
    def in_control(self) -> bool:
        """No episode open and neither sum beyond h (the points it would learn from)."""
        return self.in_alarm is None and self._lo <= self.s.h and self._hi <= self.s.h

    def push(self, order: float, x: float, excluded: bool = False) -> None:
        s = self.s
        j = len(self.log_is)
        self.order.append(float(order))
        self.log_is.append(float(x))
        self.excluded.append(bool(excluded))
        if excluded or not math.isfinite(x):
            return
        if self._n_level < s.baseline_n:  # warm-up: learn the level and the SD
            if self._prev is not None:
                self._mr_sum += abs(x - self._prev)
                self._n_mr += 1
            self._prev = x
            self._level_sum += x
            self._n_level += 1
            self._lo_start = self._hi_start = j + 1
            return
        mu = self._level_sum / self._n_level
        sd = max(self._mr_sum / self._n_mr / MR_TO_SD if self._n_mr else 0.0, s.min_cv)
        z = max(-s.clip, min(s.clip, (x - mu) / sd))
        if self._lo == 0.0:
            self._lo_start = j
        if self._hi == 0.0:
            self._hi_start = j
        self._lo = max(0.0, self._lo - z - s.k)
        self._hi = max(0.0, self._hi + z - s.k)
        if self.in_alarm is None:
            side = "down" if self._lo > s.h else "up" if self._hi > s.h else None
            if side is not None:
                start = self._lo_start if side == "down" else self._hi_start
                total = self._lo if side == "down" else self._hi
                episode = _episode(
                    self.order, self.log_is, self.excluded, side, start, j, mu, sd, total, s
                )
                # Confirmation: the sum says "shifted", the slope must say "still moving
                # that way" at the minimum rate; else wait (the sum keeps its evidence).
                moving = (episode.rate_pct < 0) == (side == "down")
                if s.min_rate_pct <= 0 or (moving and abs(episode.rate_pct) >= s.min_rate_pct):
                    self.in_alarm = side
                    self.episodes.append(episode)
        else:
            if self.in_alarm == "down":
                self._lo = min(self._lo, 2 * s.h)
            else:
                self._hi = min(self._hi, 2 * s.h)
            total = self._lo if self.in_alarm == "down" else self._hi
            if total == 0.0:
                self.episodes[-1] = replace(self.episodes[-1], end=j)
                self.in_alarm = None
        if self.in_alarm is None and self._lo <= s.h and self._hi <= s.h:
            if self._prev is not None:
                self._mr_sum += min(abs(x - self._prev), MR_WINSOR * sd)
                self._n_mr += 1
            self._prev = x
            self._level_sum += x
            self._n_level += 1


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
    det = Cusum(settings)
    for j in range(len(log_is)):
        det.push(order[j], float(log_is[j]), bool(excluded[j]) if excluded is not None else False)
    return det.episodes


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
        level=mu,
    )
