"""The audit trail's hash chain: pure functions over event records.

Each event (who, when, what, old → new, why) carries the SHA-256 of the
previous event's hash followed by its own canonical JSON, so changing,
inserting or removing any stored event breaks every hash after it
(21 CFR Part 11 §11.10(e): record changes must not obscure what was
recorded before). What a chain cannot show by itself is its newest events
cut off: ``head`` is printed by ``asnmon audit verify`` and on the report,
so a copy of the head taken at sign-off exposes a truncation.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of the first event


@dataclass(frozen=True, slots=True)
class Event:
    """One audit event as stored; ``old``/``new`` are canonical JSON text (or None)."""

    event_id: int
    at_utc: datetime  # UTC, naive (as DuckDB's TIMESTAMP holds it), microseconds
    run_id: str | None
    injection_id: int | None
    actor: str
    role: str
    action: str
    target: str
    old: str | None
    new: str | None
    reason: str
    prev_hash: str
    hash: str


def canonical(value: Any) -> str:
    """JSON that hashes the same on every machine: sorted keys, no spaces, no NaN."""
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _plain(value: Any) -> Any:
    """Values as JSON can hold them exactly: NaN/inf as text, times as ISO text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=canonical) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def as_json(value: Any) -> str | None:
    """An old/new value as stored: canonical JSON, None for "nothing"."""
    return None if value is None else canonical(value)


def _getter(e: Event | Mapping[str, Any]) -> Any:
    if isinstance(e, Mapping):
        return e.get
    return lambda key: getattr(e, key)


def event_body(e: Event | Mapping[str, Any]) -> str:
    """The canonical text an event's hash covers (everything but the hashes)."""
    get = _getter(e)
    at = get("at_utc")
    return canonical(
        {
            "event_id": int(get("event_id")),
            "at": at.isoformat(timespec="microseconds") if isinstance(at, datetime) else at,
            "run_id": get("run_id"),
            "injection_id": get("injection_id"),
            "actor": get("actor"),
            "role": get("role"),
            "action": get("action"),
            "target": get("target"),
            "old": get("old"),
            "new": get("new"),
            "reason": get("reason"),
        }
    )


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def seal(
    *,
    event_id: int,
    at_utc: datetime,
    prev_hash: str,
    run_id: str | None,
    injection_id: int | None,
    actor: str,
    role: str,
    action: str,
    target: str,
    old: str | None,
    new: str | None,
    reason: str,
) -> Event:
    """A new event, hashed onto ``prev_hash``."""
    fields: dict[str, Any] = {
        "event_id": event_id,
        "at_utc": at_utc,
        "run_id": run_id,
        "injection_id": injection_id,
        "actor": actor,
        "role": role,
        "action": action,
        "target": target,
        "old": old,
        "new": new,
        "reason": reason,
    }
    return Event(**fields, prev_hash=prev_hash, hash=chain_hash(prev_hash, event_body(fields)))


def verify_chain(
    events: Iterable[Event | Mapping[str, Any]], *, prev: str = GENESIS, first_id: int = 1
) -> list[str]:
    """Every problem in the chain, in order, the first broken event named first.

    ``prev``/``first_id``: where the events take up the chain when they are its
    continuation past an event already verified (its hash, its id + 1).
    """
    problems: list[str] = []
    expected_id = first_id
    for e in events:
        get = _getter(e)
        event_id = int(get("event_id"))
        what = f"event {event_id} ({get('action')} by {get('actor')} at {get('at_utc')})"
        if event_id != expected_id:
            problems.append(
                f"event {expected_id} is missing: the next stored event is {event_id} "
                "(events were removed from the trail)"
            )
        if get("prev_hash") != prev:
            problems.append(
                f"{what}: its link to the event before does not match (an event before it "
                "was changed, removed or inserted)"
            )
        if chain_hash(str(get("prev_hash")), event_body(e)) != get("hash"):
            problems.append(f"{what}: its content does not match its hash (it was changed)")
        prev = str(get("hash"))
        expected_id = event_id + 1
    return problems


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What one verification found, and the newest event it vouches for.

    ``problems`` empty: intact up to ``event_id`` (0 for an empty trail), whose
    hash is ``hash``; a later check need only walk the events after it.
    """

    problems: tuple[str, ...]
    event_id: int = 0
    hash: str = GENESIS
