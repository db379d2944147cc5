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

Split by responsibility: ``monitor_worker`` (the worker's loop and each
event), ``monitor_backlog`` (group commits), ``monitor_health`` (health, watchdog),
``monitor_chores`` (idle-time work), ``monitor_status`` (heartbeat, stalled
instrument, run finished, the JSON status file and the on_fail hook).
"""

from __future__ import annotations

import logging
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from asnmon.acquired import OrderKey, acquisition_key
from asnmon.actions import status_file_path
from asnmon.alerts import (
    AlertConfig,
    Alerter,
    AlertFeed,
)
from asnmon.assay import Assay
from asnmon.dbguard import DatabaseGuard, open_waiting
from asnmon.errors import AsnmonError
from asnmon.monitor_backlog import MonitorBacklog, _Stop
from asnmon.monitor_chores import MonitorChores, backup_request_path
from asnmon.monitor_health import MonitorHealth
from asnmon.monitor_status import MonitorStatus
from asnmon.monitor_waiting import StartupWait
from asnmon.monitor_worker import MonitorWorker, format_line, print_line
from asnmon.runbook import RunBook
from asnmon.settings import Settings
from asnmon.share import ShareExporter
from asnmon.store import Store
from asnmon.watch import ConverterSpec, FolderWatcher, WatchEvent
from asnmon.worklist import Worklist, load_worklist

if TYPE_CHECKING:
    from dashboard.server import ServerHandle

log = logging.getLogger("asnmon.monitor")

__all__ = ["Monitor", "backup_request_path", "format_line", "print_line"]

QUIET = 0.15  # s idle() re-checks: longer than the settle thread's tick (<= 0.1 s) plus a drain


class Monitor(MonitorWorker, MonitorBacklog, MonitorChores, MonitorHealth):
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
