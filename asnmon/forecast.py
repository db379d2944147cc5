"""Where a drift is heading: the live forecast of a limit crossing, and the run's pace.

``forecast_crossing`` is recomputed at every injection from *all* points since the
drift's onset (``asnmon.drift`` finds it): with the in-control level known, a broken
line flat until the onset and then declining, its interval widened over every onset
the data do not rule out; without it, Theil-Sen with Sen's interval. The injection
pace (``injection_pace``) turns "at injection N" into a clock time.
``benchmarks/drift.py`` measures the forecast's error against the true crossing.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from asnmon.trend_stats import chi2_quantile, t_quantile, theil_sen_interval


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
    return Pace(known[-1], timedelta(seconds=_median(gaps)), len(gaps))


def _median(values: list[float]) -> float:
    """np.median of a few floats, its value to the last bit without its ~15 us call:
    the middle one, or the mean of the two middle ones as np.mean takes it."""
    ordered = sorted(values)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2.0


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
