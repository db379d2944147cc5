"""The monitor's heartbeat in the database: status keys written without a change row.

``Writes.set_status`` records a change, which makes every open dashboard page
rebuild its view; a heartbeat every ``heartbeat_every`` s that only moves the
clock must not. The monitor uses ``set_status`` when something a reader shows
changed (the instrument stalled, a problem appeared) and ``beat`` otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from asnmon.store._sql import _now, _shown
from asnmon.store.base import StoreBase


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
