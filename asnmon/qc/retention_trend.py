"""RT_TREND: a retention time moving steadily towards its tolerance, with a forecast.

Why a code of its own rather than details on RT_SHIFT: RT_SHIFT is raised once
the apex is already outside the tolerance, on that injection; a column that
ages or a mobile phase that evaporates moves the RT a little at every
injection, and the analyst needs to know *before* the tolerance is crossed.
So RT_TREND is a warning raised once, on the injection where the trend is
first seen heading for the tolerance within ``limits.rt_trend_horizon``
injections, and the pipeline keeps its message current at every later
injection (like IS_DRIFT): "RT reaches the tolerance at about injection N".

The trend: Theil-Sen slope of the apex RT (the IS's, else the analyte's) over
the last ``limits.rt_trend_n`` injections, with Sen's 95 % interval; it must
exclude zero and point at the nearer edge of the tolerance, the apex must still
be inside it (else RT_SHIFT speaks), and the fitted line must reach it within
the horizon. The forecast (rate, interval, crossing) then follows a broken
line fitted over three windows' look back (``asnmon.trend_stats.fit_broken_line``)
where a bend is evident: a trend that began inside the window is not averaged
with the flat points before it. The reference and tolerance are RT_SHIFT's (calibrators' mean,
``rt_tolerance_pct`` with its absolute floor). On clean simulated runs (0.01
min jitter) a 15-point slope's noise is ~0.0006 min per injection, a crossing
~130 injections away: the horizon is what keeps false alarms out.
"""

from __future__ import annotations

import math
import operator
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asnmon.assay import Assay
from asnmon.forecast import Pace
from asnmon.qc._base import _flag, _who
from asnmon.qc._history import history_index, rt_kept, upto
from asnmon.records import Flag, HistoryPoint, SampleType
from asnmon.records import Severity as S
from asnmon.trend_stats import fit_broken_line, theil_sen_interval

SRC_RT_TREND = (
    "CLSI C62-A (RT tolerance); Theil-Sen trend with Sen's 95 % interval; "
    "limits.rt_trend_n, limits.rt_trend_horizon"
)
CONFIDENCE = 0.95
LOOKBACK = 3  # the forecast's broken line looks back this many trend windows


@dataclass(frozen=True, slots=True)
class RtTrend:
    """The RT trend as of one injection, heading for the tolerance."""

    at: HistoryPoint  # the injection it is judged at
    reference: float  # min, calibrators' mean
    tolerance: float  # min
    rate: float  # min per injection
    rate_low: float
    rate_high: float
    shift: float  # fitted apex - reference at ``at``, min
    crossing: float  # injection order at which the fitted line reaches the tolerance
    crossing_late: float | None  # from the interval's shallower end


def _rt(p: HistoryPoint, has_is: bool) -> float | None:
    return p.is_rt if has_is else p.analyte_rt


def rt_points(history: Sequence[HistoryPoint], assay: Assay) -> list[HistoryPoint]:
    """The injections the RT trend follows (IS-bearing, read, with an apex), in order."""
    has_is = assay.is_quant is not None
    index, m, rest = history_index(history)  # kept between calls: no scan of the whole run
    pts = upto(index.rt_pos[has_is], index.rt[has_is], m)
    pts += [p for p in rest if rt_kept(p, has_is)]
    return pts


class _CalibratorSums:
    """Running sums of the calibrators' RT over a run's points, kept between calls.

    The reference at ``j`` is the mean over ``points[:j]``; a trend is judged at
    ~2 x ``rt_trend_n`` indexes per injection, so a scan per judgement made each
    file cost O(n) several dozen times. Sums are added in the same order as
    ``sum()`` would, so the mean is the same number to the last bit.
    """

    def __init__(self, has_is: bool) -> None:
        self.has_is = has_is
        self.points: list[HistoryPoint] = []
        self.total = [0.0]  # total[k]: sum over points[:k]
        self.count = [0]
        self.checked: Sequence[HistoryPoint] | None = None  # last sequence found to extend them

    def mean(self, points: Sequence[HistoryPoint], j: int) -> float | None:
        n = len(self.points)
        if j > n:
            for p in points[n:j]:
                rt = _rt(p, self.has_is)
                cal = p.sample_type is SampleType.CALIBRATOR and rt is not None
                self.points.append(p)
                self.total.append(self.total[-1] + rt if cal and rt is not None else self.total[-1])
                self.count.append(self.count[-1] + 1 if cal else self.count[-1])
        return self.total[j] / self.count[j] if self.count[j] else None


