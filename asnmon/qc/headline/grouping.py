"""Flags of one code, severity and cause as one card, cards in order of urgency."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asnmon.qc.headline.ranking import CAUSED_BY, cause_of, impact
from asnmon.qc.headline.rows import FlagRow, makes_card


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


def group_flags(flags: Iterable[FlagRow]) -> list[FlagGroup]:
    """Cards, most urgent first; a cause's consequences right after the cause.

    Open groups come before acknowledged ones; within each, by ``impact`` of the
    group (a consequence takes its cause's rank), then the newest first.
    """
    rows = [f for f in flags if makes_card(f)]
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
