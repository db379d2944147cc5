"""The one function that writes an audit event, shared by the review mixins.

``append_event`` runs inside the caller's transaction (``with store._tx() as
con:``), so a change and the event that records it commit together or not at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from asnmon.audit import GENESIS, as_json, seal
from asnmon.users import Actor

AUDIT_COLUMNS = (
    "event_id",
    "at_utc",
    "run_id",
    "injection_id",
    "actor",
    "role",
    "action",
    "target",
    "old",
    "new",
    "reason",
    "prev_hash",
    "hash",
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def local_text(utc: datetime) -> str:
    """A UTC time as the lab's clock shows it, with the zone and its offset."""
    local = utc.replace(tzinfo=UTC).astimezone()
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def _notify(con: duckdb.DuckDBPyConnection, run_id: str | None, kind: str, inj: int | None) -> None:
    """A row in ``changes``: open dashboards redraw what this touched."""
    con.execute(
        "INSERT INTO changes (changed_at, run_id, kind, injection_id) VALUES (?,?,?,?)",
        [_now(), run_id, kind, inj],
    )


def append_event(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str | None,
    injection_id: int | None,
    actor: Actor,
    action: str,
    target: str,
    old: Any,
    new: Any,
    reason: str,
) -> int:
    """One event hashed onto the chain, in the caller's transaction; its id."""
    last = con.execute(
        "SELECT event_id, hash FROM audit_events ORDER BY event_id DESC LIMIT 1"
    ).fetchone()
    event_id = int(last[0]) + 1 if last else 1
    e = seal(
        event_id=event_id,
        at_utc=_now(),
        prev_hash=str(last[1]) if last else GENESIS,
        run_id=run_id,
        injection_id=injection_id,
        actor=actor.name,
        role=actor.role,
        action=action,
        target=target,
        old=as_json(old),
        new=as_json(new),
        reason=(reason or "").strip(),
    )
    con.execute(
        f"INSERT INTO audit_events ({', '.join(AUDIT_COLUMNS)}) VALUES "
        f"({','.join('?' * len(AUDIT_COLUMNS))})",
        [getattr(e, c) for c in AUDIT_COLUMNS],
    )
    return event_id
