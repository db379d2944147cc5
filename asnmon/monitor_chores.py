"""The monitor's idle-time chores, each contained so none can stop the worker.

Fit waiting calibrators, re-check held worklists, write the status and the
heartbeat, look for new alerts (and start the on_fail hook), export to the
share, take backups and answer ``asnmon backup`` requests. Part of
``asnmon.monitor.Monitor``; run by the worker only.
"""

from __future__ import annotations

import json
import logging
import queue
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from asnmon.alerts import Alerter, AlertFeed
from asnmon.dbguard import DatabaseGuard
from asnmon.errors import AsnmonError
from asnmon.monitor_status import MonitorStatus
from asnmon.runbook import RunBook
from asnmon.settings import Settings
from asnmon.share import ShareExporter
from asnmon.store import STORE_FAILURES, Store, one_line
from asnmon.watch import FolderWatcher, WatchEvent

log = logging.getLogger("asnmon.monitor")

FEED_EVERY = 5.0  # s between looks for new fail flags to alert on
# The write-ahead log is merged into the database file (``Store.checkpoint``) when the
# queue runs dry and it holds this much (~50 injections; merged in well under a second),
# and while files are pending once it passes DuckDB's own checkpoint_threshold (16 MB),
# which DuckDB itself skips whenever another transaction runs beside the commit.
CHECKPOINT_IDLE_BYTES = 1 << 20
CHECKPOINT_BUSY_BYTES = 16 << 20
CHECKPOINT_BUSY_EVERY = 60.0  # s between tries while busy
IDENTITY_EVERY = 2.0  # s between checks that the database file is still the one opened


def backup_request_path(db: Path) -> Path:
    """Where ``asnmon backup`` leaves a request for the monitor that holds ``db``."""
    return db.with_name(db.name + ".backup-request")


