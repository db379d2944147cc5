"""The monitor's ingestion worker: one thread, the only writer, that cannot die of a file.

Each event from the watcher is handled here: a ready file through the run's
``RunIngestor``, INCOMPLETE / CONVERT_ERROR stored as results, folder events
said and alerted. A store failure is a DATABASE PROBLEM (``asnmon.dbguard``):
the file in hand is retried with back-off and the queue waits behind it, so
files are stored in the order they came, once. Part of
``asnmon.monitor.Monitor`` (attributes set by its ``__init__``).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from asnmon.alerts import Alerter, AlertFeed, event_from_watch
from asnmon.assay import Assay
from asnmon.dbguard import DatabaseGuard
from asnmon.monitor_backlog import _Stop
from asnmon.monitor_chores import IDENTITY_EVERY
from asnmon.monitor_status import MonitorStatus
from asnmon.names import printable
from asnmon.pipeline import IngestReport
from asnmon.records import Flag, Outcome, Result, Severity
from asnmon.runbook import RunBook
from asnmon.share import ShareExporter
from asnmon.store import STORE_FAILURES, is_data_error, one_line
from asnmon.watch import FolderWatcher, WatchEvent
from asnmon.worklist import resolve_sample

log = logging.getLogger("asnmon.monitor")

IDLE = 0.25  # s without work before pending calibrators are fitted and health is written


def print_line(line: str) -> None:
    """``print`` that flushes: a piped stdout (systemd, a log file, a test) is block-buffered."""
    print(line, flush=True)


def format_line(report: IngestReport) -> str:
    """One terminal line per injection: time, file, sample, result, flags."""
    now = datetime.now().strftime("%H:%M:%S")
    if not report.stored or report.outcome is None:
        return f"{now}  skip  {printable(report.path.name)}: {printable(report.message)}"
    o = report.outcome
    r = o.result
    if r.conc is not None:
        value = f"{r.conc:9.3g} {r.unit or ''}"
    elif r.status == "BLQ":
        value = "   < LLOQ"
    elif r.status == "ALQ":
        value = "   > ULOQ"
    else:
        value = f"   {r.status}"
    codes = " ".join(sorted({f.code for f in o.flags}))
    version = f" (v{report.version})" if report.version > 1 else ""
    return (
        f"{now}  {printable(o.path.name)[:32]:<32} {printable(o.sample.sample_id)[:14]:<14} "
        f"{o.sample.sample_type.value:<12} {value:<16} {codes}{version}"
    )


class MonitorWorker:
    """The worker thread's loop and per-event handling, for ``Monitor``."""

    assay: Assay
    out: Callable[[str], None]
    db: DatabaseGuard
    watcher: FolderWatcher
    runs: RunBook
    beacon: MonitorStatus
    alerter: Alerter
    share: ShareExporter | None
    _queue: queue.Queue[Any]
    _stopped: Any
    _doing: str
    _current: WatchEvent | None
    _unflushed: bool
    _last_error: str | None
    _last_injection: str | None
    _incomplete: set[Path]
    _next_identity: float
    _feed: AlertFeed | None
    _beat: Callable[[], None]
    _beat_busy: Callable[..., None]
    _idle_safely: Callable[[], None]
    _checkpoint_busy: Callable[[], None]
    _flush: Callable[[], None]
    _write_status: Callable[..., None]
    _announce: Callable[[str, str], None]
    _backlog: Callable[[Any], list[WatchEvent]]
    _handle_backlog: Callable[[list[WatchEvent]], None]
    _groupable: Callable[[WatchEvent | _Stop], bool]

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        while True:
            self._beat()
            self._doing = "waiting for files"
            try:
                item = self._queue.get(timeout=IDLE)
            except queue.Empty:
                self._idle_safely()
                continue
            try:
                if isinstance(item, _Stop):
                    self._finish()
                    return
                backlog = self._backlog(item)
                if backlog or self._groupable(item):  # one transaction: the file's or the
                    self._handle_backlog([item, *backlog])  # waiting files' together
                else:
                    self._doing = f"handling {item.kind} {item.path.name}"
                    self._current = item
                    self._handle_safely(item)
                    self._current = None
                self._beat_busy()  # the queue may not run dry for a long catch-up
                self._checkpoint_busy()
            finally:
                self._queue.task_done()

    def _finish(self) -> None:
        if self.db.in_trouble:
            return  # files not stored are still on disk: the next start ingests them
        try:
            if self.share is not None:
                self.share.maybe_export(force=True)
            self._flush()
            self.beacon.stopped()
        except STORE_FAILURES as exc:
            log.error("could not commit the last curve on stop: %s", exc)

    def _handle_safely(self, event: WatchEvent) -> None:
        """Handle one event; on a store failure retry it (queue waiting) until it is stored.

        Only ``recovered()`` after real work succeeded ends a DATABASE PROBLEM: a
        small probe write can fit on a disk too full for an injection.
        """
        while not self._stopped.is_set():
            if self.db.in_trouble:
                if not self.db.wait(self._stopped, self._beat_waiting):
                    return  # stopping: the file stays on disk for the next start
                if not self._database_answers():
                    continue
            try:
                self._check_identity()
                self._handle(event)
            except STORE_FAILURES as exc:
                self.runs.forget()  # memory may be ahead of what was committed
                if is_data_error(exc):  # a value this file gives; the database works
                    log.error("%s cannot be stored: %s", event.path, exc)
                    self._file_failed(event, exc)
                    return
                self.db.failed(f"storing {event.path.name}", one_line(exc))
                continue
            # The worker must outlive any one bad file: a monitor that dies silently is
            # the failure labs complain of most.
            except Exception as exc:  # documented thread boundary
                log.exception("while handling %s", event)
                self._file_failed(event, exc)
                return
            self.db.recovered()
            return

    def _beat_waiting(self) -> None:
        """Backing off a database problem: alive (watchdog), and the status file says why."""
        self._beat()
        self._beat_busy(waiting=True)

    def _file_failed(self, event: WatchEvent, exc: Exception) -> None:
        self._last_error = f"{printable(event.path.name)}: {type(exc).__name__}: {exc}"
        self.out(f"ERROR {self._last_error}")

    def _database_answers(self) -> bool:
        """After a failure: worth retrying? (The retry itself decides if it is over.)"""
        if self._check_identity() == "failed":
            return False
        problem = self.db.usable()
        if problem is not None:
            self.db.failed("retrying the database", problem)
            return False
        return True

    def _check_identity(self, *, every: float = 0.0) -> str:
        now = time.monotonic()
        if now < self._next_identity and every:
            return "same"
        self._next_identity = now + IDENTITY_EVERY
        result = self.db.check_identity()
        if result in ("rescued", "switched"):
            self.runs.forget()
            self._feed = None
            if result == "switched":
                self.watcher.rescan(forget=True)  # the new file may lack what we had stored
        return result

    def _handle(self, event: WatchEvent) -> None:
        kind = event.kind
        if kind == "ready":
            self._ingest(event.path)
        elif kind in ("incomplete", "convert_error"):
            code = "INCOMPLETE" if kind == "incomplete" else "CONVERT_ERROR"
            if kind == "incomplete":
                self._incomplete.add(event.path)
            self._record_failure(event.path, code, event.message)
        elif kind in ("folder_lost", "folder_back", "error"):
            self._last_error = event.message if kind != "folder_back" else None
            self.out(
                f"{datetime.now():%H:%M:%S}  {kind.replace('_', ' ').upper()}: {event.message}"
            )
            self._write_status(force=True)
            self.alerter.notify(event_from_watch(kind, event.message, event.at))
        elif kind in ("not_a_file", "events_lost"):
            self._announce(kind.upper(), event.message)

    def _ingest(self, path: Path, say: Callable[[str], None] | None = None) -> None:
        self._incomplete.discard(path)
        run_dir = self.runs.run_dir(path)
        ingestor, entry = self.runs.ingestor(path)
        if self.runs.blocked(entry, path) is not None:
            self.runs.hold(run_dir, path)
            return
        for earlier in self.runs.take_released(run_dir):  # held on the worklist, first in
            self._ingest_one(ingestor, earlier, say)
        self._ingest_one(ingestor, path, say)

    def _ingest_one(
        self, ingestor: Any, path: Path, say: Callable[[str], None] | None = None
    ) -> None:
        report = ingestor.ingest(path)
        if report.stored:
            self._last_injection = path.name
            self._unflushed = True
            self.beacon.stored(ingestor.run.run_id)
        (say or self.out)(format_line(report))

    def _record_failure(self, path: Path, code: str, message: str) -> None:
        """INCOMPLETE / CONVERT_ERROR become data like any result, then the run goes on."""
        ingestor, _ = self.runs.ingestor(path)
        try:
            stat = path.stat()
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            stamp = "gone"
        sha = hashlib.sha256(f"{code}:{path}:{stamp}".encode()).hexdigest()
        if ingestor.has_stored(sha):
            return
        flag = Flag(
            code=code,
            severity=Severity.FAIL,
            message=message,
            action="Check the instrument PC and the file; it is ingested "
            "automatically if it completes."
            if code == "INCOMPLETE"
            else "Check the converter command and the raw file.",
        )
        sample = resolve_sample(path, ingestor.worklist, self.assay)
        outcome = Outcome(
            path=path,
            sha256=sha,
            sample=sample,
            result=Result(status="no_result"),
            flags=(flag,),
            error=message,
        )
        ingestor.record(outcome)
        self._unflushed = True
        self.beacon.stored(ingestor.run.run_id)
        self.out(f"{datetime.now():%H:%M:%S}  {printable(path.name)}: {code}: {printable(message)}")
