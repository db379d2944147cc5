"""Alert events read back from the store: new fail flags and verdict changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asnmon.alerts.events import AlertEvent, event_from_flag, event_from_verdict
from asnmon.records import Flag, Severity

if TYPE_CHECKING:
    from asnmon.store import Store

_NOTEWORTHY = frozenset({"at risk", "fail"})  # verdicts whose arrival or departure alerts


class AlertFeed:
    """New fail flags and verdict changes, read from the store by whoever calls ``poll``.

    Reading the store (rather than hooking every place a flag is written)
    catches all of them: per-injection flags, INCOMPLETE/CONVERT_ERROR,
    run-level flags after a refit, Westgard rules. Run-level flags are
    re-inserted whenever the run is re-judged, so each (run, injection, code)
    alerts once. History present at construction is not alerted.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._seq = store.last_change()
        self._flag_id = store.max_flag_id()
        self._verdicts = {r: v for r, (v, _) in store.run_verdicts().items()}
        self._seen: set[tuple[str, int | None, str]] = set()

    def poll(self) -> list[AlertEvent]:
        """Events since the last call; one cheap query when nothing changed."""
        seq = self.store.last_change()
        if seq == self._seq:
            return []
        self._seq = seq
        events: list[AlertEvent] = []
        for row in self.store.alert_flags_since(self._flag_id):
            self._flag_id = max(self._flag_id, int(row["flag_id"]))
            key = (str(row["run_id"]), row["injection_id"], str(row["code"]))
            if key in self._seen:
                continue
            self._seen.add(key)
            flag = Flag(
                code=str(row["code"]),
                severity=Severity(row["severity"]),
                message=row["message"] or "",
                action=row["action"] or "",
            )
            injection = row["injection_id"]
            events.append(
                event_from_flag(
                    key[0], flag, row["file"], int(injection) if injection is not None else None
                )
            )
        verdicts = self.store.run_verdicts()
        for run_id, (verdict, reason) in verdicts.items():
            old = self._verdicts.get(run_id)
            if old is not None and old != verdict and {old, verdict} & _NOTEWORTHY:
                events.append(event_from_verdict(run_id, old, verdict, reason))
            self._verdicts[run_id] = verdict
        return events
