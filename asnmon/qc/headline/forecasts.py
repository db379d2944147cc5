"""The live IS_DRIFT and RT_TREND forecasts as the banner shows them, with urgency."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from asnmon.qc.headline.rows import FlagRow, finite, hhmm


@dataclass(frozen=True, slots=True)
class Forecast:
    """An IS_DRIFT / RT_TREND forecast as the banner shows it, with its urgency.

    ``urgency``: "fail" once the core escalated the flag (the latest plausible
    crossing is within ``limits.is_drift_escalate_n`` injections) or the limit is
    already crossed; "warning" within twice that; else "info". It escalates as
    the forecast shortens, whether or not someone acknowledged the flag.
    """

    code: str
    text: str
    urgency: str
    crossing_at: int | None
    remaining: float | None
    samples_after: tuple[tuple[int | None, str], ...] = ()


def _after_text(samples: Sequence[tuple[int | None, str]], show: int = 4) -> str:
    names = [f"{sid} ({pos})" if pos is not None else sid for pos, sid in samples[:show]]
    more = f" … +{len(samples) - show}" if len(samples) > show else ""
    return f" Worklist after it ({len(samples)}): {', '.join(names)}{more}." if names else ""


def _samples_after(raw: object) -> tuple[tuple[int | None, str], ...]:
    out: list[tuple[int | None, str]] = []
    for item in raw if isinstance(raw, list | tuple) else ():
        if isinstance(item, list | tuple) and len(item) == 2:
            pos = item[0] if isinstance(item[0], int) and not isinstance(item[0], bool) else None
            out.append((pos, str(item[1])))
    return tuple(out)


def _urgency(remaining: float | None, escalated: bool, escalate_n: int) -> str:
    if escalated or (remaining is not None and remaining <= escalate_n):
        return "fail"
    if remaining is not None and remaining <= 2 * escalate_n:
        return "warning"
    return "info"


def _is_forecast(f: FlagRow, escalate_n: int) -> Forecast | None:
    d = f.details
    rate, lo, hi = (finite(d.get(k)) for k in ("rate_pct", "rate_low_pct", "rate_high_pct"))
    crossing = finite(d.get("crossing_at"))
    remaining = finite(d.get("remaining"))
    target = finite(d.get("target_pct")) or 50.0
    if rate is None or crossing is None:
        return None
    conf = finite(d.get("confidence"))
    ci = (
        f" ({100 * conf:.0f} % CI {lo:+.1f} to {hi:+.1f})"
        if conf is not None and lo is not None and hi is not None
        else ""
    )
    after = _samples_after(d.get("samples_after"))
    head = f"IS {rate:+.1f} % per injection{ci}"
    if remaining is not None and remaining <= 0:
        text = (
            f"{head}: passed {target:g} % at about injection {int(crossing)}; the injections "
            "since are outside the IS window."
        )
        return Forecast(f.code, text, "fail", int(crossing), remaining, after)
    early, late = finite(d.get("crossing_early")), finite(d.get("crossing_late"))
    span = f", range {int(early)}–{int(late)}" if early is not None and late is not None else ""
    at = hhmm(d.get("crossing_time"))
    when = f", ≈ {at}" if at else ""
    soon = f", in about {remaining:.0f} injection(s)" if remaining is not None else ""
    text = f"{head}: reaches {target:g} % at about injection {int(crossing)}{span}{when}{soon}."
    urgency = _urgency(remaining, bool(d.get("escalated")), escalate_n)
    return Forecast(f.code, text + _after_text(after), urgency, int(crossing), remaining, after)


def _rt_forecast(f: FlagRow, escalate_n: int) -> Forecast | None:
    d = f.details
    rate = finite(d.get("rate_min_per_injection"))
    lo, hi = finite(d.get("rate_low")), finite(d.get("rate_high"))
    crossing, remaining = finite(d.get("crossing_at")), finite(d.get("remaining"))
    if rate is None or crossing is None:
        return None
    ci = f" (95 % CI {60 * lo:+.2f} to {60 * hi:+.2f})" if lo is not None and hi is not None else ""
    tol = f.limit
    limit = f"its ±{tol:.3f} min tolerance" if tol is not None else "its tolerance"
    late = finite(d.get("crossing_late"))
    at = hhmm(d.get("crossing_time"))
    extra = ", ".join(
        x for x in (f"latest {int(late)}" if late else "", f"≈ {at}" if at else "") if x
    )
    soon = f", in about {remaining:.0f} injection(s)" if remaining is not None else ""
    text = (
        f"RT {60 * rate:+.2f} s per injection{ci}: reaches {limit} at about injection "
        f"{int(crossing)}" + (f" ({extra})" if extra else "") + f"{soon}."
    )
    return Forecast(f.code, text, _urgency(remaining, False, escalate_n), int(crossing), remaining)


def forecasts(flags: Iterable[FlagRow], *, escalate_n: int) -> list[Forecast]:
    """The live IS_DRIFT and RT_TREND forecasts (latest flag of each, episode not ended).

    ``escalate_n``: ``limits.is_drift_escalate_n``, the injections before a crossing
    at which it is time to pause the queue; most urgent first.
    """
    latest: dict[str, FlagRow] = {}
    for f in flags:
        live = f.code in ("IS_DRIFT", "RT_TREND") and f.details.get("ended_at") is None
        if live and (f.code not in latest or f.flag_id > latest[f.code].flag_id):
            latest[f.code] = f
    out = [
        fc
        for f in latest.values()
        if (fc := (_is_forecast if f.code == "IS_DRIFT" else _rt_forecast)(f, escalate_n))
    ]
    order = {"fail": 0, "warning": 1, "info": 2}
    return sorted(out, key=lambda fc: (order[fc.urgency], fc.remaining or 0.0))
