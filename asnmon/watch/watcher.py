"""``FolderWatcher``: its threads, its inbox, and the vendor converter thread."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from asnmon.acquired import OrderKey, acquisition_key
from asnmon.convert import ConverterSpec, _run_converter
from asnmon.errors import ConvertError, SettingsError
from asnmon.fileread import DEFAULT_LIMITS, ReadLimits
from asnmon.watch.complete import is_complete
from asnmon.watch.events import DEFAULT_PATTERNS, WatchEvent
from asnmon.watch.folder import JOIN_TIMEOUT, FolderKeeper
from asnmon.watch.settle import LOST_NOTICE_EVERY
from asnmon.watch.support import CheckPool, listen_for_overflow, stop_listening

log = logging.getLogger("asnmon.watch")

# Reads (ours, the worker's) must not put a file back on the pending table.
_IGNORED_EVENT_TYPES = frozenset({"opened", "closed_no_write"})
_PRUNE_EVERY = 600.0  # s; the memory of handed-on files drops those no longer on disk
_START_WAIT = 10.0
_MAX_DRAIN = 10_000
_CHECKERS = 3  # completeness checks at once: a slow file takes one, the others go on


class _EnqueueHandler(FileSystemEventHandler):
    """Runs on watchdog's thread, so it only queues the path; a move queues its destination."""

    def __init__(self, inbox: queue.SimpleQueue[tuple[str, object]]) -> None:
        super().__init__()
        self._inbox = inbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENT_TYPES:
            return
        self._inbox.put(("path", os.fsdecode(event.dest_path or event.src_path)))


