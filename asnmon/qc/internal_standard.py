"""The internal standard: its window against a causal reference, CUSUM drift, bias.

The reference itself (``is_context``) is ``asnmon.qc.is_reference``.
"""

from __future__ import annotations

import math
import operator
import threading
from collections.abc import Sequence

from asnmon.assay import Assay
from asnmon.drift import DriftEpisode
from asnmon.forecast import ONSET_BACK, DriftForecast, Pace, forecast_crossing
from asnmon.qc._base import (
    IS_BEARING,
    SRC_BIAS,
    SRC_DRIFT,
    SRC_IS,
    _flag,
    _fmt,
    _who,
)
from asnmon.qc.is_reference import IsContext, is_context
from asnmon.records import Flag, HistoryPoint, Sample, SampleType
from asnmon.records import Severity as S


def _is_window_flag(ctx: IsContext, assay: Assay) -> list[Flag]:
    lim = assay.limits
    p, ref, n, pct = ctx.points[-1], ctx.reference[-1], ctx.n_reference[-1], ctx.pct[-1]
    if ref is None or pct is None:
        return [
            _flag(
                "IS_NO_REFERENCE",
                S.INFO,
                f"IS area {_fmt(p.is_area)}: no reference yet (no earlier calibrator or QC "
                "with an IS peak), so the 50-150 % window cannot be judged for this injection.",
                "Nothing to do; the window applies from the first calibrator/QC on.",
                p.is_area,
                source=SRC_IS,
            )
        ]
    if lim.is_low_pct <= pct <= lim.is_high_pct:
        return []
    low = pct < lim.is_low_pct
    limit = lim.is_low_pct if low else lim.is_high_pct
    return [
        _flag(
            "IS_LOW" if low else "IS_HIGH",
            S.FAIL,
            f"IS area {_fmt(p.is_area)} is {pct:.0f} % of the run's reference "
            f"({_fmt(ref)}, mean of {n} {lim.is_reference.replace('_', '/')} injections); "
            f"the window is {lim.is_low_pct:g}-{lim.is_high_pct:g} %.",
            "Investigate (short injection, IS spiking, matrix suppression, clog) and re-inject; "
            "report nothing from this injection until then."
            if low
            else "Check for IS added twice, a co-eluting interference or a wrong dilution; "
            "re-inject.",
            pct,
            limit,
            SRC_IS,
            reference=ref,
            n_reference=n,
        )
    ]


def drift_episodes(ctx: IsContext, assay: Assay) -> list[DriftEpisode]:
    """The CUSUM episodes ``is_context`` found (``assay`` kept for the callers' signature)."""
    return list(ctx.episodes)


def drift_forecast(ctx: IsContext, assay: Assay) -> tuple[DriftEpisode, DriftForecast] | None:
    """The latest episode and its forecast from every point since its onset (to its end).

    The onset is searched from ONSET_BACK points before the CUSUM's estimate (the
    last zero of its sum, which noise moves) up to the alarm.
    """
    if not ctx.episodes:
        return None
    e = ctx.episodes[-1]
    last = e.end if e.end is not None else len(ctx.points) - 1
    first = max(e.start - ONSET_BACK, 0)
    ref = ctx.reference[last] or ctx.reference[e.alarm]
    if not ref:
        return None
    lim = assay.limits
    pts = ctx.points[first : last + 1]
    fc = forecast_crossing(
        [p.order for p in pts],
        [math.log(p.is_area) if p.is_area else math.nan for p in pts],
        math.log(ref),
        lim.is_low_pct if e.direction == "down" else lim.is_high_pct,
        lim.is_drift_forecast_confidence,
        level=e.level,
        onset=(float(pts[0].order), float(ctx.points[e.alarm].order)),
        min_sd=lim.is_drift_min_cv_pct / 100.0,
    )
    return (e, fc) if fc is not None else None


