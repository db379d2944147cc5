"""What the night shift reads first: flags grouped by cause, ranked by what they do.

Issue 12: the banner's FAIL came from a junk file while the collapsing IS was
the last clause; eleven IS_LOW cards came before their cause, IS_DRIFT. So:

- ``IMPACT`` ranks a code by what it does to the run's *results*: a drifting
  IS or a failed curve threatens every injection still to come; a QC failure
  the run's acceptance; one unreadable file only itself. Severity breaks ties
  within a code (an escalated IS_DRIFT outranks a warning one).
- ``cause_of`` links a flag to the run-level trend that explains it: an IS_LOW
  inside a falling IS_DRIFT episode, an RT_SHIFT after an RT_TREND. Its group
  is drawn right after its cause's and carries the cause's name.
- ``group_flags`` puts flags of one code, severity and cause into one
  ``FlagGroup`` ("IS_LOW ×11, injections 62–72"); acknowledged members form
  their own groups, so an open card only ever holds open flags.
- ``run_counts`` is the ONE computation behind the banner's verdict, the open
  fail counter, the unacknowledged count and "N / M injections", so they cannot
  disagree (issue 12: "AT RISK" beside "OPEN FAIL FLAGS ✖ 13").

Pure functions over ``FlagRow`` records; the dashboard builds them from the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# What a code does to the run's results, most harmful first (higher = more urgent).
# Run-wide trends and the curve first: every later injection depends on them.
IMPACT: Mapping[str, int] = MappingProxyType(
    {
        "IS_DRIFT": 100,  # the IS collapses: every injection after the crossing is lost
        "CAL_FAIL": 95,  # no accepted curve: no sample has a number
        "RUN_FAIL": 90,  # the run cannot meet its acceptance rules
        "QC_FAIL": 85,
        "WESTGARD_1_3S": 82,
        "WESTGARD_R_4S": 82,
        "WESTGARD_2_2S": 80,
        "WESTGARD_4_1S": 78,
        "WESTGARD_10X": 78,
        "RT_TREND": 75,  # retention heading for its tolerance: identity at risk
        "IS_BIAS": 72,
        "NO_CALIBRATION": 70,
        "WESTGARD_1_2S": 60,
        "CARRYOVER": 58,  # the next samples' values are inflated
        "IS_LOW": 55,  # one injection's value is lost
        "IS_HIGH": 55,
        "NO_PEAK": 54,
        "RT_SHIFT": 53,
        "SATURATION": 50,
        "ION_RATIO": 48,
        "PEAK_TRUNCATED": 46,
        "COELUTION": 46,
        "BASELINE_UNCERTAIN": 46,
        "INCOMPLETE": 40,  # one file missing: re-inject it
        "READ_ERROR": 40,
        "CONVERT_ERROR": 40,
        "ALQ": 35,  # dilute and re-inject one sample
        "LOW_SN": 30,
        "FEW_POINTS": 30,
        "REF_LOW": 20,
        "REF_HIGH": 20,
    }
)
DEFAULT_IMPACT = 25
SEVERITY_RANK: Mapping[str, int] = MappingProxyType({"fail": 3, "warning": 2, "info": 1})
# Consequences a run-level trend explains: (cause code, its direction) -> codes.
CAUSED_BY: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"IS_DRIFT": ("IS_LOW", "IS_HIGH"), "RT_TREND": ("RT_SHIFT",)}
)


@dataclass(frozen=True, slots=True)
class FlagRow:
    """One stored flag as the screen needs it (``position``: acquisition position)."""

    flag_id: int
    code: str
    severity: str
    injection_id: int | None = None
    position: int | None = None
    sample_id: str = ""
    file: str = ""
    acks: int = 0
    message: str = ""
    action: str = ""
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    limit: float | None = None  # the flag's limit (RT_TREND: its tolerance, min)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> FlagRow:
        """From a ``Store.flags`` row (``details`` JSON text or a mapping)."""
        raw = row.get("details")
        details: Any = raw
        if isinstance(raw, str):
            try:
                details = json.loads(raw) if raw else {}
            except ValueError:
                details = {}
        if not isinstance(details, Mapping):
            details = {}
        inj = row.get("injection_id")
        pos = row.get("position")
        return cls(
            flag_id=int(row["flag_id"]),
            code=str(row["code"]),
            severity=str(row.get("severity") or "info"),
            injection_id=int(inj) if inj is not None else None,
            position=int(pos) if pos is not None else None,
            sample_id=str(row.get("sample_id") or ""),
            file=str(row.get("file") or ""),
            acks=int(row.get("acks") or 0),
            message=str(row.get("message") or ""),
            action=str(row.get("action") or ""),
            details=MappingProxyType(dict(details)),
            limit=_num(row.get("limit_value")),
        )

    @property
    def acknowledged(self) -> bool:
        return self.acks > 0

    @property
    def who(self) -> str:
        """'injection 62 (S-041)': how a person names it; never the database id."""
        if self.injection_id is None:
            return "the whole run"
        name = self.sample_id or self.file
        if self.position is None:
            return f"{name} (not in the worklist)" if name else "an unlisted injection"
        return f"injection {self.position}" + (f" ({name})" if name else "")


def impact(code: str, severity: str) -> int:
    """Rank of a flag: what its code does to the results, then its severity."""
    return 10 * IMPACT.get(code, DEFAULT_IMPACT) + SEVERITY_RANK.get(severity, 0)


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def cause_of(flag: FlagRow, causes: Sequence[FlagRow]) -> FlagRow | None:
    """The run-level trend flag that explains ``flag``, or None.

    An IS_LOW (IS_HIGH) at a position inside a falling (rising) IS_DRIFT episode
    (from its ``started_at`` to its ``ended_at``, if it ended); an RT_SHIFT at or
    after an RT_TREND's ``first_seen_at`` (to its ``ended_at``).
    """
    if flag.position is None:
        return None
    for c in causes:
        if flag.code not in CAUSED_BY.get(c.code, ()):
            continue
        d = c.details
        start = _num(d.get("started_at", d.get("first_seen_at")))
        end = _num(d.get("ended_at"))
        if start is None or flag.position < start or (end is not None and flag.position > end):
            continue
        if c.code == "IS_DRIFT":
            rate = _num(d.get("rate_pct"))
            falling = rate is None or rate < 0
            if (flag.code == "IS_LOW") != falling:
                continue
        return c
    return None


def spans(positions: Iterable[int]) -> str:
    """'62–72' / '28, 73' / '67, 69–70, 72': consecutive positions as ranges."""
    ps = sorted(set(positions))
    if not ps:
        return ""
    parts: list[str] = []
    lo = prev = ps[0]
    for p in [*ps[1:], None]:
        if p is not None and p == prev + 1:
            prev = p
            continue
        parts.append(f"{lo}" if lo == prev else f"{lo}–{prev}")
        if p is not None:
            lo = prev = p
    if len(parts) > 5:  # a long stutter reads worse than its extent
        return f"{parts[0]} … {parts[-1]}"
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class FlagGroup:
    """Flags of one code, severity and cause; all open or all acknowledged."""

    code: str
    severity: str
    members: tuple[FlagRow, ...]  # in acquisition order
    cause: FlagRow | None = None
    rank: int = 0

    @property
    def acknowledged(self) -> bool:
        return all(m.acknowledged for m in self.members)

    @property
    def title(self) -> str:
        n = len(self.members)
        return f"{self.code} ×{n}" if n > 1 else self.code

    @property
    def where(self) -> str:
        """'injections 62–72', 'injection 62 (S-041)', 'the whole run'."""
        placed = [m.position for m in self.members if m.position is not None]
        unplaced = [m for m in self.members if m.position is None]
        if len(self.members) == 1:
            return self.members[0].who
        parts = []
        if placed:
            parts.append(("injections " if len(placed) > 1 else "injection ") + spans(placed))
        if unplaced:
            runs = sum(1 for m in unplaced if m.injection_id is None)
            if runs:
                parts.append("the whole run" if runs == 1 else f"{runs} run-level")
            if len(unplaced) - runs:
                parts.append(f"{len(unplaced) - runs} not in the worklist")
        return ", ".join(parts)

    @property
    def flag_ids(self) -> tuple[int, ...]:
        return tuple(m.flag_id for m in self.members)

    @property
    def key(self) -> str:
        """Stable id of a card across refreshes: code, severity, cause, open or not."""
        cause = self.cause.flag_id if self.cause is not None else 0
        return f"{self.code}:{self.severity}:{cause}:{int(self.acknowledged)}"


def _groupable(f: FlagRow) -> bool:
    """Info flags on one injection are notes, not work: they make no card."""
    return f.severity != "info" or f.injection_id is None


def group_flags(flags: Iterable[FlagRow]) -> list[FlagGroup]:
    """Cards, most urgent first; a cause's consequences right after the cause.

    Open groups come before acknowledged ones; within each, by ``impact`` of the
    group (a consequence takes its cause's rank), then the newest first.
    """
    rows = [f for f in flags if _groupable(f)]
    causes = [f for f in rows if f.code in CAUSED_BY]
    buckets: dict[tuple[str, str, int, bool], list[FlagRow]] = {}
    cause_by_id: dict[int, FlagRow] = {}
    for f in rows:
        c = cause_of(f, causes)
        if c is not None:
            cause_by_id[c.flag_id] = c
        buckets.setdefault(
            (f.code, f.severity, c.flag_id if c is not None else 0, f.acknowledged), []
        ).append(f)
    groups: list[tuple[tuple[Any, ...], FlagGroup]] = []
    for (code, severity, cause_id, acked), members in buckets.items():
        members.sort(key=lambda m: (m.position is None, m.position or 0, m.flag_id))
        cause = cause_by_id.get(cause_id)
        own = impact(code, severity)
        rank = impact(cause.code, cause.severity) if cause is not None else own
        # a cause's card and its consequences share rank and anchor: the cause (0) first
        anchor = cause.flag_id if cause is not None else max(m.flag_id for m in members)
        sort_key = (acked, -rank, -anchor, int(cause is not None), -own)
        groups.append((sort_key, FlagGroup(code, severity, tuple(members), cause=cause, rank=rank)))
    groups.sort(key=lambda g: g[0])
    return [g for _, g in groups]


# ---------------------------------------------------------------- headline


@dataclass(frozen=True, slots=True)
class Headline:
    """One line for the banner: the most urgent open cause and what to do about it."""

    code: str
    severity: str
    text: str  # what is wrong, with its numbers
    action: str  # the first thing to do
    flag_ids: tuple[int, ...] = ()

    @property
    def short_action(self) -> str:
        """The action's first clause ("Pause the queue before the crossing"): one line."""
        for sep in (":", ";", " — "):
            cut = self.action.find(sep)
            if cut >= 12:
                return self.action[:cut]
        return self.action.removesuffix(".")

    @property
    def line(self) -> str:
        return f"{self.text} → {self.short_action}" if self.action else self.text


def first_sentence(text: str) -> str:
    """Up to the first '. ' (a decimal point is not a sentence end)."""
    text = text.strip()
    cut = text.find(". ")
    return text[: cut + 1] if cut > 0 else text


def _drift_text(f: FlagRow) -> str:
    d = f.details
    rate = _num(d.get("rate_pct"))
    level = _num(d.get("level_pct"))
    target = _num(d.get("target_pct")) or 50.0
    crossing = _num(d.get("crossing_at"))
    remaining = _num(d.get("remaining"))
    word = "falling" if rate is None or rate < 0 else "rising"
    parts = [f"IS {word}"]
    if rate is not None:
        parts.append(f" {rate:+.1f} % per injection")
    if _num(d.get("started_at")) is not None:
        parts.append(f" since injection {int(d['started_at'])}")
    if level is not None:
        parts.append(f", now {level:.0f} %")
    if d.get("ended_at") is not None:
        parts.append("; the episode has ended")
    elif crossing is not None and remaining is not None and remaining <= 0:
        parts.append(f"; passed {target:g} % at about injection {int(crossing)}")
    elif crossing is not None:
        at = _clock(d.get("crossing_time"))
        parts.append(
            f"; reaches {target:g} % at about injection {int(crossing)}"
            + (f" (≈ {at})" if at else "")
        )
    return "".join(parts)


def _clock(stamp: object) -> str:
    """HH:MM of an ISO timestamp, as it was written (the instrument's clock)."""
    if not isinstance(stamp, str) or "T" not in stamp:
        return ""
    return stamp.split("T", 1)[1][:5]


def headline(groups: Sequence[FlagGroup]) -> Headline | None:
    """The first open fail or warning group's cause and action; None when all is quiet."""
    for g in groups:
        if g.acknowledged or g.severity not in ("fail", "warning"):
            continue
        lead = g.cause if g.cause is not None and not g.cause.acknowledged else None
        top = lead or g.members[-1]
        if top.code == "IS_DRIFT":
            text = _drift_text(top)
        else:
            text = f"{g.title} ({g.where}): {first_sentence(top.message)}"
        if lead is not None:
            text += f" — {g.title} ({g.where})"
        else:  # the cause itself: say what it has done so far
            done = [
                c
                for c in groups
                if c.cause is not None and c.cause.flag_id in g.flag_ids and not c.acknowledged
            ]
            text += "".join(f" — {c.title} ({c.where})" for c in done[:2])
        return Headline(
            code=top.code,
            severity=top.severity if lead is not None else g.severity,
            text=text,
            action=first_sentence(top.action),
            flag_ids=g.flag_ids,
        )
    return None


# ---------------------------------------------------------------- counters


@dataclass(frozen=True, slots=True)
class RunCounts:
    """Every number the banner shows, from one computation (they must agree)."""

    verdict: str  # what the banner shows: "fail" while a FAIL flag is open, else the run's
    run_verdict: str  # the run's own, from its acceptance rules
    open_fail: int  # unacknowledged fail flags
    open_warning: int  # unacknowledged warnings (injection info notes excluded)
    acknowledged: int  # flags acknowledged (fail or warning)
    done: int  # worklist positions acquired
    planned: int | None  # worklist length
    unlisted: int  # injections not in the worklist (re-injections, extra files)

    @property
    def unacknowledged(self) -> int:
        return self.open_fail + self.open_warning

    @property
    def progress(self) -> str:
        """'29 / 29 (+2 not in the worklist)': never more done than planned."""
        text = f"{self.done} / {self.planned}" if self.planned else f"{self.done}"
        return text + (f" (+{self.unlisted} not in the worklist)" if self.unlisted else "")


def run_counts(
    run_verdict: str | None,
    flags: Iterable[FlagRow],
    positions: Iterable[int | None],
    planned: int | None,
) -> RunCounts:
    """The banner's numbers. ``positions``: each stored injection's worklist position."""
    open_fail = open_warning = acked = 0
    for f in flags:
        if not _groupable(f) or f.severity not in ("fail", "warning"):
            continue
        if f.acknowledged:
            acked += 1
        elif f.severity == "fail":
            open_fail += 1
        else:
            open_warning += 1
    placed: set[int] = set()
    unlisted = 0
    for p in positions:
        if p is None:
            unlisted += 1
        elif p in placed:
            unlisted += 1  # a second injection at one position: a re-injection
        else:
            placed.add(p)
    own = (run_verdict or "pending").lower()
    return RunCounts(
        verdict="fail" if open_fail else own,
        run_verdict=own,
        open_fail=open_fail,
        open_warning=open_warning,
        acknowledged=acked,
        done=len(placed),
        planned=planned,
        unlisted=unlisted,
    )


# ---------------------------------------------------------------- forecasts


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
    rate, lo, hi = (_num(d.get(k)) for k in ("rate_pct", "rate_low_pct", "rate_high_pct"))
    crossing = _num(d.get("crossing_at"))
    remaining = _num(d.get("remaining"))
    target = _num(d.get("target_pct")) or 50.0
    if rate is None or crossing is None:
        return None
    conf = _num(d.get("confidence"))
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
    early, late = _num(d.get("crossing_early")), _num(d.get("crossing_late"))
    span = f", range {int(early)}–{int(late)}" if early is not None and late is not None else ""
    at = _clock(d.get("crossing_time"))
    when = f", ≈ {at}" if at else ""
    soon = f", in about {remaining:.0f} injection(s)" if remaining is not None else ""
    text = f"{head}: reaches {target:g} % at about injection {int(crossing)}{span}{when}{soon}."
    urgency = _urgency(remaining, bool(d.get("escalated")), escalate_n)
    return Forecast(f.code, text + _after_text(after), urgency, int(crossing), remaining, after)


def _rt_forecast(f: FlagRow, escalate_n: int) -> Forecast | None:
    d = f.details
    rate = _num(d.get("rate_min_per_injection"))
    lo, hi = _num(d.get("rate_low")), _num(d.get("rate_high"))
    crossing, remaining = _num(d.get("crossing_at")), _num(d.get("remaining"))
    if rate is None or crossing is None:
        return None
    ci = f" (95 % CI {60 * lo:+.2f} to {60 * hi:+.2f})" if lo is not None and hi is not None else ""
    tol = f.limit
    limit = f"its ±{tol:.3f} min tolerance" if tol is not None else "its tolerance"
    late = _num(d.get("crossing_late"))
    at = _clock(d.get("crossing_time"))
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
