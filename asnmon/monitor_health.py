"""The monitor's health: what ``/healthz`` and the banner say, and the worker's watchdog.

A monitor that stops must say so: the watchdog thread restarts a dead
ingestion worker (re-queueing the file it held) and reports a stuck one;
``health()`` collects the database's, the worker's, the worklists' and the
instrument's problems. Part of ``asnmon.monitor.Monitor``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from asnmon.actions import HookResult
from asnmon.alerts import MONITOR_EVENTS, Alerter, event_from_monitor
from asnmon.dbguard import DatabaseGuard
from asnmon.monitor_status import MonitorStatus
from asnmon.records import Severity
from asnmon.runbook import RunBook
from asnmon.settings import Settings
from asnmon.watch import FolderWatcher, WatchEvent

log = logging.getLogger("asnmon.monitor")

WATCHDOG_EVERY = 1.0  # s between looks at the worker's heartbeat


class MonitorHealth:
    """Health, announcements and the watchdog (attributes set by ``Monitor.__init__``)."""

    settings: Settings
    out: Callable[[str], None]
    db: DatabaseGuard
    watcher: FolderWatcher
    runs: RunBook
    beacon: MonitorStatus
    alerter: Alerter
    _queue: queue.Queue[Any]
    _worker: threading.Thread
    _stopped: threading.Event
    _beat_at: float
    _doing: str
    _worker_restarts: int
    _worker_problem: str | None
    _last_injection: str | None
    _last_error: str | None
    _notes: list[str]
    _current: WatchEvent | None
    _work: Callable[[], None]

    # ------------------------------------------------------------ health

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` answers and the banner shows; ``ok`` False means 503."""
        db = self.db.health()
        st = self.watcher.status()
        age = time.monotonic() - self._beat_at
        if not self._worker.is_alive() and not self._stopped.is_set():
            worker = "dead"
        elif age > self.settings.stuck_after:
            worker = "stuck"
        else:
            worker = "alive"
        problems: list[str] = []
        if not db.ok:
            problems.append(f"DATABASE PROBLEM: {db.problem}")
        if worker != "alive" or self._worker_problem:
            problems.append(f"WORKER PROBLEM: {self._worker_problem or worker}")
        problems.extend(self.runs.problems())
        problems.extend(self.beacon.problems())
        return {
            "ok": db.ok and worker == "alive",
            "database": db.ok,
            "database_problem": db.problem,
            "database_problem_since": db.since,
            "database_failures": db.failures,
            "database_notice": db.notice,
            "worker": worker,
            "worker_doing": self._doing,
            "worker_heartbeat_age": round(age, 3),
            "worker_restarts": self._worker_restarts,
            "watcher": st.state,
            "observer": st.observer,
            "pending": st.pending,
            "queue": self._queue.qsize(),
            "held": self.runs.held_count(),
            "last_injection": self._last_injection,
            "last_error": self._last_error or st.last_error,
            "problems": problems,
            "notes": list(self._notes[-5:]),
        }

    def _announce(self, code: str, message: str) -> None:
        """A monitor health change: terminal line, alert, and the error shown on the banner."""
        self._announce_run(code, message, None, None)

    def _announce_run(
        self, code: str, message: str, run_id: str | None, severity: Severity | None
    ) -> None:
        title = MONITOR_EVENTS[code][0]
        self._say(f"{title}: {message}")
        self.alerter.notify(event_from_monitor(code, message, run_id, severity))
        if code in ("NOT_A_FILE", "EVENTS_LOST"):
            self._notes = [*self._notes[-19:], f"{datetime.now():%H:%M:%S} {message}"]

    def _hook_done(self, result: HookResult) -> None:
        """On the hook's thread: a failed hook is shown and alerted; the monitor goes on."""
        self.beacon.wake()
        if result.ok:
            self._say(result.message)
            return
        self._last_error = result.message
        self._announce_run("ACTION_FAILED", result.message, result.trigger.run_id, None)

    def _say(self, text: str) -> None:
        self.out(f"{datetime.now():%H:%M:%S}  {text}")

    def _beat(self) -> None:
        self._beat_at = time.monotonic()

    # ------------------------------------------------------------ the watchdog

    def _new_worker(self) -> threading.Thread:
        return threading.Thread(target=self._work_to_the_end, name="asnmon-ingest", daemon=True)

    def _work_to_the_end(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # the thread's last word: the watchdog restarts it
            log.exception("the ingestion worker died")
            self._worker_problem = f"the ingestion worker died: {type(exc).__name__}: {exc}"

    def _watch_worker(self) -> None:
        """Restart a dead worker, report a stuck one: a monitor that stops must say so."""
        stuck = False
        while not self._stopped.wait(WATCHDOG_EVERY):
            if not self._worker.is_alive() and not self._stopped.is_set():
                self._worker_restarts += 1
                why = self._worker_problem or "the ingestion worker stopped"
                self._announce(
                    "WORKER_PROBLEM",
                    f"{why}; restarted it (restart {self._worker_restarts}). The file it was "
                    f"handling ({self._doing}) is retried; please report this.",
                )
                self._beat()
                if self._current is not None:  # never stored: the new worker's first file
                    with self._queue.mutex:  # ``put`` would queue it behind later files
                        self._queue.queue.appendleft(self._current)
                        self._queue.unfinished_tasks += 1
                        self._queue.not_empty.notify()
                    self._current = None
                self._worker = self._new_worker()
                self._worker.start()
                self._last_error = f"{why} (restarted)"  # shown on the watcher tile
                self._worker_problem = None
                continue
            age = time.monotonic() - self._beat_at
            if age > self.settings.stuck_after and not stuck:
                stuck = True
                self._worker_problem = (
                    f"no progress for {age:.0f} s while {self._doing}; if it does not recover, "
                    "restart asnmon (files wait on disk, nothing is lost)"
                )
                self._announce("WORKER_PROBLEM", self._worker_problem)
            elif stuck and age <= self.settings.stuck_after:
                stuck = False
                self._worker_problem = None
                self._announce("WORKER_BACK", f"the ingestion worker moves again ({self._doing})")