_SUMS: dict[tuple[int, bool], _CalibratorSums] = {}  # (first point, has_is) -> sums
_SUMS_KEPT = 8
_SUMS_LOCK = threading.Lock()


def _calibrator_mean(points: Sequence[HistoryPoint], j: int, has_is: bool) -> float | None:
    """Mean RT of the calibrators among ``points[:j]`` (None: no calibrator yet)."""
    if j <= 0:
        return None
    with _SUMS_LOCK:
        key = (id(points[0]), has_is)
        sums = _SUMS.pop(key, None)
        if sums is None or (points is not sums.checked and not _prefix_of(sums.points, points)):
            sums = _CalibratorSums(has_is)
        sums.checked = points  # the same sequence asked again (the window before j): no check
        _SUMS[key] = sums
        while len(_SUMS) > _SUMS_KEPT:
            _SUMS.pop(next(iter(_SUMS)))
        return sums.mean(points, j)


def _prefix_of(seen: list[HistoryPoint], points: Sequence[HistoryPoint]) -> bool:
    """Whether ``points`` begin with the points summed so far (the same objects: records
    are frozen, so the same object is the same values)."""
    return len(points) >= len(seen) and all(map(operator.is_, seen, points))


_FITS: dict[tuple[bytes, bytes], tuple[float, float, float]] = {}  # window -> Theil-Sen
_FITS_KEPT = 128  # a few runs' last two trend windows (one raise check looks back one window)
_FITS_LOCK = threading.Lock()


def _window_fit(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float]:
    """Theil-Sen with Sen's interval on one window, kept by the window's exact values.

    The same window is judged several times per injection (the rule on arrival, the
    live flag after it is stored, the raise check over the window before), and again
    at each of the next ``rt_trend_n`` injections while a trend is being confirmed.
    """
    key = (xs.tobytes(), ys.tobytes())
    with _FITS_LOCK:
        fit = _FITS.get(key)
    if fit is None:
        fit = theil_sen_interval(xs, ys, CONFIDENCE)
        with _FITS_LOCK:
            _FITS[key] = fit
            while len(_FITS) > _FITS_KEPT:
                _FITS.pop(next(iter(_FITS)))
    return fit


def rt_trend_at(points: Sequence[HistoryPoint], j: int, assay: Assay) -> RtTrend | None:
    """The trend over the last ``rt_trend_n`` of ``points`` up to ``j``, if heading out."""
    lim = assay.limits
    n = lim.rt_trend_n
    if j + 1 < n:
        return None
    has_is = assay.is_quant is not None
    ref = _calibrator_mean(points, j, has_is)
    if ref is None:
        return None
    tol = max(ref * lim.rt_tolerance_pct / 100.0, lim.rt_tolerance_min_floor)
    window = points[j - n + 1 : j + 1]
    xs = np.array([p.order for p in window], dtype=np.float64)
    ys = np.array([_rt(p, has_is) for p in window], dtype=np.float64)
    if np.ptp(xs) == 0:
        return None
    slope, low, high = _window_fit(xs, ys)
    if low <= 0 <= high:
        return None  # no trend the data stand behind
    xm, ym = float(np.median(xs)), float(np.median(ys))
    now = float(window[-1].order)
    shift = ym + slope * (now - xm) - ref
    if abs(shift) > tol:
        return None  # already outside: RT_SHIFT
    edge = ref + (tol if slope > 0 else -tol)
    crossing = xm + (edge - ym) / slope
    if crossing - now > lim.rt_trend_horizon:
        return None
    shallow = low if slope > 0 else high
    late = xm + (edge - ym) / shallow if shallow != 0 else None
    # Raised and kept on the window's straight line (as measured for false alarms); the
    # forecast follows a broken line where a bend is evident over a longer look back: a
    # straight 15-point line straddling the onset read 0.01 min/injection as 0.004 (median), its
    # interval missing the true rate every time (benchmarks/drift.py).
    back = points[max(0, j - LOOKBACK * n + 1) : j + 1]
    line = fit_broken_line(
        [float(p.order) for p in back], [float(_rt(p, has_is) or 0.0) for p in back], CONFIDENCE
    )
    if line is not None and line.bent and (line.slope > 0) == (slope > 0):
        slope, low, high = line.slope, line.slope_low, line.slope_high
        shift = line.at(now) - ref
        crossing = line.onset + (edge - line.level) / slope
        shallow = low if slope > 0 else high
        late = (
            max(t0 + (edge - a) / shallow for t0, a, _ in line.plausible)
            if (shallow > 0) == (slope > 0) and shallow != 0
            else None
        )
    return RtTrend(window[-1], ref, tol, slope, low, high, shift, crossing, late)