class MonitorChores:
    """Idle-time work (attributes set by ``Monitor.__init__``)."""

    settings: Settings
    store: Store
    out: Callable[[str], None]
    db: DatabaseGuard
    watcher: FolderWatcher
    runs: RunBook
    beacon: MonitorStatus
    alerter: Alerter
    share: ShareExporter | None
    _queue: queue.Queue[Any]
    _doing: str
    _unflushed: bool
    _last_error: str | None
    _last_injection: str | None
    _last_status: dict[str, object]
    _feed: AlertFeed | None
    _next_feed: float
    _next_backup: float
    _next_checkpoint: float
    _checkpoint_declined_until: float
    _check_identity: Callable[..., str]
    _database_answers: Callable[[], bool]
    health: Callable[[], dict[str, Any]]
    _say: Callable[[str], None]

    # ------------------------------------------------------------ idle time

    def _idle_safely(self) -> None:
        """Idle chores, each contained: none of them may stop the worker."""
        trouble = self.db.in_trouble
        if trouble and (not self.db.due() or not self._database_answers()):
            self._beat_busy(waiting=True)  # not ingesting: the status file says why
            return
        steps: tuple[tuple[str, Callable[[], object]], ...] = (
            ("checking the database file", lambda: self._check_identity(every=IDENTITY_EVERY)),
            ("fitting waiting calibrators", self._flush_idle),
            ("re-checking held worklists", self._release_held),
            ("writing the monitor status", self._write_status),
            ("checkpointing the database", lambda: self._checkpoint(CHECKPOINT_IDLE_BYTES)),
            ("looking for new alerts", self._poll_feed),
            ("exporting to the share", self._share),
            ("taking a backup", lambda: self._maybe_backup(time.monotonic())),
            ("answering a backup request", self._answer_backup_request),
        )
        for doing, step in steps:
            self._doing = doing
            try:
                step()
            except STORE_FAILURES as exc:
                self.runs.forget()
                self.db.failed(doing, one_line(exc))
                return
            except Exception as exc:  # documented thread boundary (see _handle_safely)
                log.exception("while %s", doing)
                self._last_error = f"while {doing}: {type(exc).__name__}: {exc}"
                self.out(f"ERROR {self._last_error}")
        if trouble:
            self.db.recovered()

    def _flush_idle(self) -> None:
        self._flush()
        self._unflushed = False  # only now: the curve and re-quantified results are committed

    def _checkpoint(self, at_least: int) -> None:
        """Merge the write-ahead log once it holds ``at_least`` bytes (see the constants)."""
        before = self.store.wal_bytes()
        began = time.monotonic()
        if before < at_least or began < self._checkpoint_declined_until:
            return
        done = self.store.checkpoint()
        if not done:  # another transaction runs: not every idle moment, once a minute
            self._checkpoint_declined_until = began + CHECKPOINT_BUSY_EVERY
        log.info(
            "checkpoint %s: write-ahead log %.1f MB -> %.1f MB in %.2f s",
            "done" if done else "declined (another transaction)",
            before / 2**20,
            self.store.wal_bytes() / 2**20,
            time.monotonic() - began,
        )

    def _checkpoint_busy(self) -> None:
        """While files are pending: a checkpoint once a minute at most, past 16 MB."""
        now = time.monotonic()
        if now < self._next_checkpoint or self.db.in_trouble or self._queue.qsize() == 0:
            return  # (an empty queue: the idle path checkpoints)
        self._next_checkpoint = now + CHECKPOINT_BUSY_EVERY
        try:
            self._checkpoint(CHECKPOINT_BUSY_BYTES)
        except STORE_FAILURES as exc:  # the next file's write meets it and says so
            log.warning("checkpoint while busy failed: %s", one_line(exc))

    def _release_held(self) -> None:
        for path in self.runs.take_released():
            self._queue.put(WatchEvent("ready", path, f"{path.name}: worklist fixed", time.time()))

    def _poll_feed(self) -> None:
        now = time.monotonic()
        if now >= self._next_feed:  # new fail flags and verdict changes -> alerts
            self._next_feed = now + FEED_EVERY
            if self._feed is None:
                self._feed = AlertFeed(self.store)
            events = self._feed.poll()
            self.alerter.notify_all(events)
            self.beacon.act_on(events)

    def _share(self) -> None:
        if self.share is not None:
            self.share.maybe_export()

    def _maybe_backup(self, now: float) -> None:
        """The monitor's own backups: no other process may open its database meanwhile."""
        folder = self.settings.backup_dir
        if not folder or now < self._next_backup or self.settings.backup_every <= 0:
            return
        self._next_backup = now + self.settings.backup_every * 3600
        target = Path(folder) / f"asnmon-{datetime.now():%Y%m%d-%H%M%S}.duckdb"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.store.backup(target)
        except (OSError, AsnmonError) as exc:
            self._last_error = f"backup to {target} failed: {exc}"
            self.out(f"{datetime.now():%H:%M:%S}  BACKUP FAILED: {exc}")
            return
        keep = max(1, self.settings.backup_keep)
        for old in sorted(Path(folder).glob("asnmon-*.duckdb"))[:-keep]:
            old.unlink(missing_ok=True)
        self.out(f"{datetime.now():%H:%M:%S}  backup -> {target}")

    def _answer_backup_request(self) -> None:
        """``asnmon backup`` from another process: DuckDB lets only us read the file."""
        request = backup_request_path(self.store.path)
        if not request.exists():
            return
        try:
            ask = json.loads(request.read_text("utf-8"))
            request.unlink()
            target = Path(ask["to"])
            done = request.with_name(f"{request.name}.{ask['id']}.done")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed backup request %s: %s", request, exc)
            request.unlink(missing_ok=True)
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            answer = {"ok": True, "path": str(self.store.backup(target))}
        except (OSError, AsnmonError) as exc:
            answer = {"ok": False, "error": str(exc)}
        done.write_text(json.dumps(answer), "utf-8")
        self.out(f"{datetime.now():%H:%M:%S}  backup on request -> {answer}")

    def _flush(self) -> None:
        for cal in self.runs.flush():
            self._say(f"calibration v{cal.version}: {cal.reason}")

    def _status_values(self) -> dict[str, object]:
        """The monitor's own keys of the heartbeat (the beacon adds the run's)."""
        st = self.watcher.status()
        health = self.health()
        queued = self._queue.qsize()
        return {
            "watcher": st.state,
            "folder": str(st.folder),
            "observer": st.observer,
            "pending": st.pending,
            "queue": queued,
            # Files seen and not yet stored: settling, queued for the worker, or held
            # on a worklist. A catch-up says how far behind it is.
            "backlog": st.pending + queued + int(health["held"]),
            "last_error": self._last_error or st.last_error,
            "last_injection": self._last_injection,
            "problems": health["problems"],
            "notes": health["notes"],
        }

    def _write_status(self, force: bool = False, *, timer_only: bool = False) -> None:
        status = self._status_values()
        # The heartbeat writes on its timer too, so readers can tell a quiet monitor
        # from a dead one; a change is written at once (at idle moments: while busy,
        # ``timer_only``, so a backlog is not slowed by a status write per file).
        changed = status != self._last_status
        if self.beacon.beat(status, force=force or changed, timer_only=timer_only):
            self._last_status = status

    def _beat_busy(self, *, waiting: bool = False) -> None:
        """While files are pending: the heartbeat on its timer, contained.

        The idle path alone wrote it, so a catch-up of 1,645 files left the status
        file 15 min old and the tile said "monitor not running". If the database
        does not answer (a full disk being retried), the status file still says the
        monitor is alive and why it is not ingesting.
        """
        if not waiting and self._queue.qsize() == 0:
            return  # the queue ran dry: the idle path beats within IDLE s
        if not self.beacon.timer_due():
            return
        try:
            self._write_status(timer_only=True)
        except STORE_FAILURES as exc:
            log.warning("heartbeat: the database does not answer (%s)", one_line(exc))
            try:
                self.beacon.beat_file_only(self._status_values())
            except Exception:  # documented thread boundary: the heartbeat never stops work
                log.exception("while writing the status file")
        except Exception:  # documented thread boundary (see _idle_safely)
            log.exception("while writing the monitor status")