def _when(fc: DriftForecast, last_order: int, pace: Pace | None) -> tuple[str, dict[str, object]]:
    if fc.crossing is None or pace is None:
        return "", {}
    ahead = fc.crossing - last_order
    minutes = pace.interval.total_seconds() / 60.0
    at = pace.at(ahead)
    zone = " UTC" if at.utcoffset() is not None and not at.utcoffset() else ""
    return (
        f", ≈ {at:%H:%M}{zone} at the current interval of {minutes:.1f} min per injection",
        {"crossing_time": at.isoformat(), "interval_min": round(minutes, 2)},
    )


def _after(upcoming: Sequence[Sample], first_index: int) -> tuple[str, list[list[object]]]:
    """The worklist injections from ``first_index`` on (IS-bearing ones), in words."""
    rows = [s for s in upcoming[max(first_index, 0) :] if s.sample_type in IS_BEARING]
    if not rows:
        return "", []
    listed: list[list[object]] = [[s.position, s.sample_id] for s in rows]
    names = ", ".join(
        f"{s.sample_id} (position {s.position})" if s.position is not None else s.sample_id
        for s in rows[:4]
    )
    more = f" and {len(rows) - 4} more" if len(rows) > 4 else ""
    return f" Worklist injections from there on ({len(rows)}): {names}{more}.", listed


# IS_DRIFT of an episode that ended, by what it reads: the episode, its points (the same
# objects), their references and the limits. It reads the same at every later injection
# (no pace, no worklist, its own end as "now"), and the pipeline asks at every one.
_ENDED: dict[tuple[object, ...], tuple[object, tuple[HistoryPoint, ...], Flag | None]] = {}
_ENDED_KEPT = 8
_ENDED_LOCK = threading.Lock()


def is_drift_flag(
    ctx: IsContext,
    assay: Assay,
    *,
    last_order: int | None = None,
    pace: Pace | None = None,
    upcoming: Sequence[Sample] = (),
) -> Flag | None:
    """IS_DRIFT as of now: the latest episode with its live forecast; None without one.

    ``last_order``: the run's latest injection (any type; default the latest IS-bearing
    one); ``pace``: the run's injection interval; ``upcoming``: worklist rows not yet
    acquired, in order (neither is read once the episode has ended). Severity escalates
    to fail once even the latest crossing the rate's interval allows is within
    ``limits.is_drift_escalate_n`` injections, or the IS has left the window.
    """
    e = ctx.episodes[-1] if ctx.episodes else None
    if e is None or e.end is None:
        return _drift_flag(ctx, assay, last_order, pace, upcoming)
    pts = ctx.points[max(e.start - ONSET_BACK, 0) : e.end + 1]
    key = (e, ctx.reference[e.end], ctx.reference[e.alarm], id(assay.limits), len(pts))
    with _ENDED_LOCK:
        kept = _ENDED.get(key)
    if kept is not None and kept[0] is assay.limits and all(map(operator.is_, kept[1], pts)):
        return kept[2]
    flag = _drift_flag(ctx, assay, last_order, pace, upcoming)
    with _ENDED_LOCK:  # what it compares by identity is held, so no id can be reused meanwhile
        _ENDED[key] = (assay.limits, pts, flag)
        while len(_ENDED) > _ENDED_KEPT:
            _ENDED.pop(next(iter(_ENDED)))
    return flag