class FolderWatcher(FolderKeeper):
    """Hands every completely written injection file in ``folder`` to ``on_event``.

    ``poll=None`` uses native events; ``poll=SECONDS`` polls (network shares).
    ``converters`` maps an extension (``".raw"``, ``".d"``, ``".wiff"``) to the
    command that makes mzML of such a file or folder, written under
    ``converted_dir`` (required with converters; if it lies inside ``folder``
    it is ignored by the watcher). ``start()`` also runs the reconciliation
    scan, after the observer is up, so nothing written around start-up is lost.
    ``one_writer=False`` (multiplexed LC) turns off "an open file older than a
    complete one was abandoned" (``asnmon.watch.settle``): only ``max_write`` then.
    """

    def __init__(
        self,
        folder: Path,
        on_event: Callable[[WatchEvent], None],
        *,
        patterns: Sequence[str] = DEFAULT_PATTERNS,
        recursive: bool = False,
        poll: float | None = None,
        settle: float = 0.5,
        max_write: float = 7200.0,
        converters: Mapping[str, ConverterSpec] | None = None,
        converted_dir: Path | None = None,
        retry_every: float = 3.0,
        rescan_every: float = 300.0,
        order_key: Callable[[Path], OrderKey] | None = None,
        read_limits: ReadLimits = DEFAULT_LIMITS,
        one_writer: bool = True,
    ) -> None:
        if poll is not None and not poll > 0:
            raise SettingsError(f"poll interval must be positive seconds or None, got {poll!r}")
        if not settle >= 0:
            raise SettingsError(f"settle time must be zero or more seconds, got {settle!r}")
        if not max_write > 0:
            raise SettingsError(f"max_write must be positive seconds, got {max_write!r}")
        if not retry_every > 0:
            raise SettingsError(f"retry_every must be positive seconds, got {retry_every!r}")
        if not 0 < rescan_every < float("inf"):
            raise SettingsError(f"rescan_every must be positive seconds, got {rescan_every!r}")
        converters = dict(converters or {})
        if converters and converted_dir is None:
            raise SettingsError(
                "converters are configured but converted_dir is not: say where the "
                "converted mzML files should be written"
            )
        self._folder = Path(os.path.abspath(folder))
        self._real = self._folder  # its target if it is a symlink (resolved on connect)
        self._on_event = on_event
        self._patterns = tuple(patterns)
        self._recursive = recursive
        self._poll = poll
        self._settle = settle
        self._max_write = max_write
        self._retry_every = retry_every
        self._read_limits = read_limits  # [read]: the completeness check is bounded too
        self._rescan_every = rescan_every
        self._order_key = order_key or acquisition_key
        self._converters = {
            ("." + ext.lower().lstrip(".")): spec for ext, spec in converters.items()
        }
        self._converted_dir = Path(os.path.abspath(converted_dir)) if converted_dir else None
        self._converted_real = self._converted_dir
        self._scan_patterns = self._patterns + tuple(f"*{ext}" for ext in self._converters)
        self._tick = min(0.1, max(0.02, settle / 4))

        self._inbox = queue.SimpleQueue()
        self._jobs = queue.SimpleQueue()
        self._handler = _EnqueueHandler(self._inbox)
        self._stopping = threading.Event()
        self._first_check = threading.Event()
        self._threads: list[threading.Thread] = []
        self._checks = CheckPool(self._check, self._checked, _CHECKERS)

        # Owned by the settle thread.
        self._observer = None
        self._ident = None
        self._pending = {}
        self._handed = {}
        self._check_now = False
        self._next_health = 0.0
        self._next_rescan = time.monotonic() + rescan_every
        self._batches = 0
        self._held = []  # ready, waiting for their batch
        self._not_files = set()
        self._lost_noticed = -LOST_NOTICE_EVERY
        self._next_prune = time.monotonic() + _PRUNE_EVERY
        self._next_settle = 0.0
        self._moved_on = {}
        self._one_writer = one_writer

        # Read by status() from any thread.
        self._lock = threading.Lock()
        self._state = "stopped"
        self._since = time.time()
        self._observer_kind = "native" if poll is None else "polling"
        self._pending_count = 0
        self._last_event_at = None
        self._last_error = None

    # ------------------------------------------------------------ public

    def start(self) -> None:
        """Start the threads; returns after the first look at the folder (bounded wait)."""
        if self._threads:
            raise RuntimeError("a FolderWatcher can only be started once")
        self._threads.append(
            threading.Thread(target=self._settle_loop, name="asnmon-watch-settle", daemon=True)
        )
        if self._converters:
            self._threads.append(
                threading.Thread(
                    target=self._convert_loop, name="asnmon-watch-convert", daemon=True
                )
            )
        self._checks.start()
        listen_for_overflow(self)
        for thread in self._threads:
            thread.start()
        self._first_check.wait(_START_WAIT)

    def stop(self, timeout: float = JOIN_TIMEOUT) -> bool:
        """Stop observer, threads and running converter; False if a thread outlives ``timeout``."""
        self._stopping.set()
        stop_listening(self)
        self._inbox.put(("wake", None))
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._checks.stop(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("watcher threads still running %g s after stop: %s", timeout, alive)
            return False
        self._set_state("stopped")
        return True

    @property
    def root(self) -> Path:
        """The folder really watched: the given one, or its target if it is a symlink."""
        return self._real

    def events_lost(self, reason: str) -> None:
        """Any thread: the system dropped file events; look at everything again."""
        self._inbox.put(("lost", reason))

    def rescan(self, *, forget: bool = False) -> None:
        """Look at every file again; ``forget``: hand on even those handed on before.

        Thread-safe (the settle thread does the work). ``forget`` is for a consumer
        that lost what it had stored (its database was replaced): it dedupes anyway.
        """
        self._inbox.put(("rescan", forget))

    # ------------------------------------------------------------ settle thread

    def _settle_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._step()
                except Exception as exc:  # thread boundary: log, report, keep watching
                    log.exception("unexpected error in the settle thread; it keeps going")
                    self._report_crash("settle thread", exc, direct=True)
                    self._stopping.wait(self._retry_every)
                finally:
                    self._first_check.set()
        finally:
            self._dispose_observer()
            self._deliver_posted()

    def _step(self) -> None:
        now = time.monotonic()
        if self._check_now or now >= self._next_health:
            self._check_now = False
            self._next_health = now + self._retry_every
            self._check_health()
            self._first_check.set()
        if now >= self._next_prune:  # files archived or deleted since: forget them
            self._next_prune = now + _PRUNE_EVERY
            self._handed = {p: sig for p, sig in self._handed.items() if p.exists()}
            self._not_files = {p for p in self._not_files if p.exists()}
        if now >= self._next_rescan and self._observer is not None:
            self._next_rescan = now + self._rescan_every
            self._rescan()  # events the system lost without telling anyone
        if now >= self._next_settle:
            self._next_settle = now + self._tick
            if self._observer is not None:
                self._settle_pending()
        with self._lock:
            self._pending_count = len(self._pending) + len(self._held)
        wait = min(self._next_health, self._next_settle) - time.monotonic()
        self._drain(max(0.0, wait))

    def _drain(self, timeout: float) -> None:
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return
        for _ in range(_MAX_DRAIN):
            kind, payload = item
            if kind == "path" and isinstance(payload, str):
                self._track(Path(payload))
            elif kind == "emit" and isinstance(payload, WatchEvent):
                self._deliver(payload)
            elif kind == "rescan":
                if payload:
                    self._handed = {p: s for p, s in self._handed.items() if self._is_raw(p)}
                self._rescan()
            elif kind == "lost" and isinstance(payload, str):
                self._lost(payload)
            elif kind == "checked" and isinstance(payload, tuple):
                self._check_done(*payload)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _deliver_posted(self) -> None:
        """On exit: pass on converter results already posted, drop the rest."""
        with contextlib.suppress(queue.Empty):
            while True:
                kind, payload = self._inbox.get_nowait()
                if kind == "emit" and isinstance(payload, WatchEvent):
                    self._deliver(payload)

    # ------------------------------------------------------------ converter thread

    def _convert_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                target = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._convert(target)
            except Exception as exc:  # thread boundary: log, report, keep converting
                log.exception("unexpected error in the converter thread; it keeps going")
                self._report_crash("converter thread", exc, direct=False)

    def _convert(self, target: Path) -> None:
        spec = self._converter_for(target.name)
        if spec is None or self._converted_dir is None:
            return
        output_dir = self._converted_dir / target.parent.relative_to(self._real)
        try:
            output = _run_converter(spec, target, output_dir, self._stopping)
        except ConvertError as exc:
            if not self._stopping.is_set():
                log.warning("%s", exc)
                self._post("convert_error", target, str(exc))
            return
        if is_complete(output, self._read_limits):
            self._post("ready", output, f"{output.name} converted from {target.name}")
        else:
            self._post(
                "convert_error",
                target,
                f"the converter wrote {output} but it is not a complete mzML document",
            )