def rt_trend_raised_at(points: Sequence[HistoryPoint], j: int, assay: Assay) -> bool:
    """Whether RT_TREND is raised at ``j``: a trend there, none over the window before."""
    if rt_trend_at(points, j, assay) is None:
        return False
    n = assay.limits.rt_trend_n
    return all(rt_trend_at(points, i, assay) is None for i in range(max(0, j - n), j))


def rt_trend_flag(
    trend: RtTrend,
    assay: Assay,
    *,
    since: HistoryPoint | None = None,
    last_order: int | None = None,
    pace: Pace | None = None,
) -> Flag:
    """RT_TREND with the forecast; ``since``: the injection it was first raised on."""
    lim = assay.limits
    now = last_order if last_order is not None else trend.at.order
    n_at = math.ceil(trend.crossing)
    remaining = trend.crossing - now
    late = f"{math.ceil(trend.crossing_late)}" if trend.crossing_late is not None else "never"
    when = ""
    details: dict[str, object] = {}
    if pace is not None:
        at = pace.at(remaining)
        minutes = pace.interval.total_seconds() / 60.0
        zone = " UTC" if at.utcoffset() is not None and not at.utcoffset() else ""
        when = f", ≈ {at:%H:%M}{zone} at the current interval of {minutes:.1f} min per injection"
        details = {"crossing_time": at.isoformat(), "interval_min": round(minutes, 2)}
    first = since if since is not None else trend.at
    return _flag(
        "RT_TREND",
        S.WARNING,
        f"Retention time {'rising' if trend.rate > 0 else 'falling'} "
        f"{60 * trend.rate:+.2f} s per injection (95 % CI {60 * trend.rate_low:+.2f} to "
        f"{60 * trend.rate_high:+.2f}; last {lim.rt_trend_n} injections, first seen at "
        f"{_who(first)}), now {trend.shift:+.3f} min from the calibrators' mean "
        f"({trend.reference:.3f} min). RT reaches the ±{trend.tolerance:.3f} min tolerance at "
        f"about injection {n_at} (latest {late}){when}, {remaining:.0f} injection(s) from now.",
        "Check the column (age, temperature), the mobile phase (evaporation, pH) and the pump "
        "pressure before the RT leaves its window; confirm peak identity on the next QCs.",
        60 * trend.rate,
        trend.tolerance,
        SRC_RT_TREND,
        rate_min_per_injection=trend.rate,
        rate_low=trend.rate_low,
        rate_high=trend.rate_high,
        shift=trend.shift,
        reference=trend.reference,
        crossing_at=n_at,
        crossing_late=math.ceil(trend.crossing_late) if trend.crossing_late else None,
        remaining=round(remaining, 1),
        first_seen_at=first.order,
        updated_at=now,
        **details,
    )


def evaluate_rt_trend(points: Sequence[HistoryPoint], assay: Assay) -> list[Flag]:
    """RT_TREND for the last of ``points`` (history + current), raised once per trend."""
    pts = rt_points(points, assay)
    if not pts or not points or pts[-1] is not points[-1]:
        return []
    j = len(pts) - 1
    if not rt_trend_raised_at(pts, j, assay):
        return []
    trend = rt_trend_at(pts, j, assay)
    return [rt_trend_flag(trend, assay)] if trend is not None else []


def rt_trend_ended_flag(since: HistoryPoint, now: HistoryPoint, last: Flag) -> Flag:
    """The last word on an RT_TREND that no longer heads for the tolerance."""
    return _flag(
        "RT_TREND",
        S.WARNING,
        f"The retention-time trend first seen at {_who(since)} no longer heads for the "
        f"tolerance as of {_who(now)}: the RT has stopped moving, or has left the tolerance "
        "(then RT_SHIFT is raised on each injection outside it).",
        "Review the injections since the trend began; check the column and mobile phase "
        "before the next run.",
        last.value,
        last.limit,
        SRC_RT_TREND,
        **{**dict(last.details), "ended_at": now.order, "updated_at": now.order},
    )