def _drift_flag(
    ctx: IsContext,
    assay: Assay,
    last_order: int | None,
    pace: Pace | None,
    upcoming: Sequence[Sample],
) -> Flag | None:
    found = drift_forecast(ctx, assay)
    if found is None:
        return None
    e, fc = found
    lim = assay.limits
    now = last_order if last_order is not None else ctx.points[-1].order
    if e.end is not None:  # an episode that ended reads the same at every later injection
        now = ctx.points[e.end].order
    start = ctx.points[e.start]
    falling = e.direction == "down"
    word = "falling" if falling else "rising"
    target = fc.target_pct
    interval = f"{100 * fc.confidence:.0f} % CI {fc.rate_low_pct:+.1f} to {fc.rate_high_pct:+.1f}"
    head = (
        f"IS response {word} since {_who(start)}: {fc.rate_pct:+.1f} % per injection "
        f"({interval}; {fc.n_points} points, fitted onset ≈ injection {fc.first:.0f}), now about "
        f"{fc.level_pct:.0f} % of the reference (CUSUM {e.cusum:.1f} > h = {lim.cusum_h:g} SD "
        f"at injection {ctx.points[e.alarm].order})."
    )
    details: dict[str, object] = {
        "started_at": start.order,
        "started_sample": start.sample_id,
        "alarm_at": ctx.points[e.alarm].order,
        "level_pct": fc.level_pct,
        "sd_pct": 100 * e.sd,
        "rate_pct": fc.rate_pct,
        "rate_low_pct": fc.rate_low_pct,
        "rate_high_pct": fc.rate_high_pct,
        "confidence": fc.confidence,
        "n_points": fc.n_points,
        "target_pct": target,
        "updated_at": now,
        "ended_at": ctx.points[e.end].order if e.end is not None else None,
    }
    severity = S.WARNING
    action = (
        "Check the ion source and spray (fouling), the IS solution and the autosampler; plan "
        "a source clean before the next QC set. Area ratios stay valid while analyte and IS "
        "move together: watch the QCs."
    )
    if e.end is not None:
        tail = (
            f" The episode ended at {_who(ctx.points[e.end])}: the IS is back at its "
            "in-control level."
        )
        action = "Nothing urgent; review the injections of the episode before reporting them."
    elif fc.crossing is None:
        tail = f" At this rate it is not heading for the {target:g} % limit."
    else:
        n_at = math.ceil(fc.crossing)
        remaining = fc.crossing - now
        span = ""
        if fc.crossing_early is not None:
            late = f"{math.ceil(fc.crossing_late)}" if fc.crossing_late is not None else "never"
            span = f" (range {math.ceil(fc.crossing_early)}-{late})"
        when, timing = _when(fc, now, pace)
        after, listed = _after(upcoming, n_at - now - 1)
        details |= {
            "crossing_at": n_at,
            "crossing_early": math.ceil(fc.crossing_early) if fc.crossing_early else None,
            "crossing_late": math.ceil(fc.crossing_late) if fc.crossing_late else None,
            "remaining": round(remaining, 1),
            "samples_after": listed,
            **timing,
        }
        if fc.crossed:
            severity = S.FAIL
            tail = (
                f" It passed {target:g} % at about injection {n_at}: injections since then are "
                f"outside the window (IS_{'LOW' if falling else 'HIGH'})." + after
            )
            action = (
                "Stop the queue: clean the ion source (or check the IS solution), re-run the "
                "calibrators and QCs, and re-inject the samples acquired since the crossing."
            )
        else:
            tail = (
                f" It reaches {target:g} % at about injection {n_at}{span}{when}, "
                f"{remaining:.0f} injection(s) from now." + after
            )
            # Escalate on the latest plausible crossing, not the point forecast: the first
            # forecasts rest on few points, and a fail that falls back is an alarm cried.
            latest = fc.crossing_late - now if fc.crossing_late is not None else math.inf
            if latest <= lim.is_drift_escalate_n:
                severity = S.FAIL
                head = (
                    f"Within about {remaining:.0f} injection(s) (at most {latest:.0f}) the IS "
                    f"leaves its window. {head}"
                )
                action = (
                    "Pause the queue before the crossing: clean the ion source (fouling) or check "
                    "the IS solution, then re-run a QC set; samples injected after the crossing "
                    "will have to be re-injected."
                )
        details["escalated"] = severity is S.FAIL
    return _flag(
        "IS_DRIFT",
        severity,
        head + tail,
        action,
        fc.rate_pct,
        lim.cusum_h,
        SRC_DRIFT,
        **details,
    )


