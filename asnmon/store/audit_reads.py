"""Store mixin: reading the audit trail and verifying it, whole or past a verified event.

Verifying re-hashes every event (about 1 s at 10,000 events). ``asnmon audit
verify`` and the report walk the whole chain; the dashboard's sign-off pane,
redrawn every few seconds, walks only the events after the newest one it
verified (``check_audit(since)``), anchored on that event's stored hash.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from asnmon.audit import GENESIS, ChainCheck, Event, chain_hash, event_body, verify_chain
from asnmon.store.trail import AUDIT_COLUMNS
from asnmon.store.users import UsersMixin

# What a signature's meaning is recorded as in the trail.
SIGN_ACTIONS = {"reviewed": "review", "approved": "approve", "reopened": "reopen"}


class AuditReads(UsersMixin):
    """The trail's reads and its verification for ``Store``."""

    def audit_events(
        self, run_id: str | None = None, injection_id: int | None = None
    ) -> pl.DataFrame:
        """The trail, oldest first; filtered to one run and/or one injection."""
        if not self._has_table("audit_events"):
            return pl.DataFrame(schema=dict.fromkeys(AUDIT_COLUMNS, pl.String))
        where: list[str] = []
        params: list[Any] = []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if injection_id is not None:
            where.append("injection_id = ?")
            params.append(injection_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self._frame(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_events {clause} ORDER BY event_id",
            params,
        )

    def audit_head(self) -> tuple[int, str]:
        """The newest event's id and hash (0 and the genesis hash for an empty trail)."""
        if not self._has_table("audit_events"):
            return 0, GENESIS
        row = (
            self.reader()
            .execute("SELECT event_id, hash FROM audit_events ORDER BY event_id DESC LIMIT 1")
            .fetchone()
        )
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def verify_audit(self) -> list[str]:
        """Every problem with the trail (empty: intact), the first broken event first.

        Besides the chain itself, each signature and acknowledgement must match the
        event that recorded it: editing a signature's name in its own table shows too.
        """
        return list(self.check_audit().problems)

    def check_audit(self, since: ChainCheck | None = None) -> ChainCheck:
        """The trail verified: whole, or only past ``since`` (an earlier intact check).

        The event ``since`` vouched for must still be stored with its hash; if it
        is not, or ``since`` found problems, the whole chain is walked again, so a
        problem is always named as the full check names it. Signatures and
        acknowledgements are matched to their events every time (one query each).
        """
        if not self._has_table("audit_events"):
            return ChainCheck(())
        cur = self.reader()
        start = since if since is not None and self._anchored(cur, since) else ChainCheck(())
        sql = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_events"
        if start.event_id:  # the chain's continuation past a verified event
            rows = cur.execute(f"{sql} WHERE event_id > ? ORDER BY event_id", [start.event_id])
        else:
            rows = cur.execute(f"{sql} ORDER BY event_id")
        events = [Event(*r) for r in rows.fetchall()]
        problems = verify_chain(events, prev=start.hash, first_id=start.event_id + 1)
        problems += _record_problems(cur)
        if events:
            return ChainCheck(tuple(problems), events[-1].event_id, events[-1].hash)
        return ChainCheck(tuple(problems), start.event_id, start.hash)

    @staticmethod
    def _anchored(cur: duckdb.DuckDBPyConnection, since: ChainCheck) -> bool:
        """``since`` was intact and its newest event is stored once, unchanged, same hash."""
        if since.problems or since.event_id <= 0:
            return False
        rows = cur.execute(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_events WHERE event_id = ?",
            [since.event_id],
        ).fetchall()
        if len(rows) != 1:
            return False
        e = Event(*rows[0])
        return e.hash == since.hash and chain_hash(e.prev_hash, event_body(e)) == e.hash


def _record_problems(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Signatures and acknowledgements that do not match the audit event recording them."""
    meaning_action = " ".join(f"WHEN '{m}' THEN '{a}'" for m, a in SIGN_ACTIONS.items())
    problems: list[str] = []
    signatures: list[Any] = cur.execute(
        "SELECT s.event_id, s.meaning, s.name, s.run_id FROM signatures s "
        "LEFT JOIN audit_events e ON e.event_id = s.event_id "
        "WHERE e.hash IS NULL OR e.actor IS DISTINCT FROM s.name "
        "OR e.run_id IS DISTINCT FROM s.run_id "
        f"OR e.action IS DISTINCT FROM (CASE s.meaning {meaning_action} END) "
        "ORDER BY s.event_id"
    ).fetchall()
    for event_id, meaning, name, run_id in signatures:
        problems.append(
            f"signature {meaning!r} by {name} on run {run_id} does not match audit "
            f"event {event_id} (the signature table was changed)"
        )
    acks: list[Any] = cur.execute(
        "SELECT a.event_id, a.by_name, a.flag_id FROM acknowledgements a "
        "LEFT JOIN audit_events e ON e.event_id = a.event_id "
        "WHERE a.event_id IS NOT NULL AND (e.hash IS NULL "
        "OR e.actor IS DISTINCT FROM a.by_name OR e.action IS DISTINCT FROM 'acknowledge') "
        "ORDER BY a.event_id, a.flag_id"
    ).fetchall()
    for event_id, by_name, flag_id in acks:
        problems.append(
            f"the acknowledgement of flag {flag_id} by {by_name} does not match audit "
            f"event {event_id} (the acknowledgements table was changed)"
        )
    return problems
