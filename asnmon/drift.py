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
- **forecast** (``forecast_crossing``): recomputed at every injection from *all*
  points since the onset, Theil-Sen with its confidence interval (Sen 1968), and
  the injection at which the fitted line reaches the window's limit. The more
  points since the onset, the narrower the interval; ``benchmarks/drift.py``
  measures its error against the true crossing.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
from scipy import stats

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
    medslope = float(np.median(slopes))
    alpha = 1.0 - confidence if confidence > 0.5 else confidence
    z = _norm_quantile(alpha / 2.0)
    ny = int(ys.size)
    ties = sum(int(k) * (int(k) - 1) * (2 * int(k) + 5) for k in _repeats(xs)) + sum(
        int(k) * (int(k) - 1) * (2 * int(k) + 5) for k in _repeats(ys)
    )
    sigsq = 1 / 18.0 * (ny * (ny - 1) * (2 * ny + 5) - ties)
    nt = int(slopes.size)
    if sigsq < 0:
        return medslope, math.nan, math.nan
    sigma = math.sqrt(sigsq)
    upper = min(int(np.round((nt - z * sigma) / 2.0)), nt - 1)
    lower = max(int(np.round((nt + z * sigma) / 2.0)) - 1, 0)
    if not (-nt <= lower < nt and -nt <= upper < nt):
        return medslope, math.nan, math.nan
    return medslope, float(slopes[lower]), float(slopes[upper])


def _repeats(values: np.ndarray) -> np.ndarray:
    """How often each value that occurs more than once occurs (scipy's ``_find_repeats``)."""
    _, counts = np.unique(values, return_counts=True)
    return counts[counts > 1]


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


@dataclass(frozen=True, slots=True)
class DriftForecast:
    """Where a drift is heading, from every point since its onset (``forecast_crossing``)."""

    rate_pct: float  # % per injection, Theil-Sen
    rate_low_pct: float  # confidence interval of the rate (low <= high)
    rate_high_pct: float
    confidence: float
    n_points: int
    first: float  # injection order of the first point used
    now: float  # injection order of the last point used
    level_pct: float  # the fitted line at ``now``, % of the reference
    target_pct: float
    crossing: float | None  # injection order where the line reaches the target; None: not heading
    crossing_early: float | None  # from the interval's steeper rate
    crossing_late: float | None  # from its shallower rate; None: it may never get there

    @property
    def crossed(self) -> bool:
        return self.crossing is not None and self.crossing <= self.now


OUTLIER_SD = 4.0  # residuals beyond this many robust SDs leave the forecast fit (short injections)
ONSET_BACK = 10  # the onset is searched from this many points before the CUSUM's estimate


def _hinge(
    xs: np.ndarray, ys: np.ndarray, level: float, candidates: np.ndarray
) -> list[tuple[float, float, float, float]]:
    """Least-squares broken lines, flat at ``level`` until t0, then slope b.

    One (t0, b, residual SS, sum of squared leverage) per candidate onset.
    """
    out = []
    dy = ys - level
    for t0 in candidates:
        u = np.maximum(xs - t0, 0.0)
        uu = float(u @ u)
        if uu == 0:
            continue
        b = float(u @ dy) / uu
        out.append((float(t0), b, float(np.sum((dy - b * u) ** 2)), uu))
    return out


def forecast_crossing(
    order: Sequence[float],
    log_is: Sequence[float],
    log_reference: float,
    target_pct: float,
    confidence: float = 0.90,
    *,
    level: float | None = None,
    onset: tuple[float, float] | None = None,
    min_sd: float = 0.0,
) -> DriftForecast | None:
    """Fit the drift and find when it reaches ``target_pct`` of the reference.

    With the in-control ``level`` (mean log IS) known, a broken line: flat at the
    level until an onset searched within ``onset`` (first, last injection order),
    then a straight decline; pinned at the level, the slope needs half the points
    a free line does. Points beyond OUTLIER_SD robust SDs of a first fit are
    dropped and the line refitted. Without ``level``: Theil-Sen on the points
    given (Sen's interval). The interval of the slope gives the earliest and
    latest crossing. None with fewer than 3 usable points.

    A pure function of its numbers, kept for the last ``_FORECASTS_KEPT`` series
    (keyed by their exact bits): the run's verdict and the live IS_DRIFT flag ask
    for the same forecast at every injection, and an episode that ended asks for
    the same one at every injection after it.
    """
    xs = np.asarray(order, dtype=np.float64)
    ys = np.asarray(log_is, dtype=np.float64)
    scalars = np.array(
        [
            log_reference,
            target_pct,
            confidence,
            math.nan if level is None else level,
            *(onset if onset is not None else (math.nan, math.nan)),
            min_sd,
        ],
        dtype=np.float64,
    )
    key = (
        xs.tobytes(),
        ys.tobytes(),
        scalars.tobytes(),
        level is None,
        onset is None,
    )
    with _FORECASTS_LOCK:
        if key in _FORECASTS:
            return _FORECASTS[key]
    fc = _forecast_crossing(
        xs,
        ys,
        log_reference,
        target_pct,
        confidence,
        level=level,
        onset=onset,
        min_sd=min_sd,
    )
    with _FORECASTS_LOCK:
        _FORECASTS[key] = fc
        while len(_FORECASTS) > _FORECASTS_KEPT:
            _FORECASTS.pop(next(iter(_FORECASTS)))
    return fc


_FORECASTS: dict[tuple[bytes, bytes, bytes, bool, bool], DriftForecast | None] = {}
_FORECASTS_KEPT = 64
_FORECASTS_LOCK = threading.Lock()