def _is_drift_flag(ctx: IsContext, assay: Assay) -> list[Flag]:
    """IS_DRIFT on the injection where a CUSUM episode raises its alarm, and only there.

    The pipeline keeps that flag current at every later injection (``is_drift_flag``).
    """
    last = len(ctx.points) - 1
    if not ctx.episodes or ctx.episodes[-1].alarm != last:
        return []
    flag = is_drift_flag(ctx, assay)
    return [flag] if flag is not None else []


def _bias_at(ctx: IsContext, idx: int, n: int, m: int) -> tuple[float, float, float] | None:
    """(% difference, mean of the last n samples, mean of the last m cal/QC) at ``idx``."""
    samples: list[float] = []
    refs: list[float] = []
    for p, out in zip(ctx.points[idx::-1], ctx.outside[idx::-1], strict=True):
        if p.is_area is None:
            continue
        if p.sample_type is SampleType.SAMPLE and len(samples) < n:
            samples.append(p.is_area)
        elif p.sample_type in (SampleType.CALIBRATOR, SampleType.QC) and not out and len(refs) < m:
            refs.append(p.is_area)
        if len(samples) >= n and len(refs) >= m:
            break
    if len(samples) < n or len(refs) < m:
        return None
    s_mean, r_mean = sum(samples) / n, sum(refs) / m
    return 100.0 * (s_mean / r_mean - 1.0), s_mean, r_mean


def _is_bias_flag(ctx: IsContext, assay: Assay) -> list[Flag]:
    """IS_BIAS: the last N samples' mean IS vs the nearest cal/QC; raised once per episode.

    Compared with the *nearest* calibrators/QCs (the last ``m`` = 3, one QC set)
    rather than the run's mean, so a drift that moves everything together is left
    to IS_DRIFT; what remains is a matrix effect the standards do not share.
    """
    p = ctx.points[-1]
    if p.sample_type is not SampleType.SAMPLE:
        return []
    n = assay.limits.is_bias_n
    limit = assay.limits.is_bias_pct
    m = 3
    now = _bias_at(ctx, len(ctx.points) - 1, n, m)
    if now is None or abs(now[0]) <= limit:
        return []
    prev_idx = next(
        (
            i
            for i in range(len(ctx.points) - 2, -1, -1)
            if ctx.points[i].sample_type is SampleType.SAMPLE
        ),
        None,
    )
    before = _bias_at(ctx, prev_idx, n, m) if prev_idx is not None else None
    if before is not None and abs(before[0]) > limit and (before[0] > 0) == (now[0] > 0):
        return []  # the same episode was raised on an earlier sample
    diff, s_mean, r_mean = now
    return [
        _flag(
            "IS_BIAS",
            S.WARNING,
            f"The last {n} samples' IS averages {_fmt(s_mean)}, {diff:+.0f} % against the "
            f"nearest {m} calibrators/QCs ({_fmt(r_mean)}); limit ±{limit:g} %. The samples "
            "behave differently from the standards.",
            "Investigate a matrix effect (suppression, anticoagulant, hemolysis) or an IS "
            "spiking difference between samples and standards before reporting.",
            diff,
            limit,
            SRC_BIAS,
            samples_mean=s_mean,
            standards_mean=r_mean,
        )
    ]


def evaluate_is(points: Sequence[HistoryPoint], assay: Assay) -> list[Flag]:
    """IS window, drift and bias for the last of ``points`` (history + current).

    An external calibration has no IS: nothing to judge here (the pipeline says so
    on every result with an EXTERNAL_CALIBRATION flag).
    """
    if not points or assay.is_quant is None:
        return []
    p = points[-1]
    if p.sample_type not in IS_BEARING or p.error or not p.is_area or p.is_area <= 0:
        return []
    ctx = is_context(points, assay)
    flags = _is_window_flag(ctx, assay)
    if not ctx.outside[-1]:
        flags += _is_drift_flag(ctx, assay)
    flags += _is_bias_flag(ctx, assay)
    return flags
