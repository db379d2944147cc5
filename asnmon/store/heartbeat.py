"""The monitor's upkeep in the database: heartbeat keys without a change row, checkpoints.

``Writes.set_status`` records a change, which makes every open dashboard page
rebuild its view; a heartbeat every ``heartbeat_every`` s that only moves the
clock must not. The monitor uses ``set_status`` when something a reader shows
changed (the instrument stalled, a problem appeared) and ``beat`` otherwise.

DuckDB checkpoints its write-ahead log by itself once it passes
``checkpoint_threshold`` (16 MB), but only on a commit that has no other
transaction beside it (duckdb/duckdb#9150: "checkpoints are still blocked by
concurrent read and write transactions"). A half-read result is such a
transaction until its cursor runs again (``connection.FetchedCursor`` now
reads every result whole), and the soak's ``.wal`` grew to 36 MB. The monitor
also asks for a checkpoint itself (``checkpoint``) when its queue runs dry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import duckdb

from asnmon.store._sql import _now, _shown
from asnmon.store.base import StoreBase
from asnmon.store.connection import wal_of


class Heartbeat(StoreBase):
    def beat(self, values: Mapping[str, object]) -> None:
        """Like ``set_status`` (the same keys, one transaction), but no change is recorded."""
        if not values:
            return
        now = _now()
        rows = [(k, json.dumps(_shown(v), default=str), now) for k, v in values.items()]
        with self._tx() as con:  # one statement: DuckDB's per-statement cost dominates
            con.execute(
                "INSERT OR REPLACE INTO monitor_status VALUES " + ",".join(["(?,?,?)"] * len(rows)),
                [x for row in rows for x in row],
            )

    def wal_bytes(self) -> int:
        """Size of the write-ahead log now (0 when there is none)."""
        try:
            return wal_of(self.path).stat().st_size
        except OSError:
            return 0

    def checkpoint(self) -> bool:
        """Merge the write-ahead log into the database file; False if DuckDB declined now.

        A plain ``CHECKPOINT``, never ``FORCE CHECKPOINT`` (which aborts the
        dashboard's reads). Declined (another transaction is running) is not a
        database problem: the next idle moment tries again. Anything else raises
        like any store failure.
        """
        with self._lock:
            try:
                self._con.execute("CHECKPOINT")
            except duckdb.TransactionException:
                return False
        return True
