"""``asnmon run``: the watcher, one ingestion worker, and the terminal as a monitor.

One process, because DuckDB allows one writer: the watcher's threads only
enqueue events; the worker thread is the only one that writes the database
(every injection, every INCOMPLETE/CONVERT_ERROR, the monitor's health);
the dashboard's threads read through their own cursors.

The worker cannot die of an error: every step (a file, an idle-time status
write, a backup) is contained. A store failure is a DATABASE PROBLEM (see
``asnmon.dbguard``): the file in hand is retried with back-off and the queue
waits behind it, so files are stored in the order they came, once. A
watchdog thread restarts a dead worker and reports a stuck one; ``health()``
is what ``/healthz`` and the banner show.

Split by responsibility: ``monitor_health`` (health, watchdog),
``monitor_chores`` (idle-time work), ``monitor_status`` (heartbeat, stalled
instrument, run finished, the JSON status file and the on_fail hook).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from asnmon.acquired import OrderKey, acquisition_key
from asnmon.actions import status_file_path
from asnmon.alerts import (
    AlertConfig,
    Alerter,
    AlertFeed,
    event_from_watch,
)
from asnmon.assay import Assay
from asnmon.dbguard import DatabaseGuard, open_waiting
from asnmon.errors import AsnmonError
from asnmon.monitor_backlog import MonitorBacklog, _Stop
from asnmon.monitor_chores import IDENTITY_EVERY, MonitorChores, backup_request_path
from asnmon.monitor_health import MonitorHealth
from asnmon.monitor_status import MonitorStatus
from asnmon.monitor_waiting import StartupWait
from asnmon.names import printable
from asnmon.pipeline import IngestReport
from asnmon.records import Flag, Outcome, Result, Severity
from asnmon.runbook import RunBook
from asnmon.settings import Settings
from asnmon.share import ShareExporter
from asnmon.store import STORE_FAILURES, Store, is_data_error, one_line
from asnmon.watch import ConverterSpec, FolderWatcher, WatchEvent
from asnmon.worklist import Worklist, load_worklist, resolve_sample

if TYPE_CHECKING:
    from dashboard.server import ServerHandle

log = logging.getLogger("asnmon.monitor")

__all__ = ["Monitor", "backup_request_path", "format_line", "print_line"]

IDLE = 0.25  # s without work before pending calibrators are fitted and health is written
QUIET = 0.15  # s idle() re-checks: longer than the settle thread's tick (<= 0.1 s) plus a drain


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


class Monitor(MonitorBacklog, MonitorChores, MonitorHealth):
    """Everything ``asnmon run`` does, startable and stoppable from tests."""

    def __init__(
        self, settings: Settings, assay: Assay, *, out: Callable[[str], None] = print_line
    ) -> None:
        if not settings.folder:
            raise AsnmonError("no folder to watch: give --watch DIR or [watch] folder")
        self.settings = settings
        self.assay = assay
        self.folder = Path(settings.folder).absolute()
        self.out = out
        self._stopped = threading.Event()
        instrument = settings.instrument or socket.gethostname()
        # Off-screen alerts and the shared Parquet folder run beside the worker; neither
        # may ever stop ingestion (both catch and report their own failures). The
        # alerter comes first: a database that cannot be opened yet is alerted.
        self.alerter = Alerter(replace(AlertConfig.from_settings(settings), instrument=instrument))
        self.store = self._open_store()
        self._queue: queue.Queue[WatchEvent | _Stop] = queue.Queue()
        self._worker = self._new_worker()
        self._watchdog = threading.Thread(
            target=self._watch_worker, name="asnmon-watchdog", daemon=True
        )
        self._dashboard: ServerHandle | None = None
        self._last_status: dict[str, object] = {}
        self._last_injection: str | None = None
        self._last_error: str | None = None
        self._incomplete: set[Path] = set()  # reported INCOMPLETE, still waiting to complete
        self._unflushed = False  # stored since the last idle flush: calibrators may wait a fit
        # Liveness, read by the watchdog and health() from other threads.
        self._beat_at = time.monotonic()
        self._doing = "starting"
        self._worker_restarts = 0
        self._worker_problem: str | None = None
        self._notes: list[str] = []  # recent watcher notes (a FIFO skipped, events lost)
        self._positions: dict[Path, tuple[int, Worklist | None]] = {}
        self._positions_lock = (
            threading.Lock()
        )  # recent watcher notes (a FIFO skipped, events lost)
        self.db = DatabaseGuard(self.store, self._announce)
        self._next_identity = 0.0
        self._feed: AlertFeed | None = None  # made on first use: reading may fail
        self._next_feed = 0.0
        self._current: WatchEvent | None = None  # in hand; re-queued if the worker dies
        self.share = (
            ShareExporter(
                self.store, Path(settings.share_dir), instrument, every_minutes=settings.share_every
            )
            if settings.share_dir
            else None
        )
        self._next_backup = 0.0  # monotonic; the first idle moment takes one
        self._next_checkpoint = 0.0  # monotonic; while busy, checkpoints at most this often
        self._checkpoint_declined_until = 0.0  # DuckDB declined (a transaction ran): wait
        converters = {
            ext: ConverterSpec(c.command, c.timeout) for ext, c in settings.converters.items()
        }
        converted = (
            Path(settings.converted_dir)
            if settings.converted_dir
            else (self.folder.parent / f"{self.folder.name}-converted" if converters else None)
        )
        self._converted = converted.absolute() if converted else None
        self.watcher = FolderWatcher(
            self.folder,
            self._queue.put,
            patterns=settings.patterns,
            recursive=settings.recursive,
            poll=settings.poll or None,
            settle=settings.settle,
            max_write=settings.max_write,
            converters=converters,
            converted_dir=converted,
            retry_every=settings.retry_every,
            rescan_every=settings.rescan_every,
            order_key=self._order_key,
            read_limits=settings.read_limits,
            one_writer=settings.one_writer,
        )
        self.runs = RunBook(
            self.store,
            assay,
            settings,
            root=lambda: self.watcher.root,
            converted=self._converted,
            announce=self._announce,
            out=self._say,
        )
        self.beacon = MonitorStatus(
            self.store,
            settings,
            status_file=Path(settings.status_file)
            if settings.status_file
            else status_file_path(self.store.path),
            planned=self.runs.planned,
            link=self.runs.reinjection_position,
            announce=self._announce_run,
            report_hook=self._hook_done,
        )

    def _open_store(self) -> Store:
        """The database, waited for (said and alerted) while another process holds it;
        meanwhile ``/healthz`` and the status file say why (``asnmon.monitor_waiting``)."""

        def report(code: str, message: str) -> None:
            self.alerter.start()  # Monitor.start() finds it running
            self._announce(code, message)

        status_file = (
            Path(self.settings.status_file)
            if self.settings.status_file
            else status_file_path(self.settings.db)
        )
        wait = StartupWait(self.settings, status_file, self.out)
        try:
            store = open_waiting(self.settings.db, report, self._stopped, on_wait=wait.waiting)
        except BaseException:
            wait.done()  # its /healthz gives the port back
            self.alerter.stop()
            raise
        wait.done(opened=True)  # the port goes to the dashboard; the file stops saying "waiting"
        return store

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        self.alerter.start()
        self.beacon.actions.start()
        self._worker.start()
        self._watchdog.start()
        self.watcher.start()  # includes the reconciliation scan of what is already there
        how = f"polling every {self.settings.poll:g} s" if self.settings.poll else "native events"
        self.out(
            f"watching {self.folder} ({how}, settle {self.settings.settle:g} s); "
            f"database {self.store.path}"
        )
        if self.settings.dashboard:
            # Same process, own cursors: DuckDB lets no other process read this file.
            from dashboard.app import create_app
            from dashboard.server import serve

            self._dashboard = serve(
                create_app(
                    self.store,
                    self.assay,
                    guide={
                        "runs": self.settings.guide_runs,
                        "start": self.settings.guide_start,
                        "end": self.settings.guide_end,
                    },
                    health=self.health,
                    idle_minutes=self.settings.idle_minutes,
                    approver_not_reviewer=self.settings.approver_not_reviewer,
                ),
                host=self.settings.host,
                port=self.settings.port,
                password=self.settings.password,
                insecure=self.settings.insecure,
                allowed_hosts=self.settings.allowed_hosts,
                max_request_kb=self.settings.max_request_kb,
            )
            self.out(f"dashboard: {self._dashboard.url}")

    @property
    def dashboard_url(self) -> str | None:
        return self._dashboard.url if self._dashboard is not None else None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching, finish the files in hand, commit, close.

        The database is closed only once the worker has exited: closing it under
        a running ingestion would lose the very file the stop promised to finish.
        """
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.watcher.stop()
        if self._dashboard is not None:
            self._dashboard.stop()
        if self._watchdog.is_alive():
            self._watchdog.join(timeout)
        if self._worker.is_alive():
            self._queue.put(_Stop())
            self._worker.join(timeout)
            if self._worker.is_alive():
                log.error("the ingestion worker is still busy %g s after stop", timeout)
                return
        self.beacon.actions.stop()
        self.alerter.stop()
        self.store.close()

    def run_forever(self) -> None:
        """Until SIGINT/SIGTERM: both stop cleanly (the current file is finished first)."""
        stop = threading.Event()

        def handler(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not stop.wait(0.5):
                pass
            self.out("stopping: finishing the current file ...")
        finally:
            self.stop()
            for s, h in previous.items():
                signal.signal(s, h)
        self.out("stopped cleanly")

    def idle(self) -> bool:
        """True when nothing waits to be ingested (tests and ``--exit-when-done`` wait on this).

        A file already reported INCOMPLETE stays on the watcher's pending table
        (it is ingested if it ever completes) but is not work in hand, else a
        truncated file would keep the monitor busy forever; so are files held on
        a broken worklist. Calibrators stored since the last idle flush are
        work: their curve is not fitted yet. The watcher updates its pending
        count once per tick, after new events are tracked, so quiet must hold
        across two looks ``QUIET`` apart. A database problem is never idle.
        """
        if not self._quiet():
            return False
        self._stopped.wait(QUIET)
        return self._quiet()

    def _quiet(self) -> bool:
        waiting = {p for p in self._incomplete.copy() if p.exists()}  # copy: atomic
        pending = self.watcher.status().pending
        return (
            self._queue.unfinished_tasks == 0
            and not self._unflushed
            and pending <= len(waiting)
            and not self.db.in_trouble
        )

    # ------------------------------------------------------------ acquisition order

    def _order_key(self, path: Path) -> OrderKey:
        """On a watcher thread: the file's own start time, then its worklist position."""
        return acquisition_key(path, self._position(path))

    def _position(self, path: Path) -> int | None:
        """The file's worklist position (its own small cache: any thread may ask)."""
        found = (
            [Path(self.settings.worklist)]
            if self.settings.worklist
            else sorted(path.parent.glob("worklist*.csv"))
        )
        if not found:
            return None
        try:
            stamp = found[0].stat().st_mtime_ns
        except OSError:
            return None
        with self._positions_lock:
            cached = self._positions.get(found[0])
            if cached is None or cached[0] != stamp:
                try:
                    worklist: Worklist | None = load_worklist(found[0])
                except AsnmonError:  # the worker reports it; order falls back to time
                    worklist = None
                self._positions[found[0]] = cached = (stamp, worklist)
        sample = cached[1].lookup(path) if cached[1] is not None else None
        return sample.position if sample is not None else None

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
                if backlog:  # files were waiting: one transaction for them all
                    self._handle_backlog([item, *backlog])
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
