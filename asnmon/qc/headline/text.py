"""The banner's one line: the most urgent open cause, its numbers and its action."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from asnmon.qc.headline.grouping import FlagGroup
from asnmon.qc.headline.rows import FlagRow, finite, hhmm


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
    rate = finite(d.get("rate_pct"))
    level = finite(d.get("level_pct"))
    target = finite(d.get("target_pct")) or 50.0
    crossing = finite(d.get("crossing_at"))
    remaining = finite(d.get("remaining"))
    word = "falling" if rate is None or rate < 0 else "rising"
    parts = [f"IS {word}"]
    if rate is not None:
        parts.append(f" {rate:+.1f} % per injection")
    if finite(d.get("started_at")) is not None:
        parts.append(f" since injection {int(d['started_at'])}")
    if level is not None:
        parts.append(f", now {level:.0f} %")
    if d.get("ended_at") is not None:
        parts.append("; the episode has ended")
    elif crossing is not None and remaining is not None and remaining <= 0:
        parts.append(f"; passed {target:g} % at about injection {int(crossing)}")
    elif crossing is not None:
        at = hhmm(d.get("crossing_time"))
        parts.append(
            f"; reaches {target:g} % at about injection {int(crossing)}"
            + (f" (≈ {at})" if at else "")
        )
    return "".join(parts)


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