def _forecast_crossing(
    xs: np.ndarray,
    ys: np.ndarray,
    log_reference: float,
    target_pct: float,
    confidence: float,
    *,
    level: float | None = None,
    onset: tuple[float, float] | None = None,
    min_sd: float = 0.0,
) -> DriftForecast | None:
    """``forecast_crossing`` itself, on finite-or-not arrays, every time."""
    ok = np.isfinite(ys) & np.isfinite(xs)
    xs, ys = xs[ok], ys[ok]
    if xs.size < 3 or np.ptp(xs) == 0:
        return None
    target = log_reference + math.log(target_pct / 100.0)
    now = float(xs.max())
    if level is not None and math.isfinite(level):
        lo_t, hi_t = onset if onset is not None else (float(xs.min()), now)
        cand = xs[(xs >= lo_t) & (xs <= hi_t) & (xs < now)]
        if cand.size == 0:
            cand = np.array([float(xs.min())])
        cand = np.concatenate([cand - 0.5, cand])  # onset between injections too
        keep = np.ones(xs.size, dtype=bool)
        fits = _hinge(xs, ys, level, cand)
        for _ in range(2):  # drop outliers of the best line, refit
            if not fits:
                return None
            t0, slope, _ss, _uu = min(fits, key=lambda f: f[2])
            resid = ys - level - slope * np.maximum(xs - t0, 0.0)
            mad = float(np.median(np.abs(resid[keep]))) * 1.4826
            kept = np.abs(resid) <= OUTLIER_SD * max(mad, min_sd, 1e-6)
            if kept.sum() < 3:
                kept[:] = True
            if not np.array_equal(kept, keep):  # the same points give the same fits
                fits = _hinge(xs[kept], ys[kept], level, cand)
            keep = kept
        if not fits:
            return None
        t0, slope, ss, _uu = min(fits, key=lambda f: f[2])
        dof = max(int(keep.sum()) - 2, 1)
        s2 = max(ss / dof, min_sd**2)
        # The onset is uncertain too: every onset whose fit is not worse than the best
        # by more than the chi-square quantile (profile likelihood) widens the interval.
        chi = chi2_quantile(confidence, 1)
        tq = t_quantile(0.5 + confidence / 2, dof)
        plausible = [f for f in fits if (f[2] - ss) / s2 <= chi]
        lows = [f[1] - tq * math.sqrt(s2 / f[3]) for f in plausible]
        highs = [f[1] + tq * math.sqrt(s2 / f[3]) for f in plausible]
        low, high = min(lows), max(highs)
        x_pivot, y_pivot = t0, level
        n_used = int(keep.sum())
        first = t0
        bounds = [
            (f[0] + (target - level) / bf)
            for f, lo_b, hi_b in zip(plausible, lows, highs, strict=True)
            for bf in (lo_b, hi_b)
            if bf != 0 and (bf < 0) == (target < level)
        ]
    else:
        slope, low_slope, high_slope = theil_sen_interval(xs, ys, confidence)
        low, high = sorted((low_slope, high_slope))
        x_pivot, y_pivot = float(np.median(xs)), float(np.median(ys))
        n_used = int(xs.size)
        first = float(xs.min())
        bounds = []
    y_now = y_pivot + slope * (now - x_pivot)
    falling = target < y_pivot

    def crossing(b: float) -> float | None:
        if b == 0 or not math.isfinite(b) or (b < 0) != falling:
            return None
        return x_pivot + (target - y_pivot) / b

    steep, shallow = (low, high) if falling else (high, low)
    early, late = crossing(steep), crossing(shallow)
    if bounds:  # the broken line: the earliest and latest crossing over plausible onsets
        early = min(bounds)
        late = max(bounds) if crossing(shallow) is not None else None
    return DriftForecast(
        rate_pct=100.0 * math.expm1(slope),
        rate_low_pct=100.0 * math.expm1(low),
        rate_high_pct=100.0 * math.expm1(high),
        confidence=confidence,
        n_points=n_used,
        first=first,
        now=now,
        level_pct=100.0 * math.exp(y_now - log_reference),
        target_pct=target_pct,
        crossing=crossing(slope),
        crossing_early=early,
        crossing_late=late,
    )


@dataclass(frozen=True, slots=True)
class Pace:
    """The run's own injection interval, from its acquisition times."""

    last: datetime  # acquisition time of the latest injection
    interval: timedelta  # median of the latest intervals
    n: int  # intervals it rests on

    def at(self, injections_ahead: float) -> datetime:
        return self.last + self.interval * injections_ahead


PACE_N = 10  # latest intervals whose median is "the current interval"


def injection_pace(times: Sequence[datetime | None], n: int = PACE_N) -> Pace | None:
    """Median of the last ``n`` positive intervals between consecutive known times."""
    known = [t for t in times if t is not None]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(known)]
    gaps = [g for g in gaps if g > 0][-n:]
    if not gaps:
        return None
    return Pace(known[-1], timedelta(seconds=float(np.median(gaps))), len(gaps))


def pace_times(latest_first: Iterable[datetime | None], n: int = PACE_N) -> list[datetime]:
    """The known times ``injection_pace`` reads, latest first in: back to its n-th positive
    interval, oldest first out.

    The pace is the median of the last ``n`` positive intervals between consecutive
    known times, so the times before those change nothing: the same pace from a few
    times instead of the whole run's at every injection.
    """
    kept: list[datetime] = []
    positive = 0
    for t in latest_first:
        if t is None:
            continue
        if kept and (kept[-1] - t).total_seconds() > 0:
            positive += 1
        kept.append(t)
        if positive >= n:
            break
    kept.reverse()
    return kept


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
