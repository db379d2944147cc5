"""``asnmon run``: the watcher, one ingestion worker, and the terminal as a monitor.

One process, because DuckDB allows one writer: the watcher's threads only
enqueue events; the worker thread is the only one that writes the database
(every injection, every INCOMPLETE/CONVERT_ERROR, the monitor's health);
the dashboard's threads read through their own cursors.

Runs: each folder that holds injection files is a run (the watched folder, or
each sub-folder with ``recursive``), so a new sequence folder starts a new
run. Its worklist is ``settings.worklist`` or a ``worklist*.csv`` in the
folder, re-read when it changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from asnmon.alerts import AlertConfig, Alerter, AlertFeed, event_from_watch
from asnmon.assay import Assay
from asnmon.errors import AsnmonError, WorklistError
from asnmon.names import printable
from asnmon.pipeline import IngestReport, RunIngestor
from asnmon.records import Flag, Outcome, Result, Severity
from asnmon.settings import Settings
from asnmon.share import ShareExporter
from asnmon.store import RunInfo, Store
from asnmon.watch import ConverterSpec, FolderWatcher, WatchEvent
from asnmon.worklist import Worklist, load_worklist, resolve_sample

if TYPE_CHECKING:
    from dashboard.server import ServerHandle

log = logging.getLogger("asnmon.monitor")

FEED_EVERY = 5.0  # s between looks for new fail flags to alert on
IDLE = 0.25  # s without work before pending calibrators are fitted and health is written
OPEN_RUNS = 4  # runs kept in memory; an older one is rebuilt from the database if it comes back
QUIET = 0.15  # s idle() re-checks: longer than the settle thread's tick (<= 0.1 s) plus a drain


def print_line(line: str) -> None:
    """``print`` that flushes: a piped stdout (systemd, a log file, a test) is block-buffered."""
    print(line, flush=True)


def backup_request_path(db: Path) -> Path:
    """Where ``asnmon backup`` leaves a request for the monitor that holds ``db``."""
    return db.with_name(db.name + ".backup-request")


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


@dataclass(frozen=True, slots=True)
class _Stop:
    pass


class Monitor:
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
        self.store = Store(settings.db)
        self._queue: queue.Queue[WatchEvent | _Stop] = queue.Queue()
        self._ingestors: dict[str, RunIngestor] = {}
        self._worklists: dict[Path, tuple[float, Worklist | None]] = {}
        self._worker = threading.Thread(target=self._work, name="asnmon-ingest", daemon=True)
        self._stopped = threading.Event()
        self._dashboard: ServerHandle | None = None
        self._last_status: dict[str, object] = {}
        self._last_injection: str | None = None
        self._last_error: str | None = None
        self._incomplete: set[Path] = set()  # reported INCOMPLETE, still waiting to complete
        self._unflushed = False  # stored since the last idle flush: calibrators may wait a fit
        instrument = settings.instrument or socket.gethostname()
        # Off-screen alerts and the shared Parquet folder run beside the worker; neither
        # may ever stop ingestion (both catch and report their own failures).
        self.alerter = Alerter(replace(AlertConfig.from_settings(settings), instrument=instrument))
        self._feed = AlertFeed(self.store)
        self._next_feed = 0.0
        self.share = (
            ShareExporter(
                self.store, Path(settings.share_dir), instrument, every_minutes=settings.share_every
            )
            if settings.share_dir
            else None
        )
        self._next_backup = 0.0  # monotonic; the first idle moment takes one
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
        )

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        self.alerter.start()
        self._worker.start()
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
        if self._worker.is_alive():
            self._queue.put(_Stop())
            self._worker.join(timeout)
            if self._worker.is_alive():
                log.error("the ingestion worker is still busy %g s after stop", timeout)
                return
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
        truncated file would keep the monitor busy forever. Calibrators stored
        since the last idle flush are work: their curve is not fitted yet. The watcher updates
        its pending count once per tick, after new events are tracked, so quiet
        must hold across two looks ``QUIET`` apart.
        """
        if not self._quiet():
            return False
        self._stopped.wait(QUIET)
        return self._quiet()

    def _quiet(self) -> bool:
        waiting = {p for p in self._incomplete.copy() if p.exists()}  # copy: atomic
        pending = self.watcher.status().pending
        return self._queue.unfinished_tasks == 0 and not self._unflushed and pending <= len(waiting)

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=IDLE)
            except queue.Empty:
                self._on_idle()
                continue
            try:
                if isinstance(item, _Stop):
                    if self.share is not None:
                        self.share.maybe_export(force=True)
                    self._flush()
                    return
                self._handle(item)
            # The worker must outlive any one bad file or database hiccup: a
            # monitor that dies silently is the failure labs complain of most.
            except Exception as exc:  # documented thread boundary
                log.exception("while handling %s", item)
                self._last_error = f"{type(exc).__name__}: {exc}"
                self.out(f"ERROR {self._last_error}")
            finally:
                self._queue.task_done()

    def _handle(self, event: WatchEvent) -> None:
        kind = event.kind
        if kind == "ready":
            self._incomplete.discard(event.path)
            ingestor = self._ingestor_for(event.path)
            report = ingestor.ingest(event.path)
            if report.stored:
                self._last_injection = event.path.name
                self._unflushed = True
            self.out(format_line(report))
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

    def _on_idle(self) -> None:
        self._flush()
        self._unflushed = False  # only now: the curve and re-quantified results are committed
        self._write_status()
        now = time.monotonic()
        if now >= self._next_feed:  # new fail flags and verdict changes -> alerts
            self._next_feed = now + FEED_EVERY
            self.alerter.notify_all(self._feed.poll())
        if self.share is not None:
            self.share.maybe_export()
        self._maybe_backup(now)
        self._answer_backup_request()

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
        for ingestor in self._ingestors.values():
            cal = ingestor.flush()
            if cal is not None:
                self.out(f"{datetime.now():%H:%M:%S}  calibration v{cal.version}: {cal.reason}")

    def _write_status(self, force: bool = False) -> None:
        st = self.watcher.status()
        status: dict[str, object] = {
            "watcher": st.state,
            "folder": str(st.folder),
            "observer": st.observer,
            "pending": st.pending,
            "queue": self._queue.qsize(),
            "last_error": self._last_error or st.last_error,
            "last_injection": self._last_injection,
        }
        if force or status != self._last_status:
            self.store.set_status({**status, "updated": time.time()})
            self._last_status = status

    # ------------------------------------------------------------ runs

    def _run_dir(self, path: Path) -> Path:
        """The run folder of a file; a converted file belongs to its raw file's folder."""
        parent = path.parent
        if self._converted is not None and parent.is_relative_to(self._converted):
            parent = self.folder / parent.relative_to(self._converted)
        try:
            parent.relative_to(self.folder)
        except ValueError:  # converted files live outside the watched folder
            return self.folder
        return parent

    def _worklist_for(self, run_dir: Path) -> Worklist | None:
        if self.settings.worklist:
            path = Path(self.settings.worklist)
        else:
            found = sorted(run_dir.glob("worklist*.csv"))
            if not found:
                return None
            path = found[0]
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._worklists.get(run_dir)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            worklist: Worklist | None = load_worklist(path)
        except WorklistError as err:
            self.out(f"WORKLIST PROBLEM (files are named by convention until fixed): {err}")
            worklist = None
        self._worklists[run_dir] = (mtime, worklist)
        return worklist

    def _ingestor_for(self, path: Path) -> RunIngestor:
        run_dir = self._run_dir(path)
        run_id = (
            run_dir.name if run_dir == self.folder else str(run_dir.relative_to(self.folder.parent))
        )
        worklist = self._worklist_for(run_dir)
        ingestor = self._ingestors.pop(run_id, None)
        if ingestor is None:
            self._close_old_runs()
            run = RunInfo(
                run_id=run_id,
                name=run_id,
                folder=str(run_dir),
                worklist=worklist.path if worklist else None,
                assay_name=self.assay.name,
                assay_unit=self.assay.unit,
                lloq=self.assay.calibration.lloq,
                uloq=self.assay.calibration.uloq,
                planned=len(worklist) if worklist else None,
            )
            ingestor = RunIngestor(
                self.store,
                self.assay,
                run,
                worklist,
                carry_calibration=self.settings.carry_calibration,
                guide_runs=self.settings.guide_runs,
                guide_start=self.settings.guide_start,
                guide_end=self.settings.guide_end,
            )
            self._ingestors[run_id] = ingestor
            self.out(
                f"run {run_id}: "
                + (
                    f"worklist {worklist.path} ({len(worklist)} injections)"
                    if worklist
                    else "no worklist, samples named by the file-name convention"
                )
            )
        else:
            ingestor.worklist = worklist
            self._ingestors[run_id] = ingestor  # re-inserted: the dict is least recent first
        return ingestor

    def _close_old_runs(self) -> None:
        """Forget all but the newest runs: a monitor left running for weeks of sequence
        folders must not keep every run's history in memory. A forgotten run that gets
        another file is restored from the database, which judges it exactly alike."""
        while len(self._ingestors) >= OPEN_RUNS:
            run_id = next(iter(self._ingestors))
            cal = self._ingestors.pop(run_id).flush()
            if cal is not None:
                self.out(f"{datetime.now():%H:%M:%S}  calibration v{cal.version}: {cal.reason}")
            self._worklists.pop(self.folder.parent / run_id, None)

    def _record_failure(self, path: Path, code: str, message: str) -> None:
        """INCOMPLETE / CONVERT_ERROR become data like any result, then the run goes on."""
        ingestor = self._ingestor_for(path)
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
        self.out(f"{datetime.now():%H:%M:%S}  {path.name}: {code}: {message}")
