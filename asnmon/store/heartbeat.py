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
        with self._tx() as con:
            now = _now()
            for key, value in values.items():
                con.execute(
                    "INSERT OR REPLACE INTO monitor_status VALUES (?,?,?)",
                    [key, json.dumps(_shown(value), default=str), now],
                )
