"""The state every part of ``FolderWatcher`` shares, and how events leave it.

``FolderWatcher`` is built in layers, one module each: this base (state and
output), ``settle`` (the pending table: settling, completeness, abandoned
files, rescans), ``folder`` (folder health and the observer) and ``watcher``
(threads, inbox, converter). Only the settle thread calls ``_emit``; other
threads ``_post`` and the settle thread delivers, so ``on_event`` never overlaps.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from asnmon.acquired import OrderKey
from asnmon.convert import ConverterSpec
from asnmon.fileread import ReadLimits
from asnmon.watch.events import EventKind, ObserverKind, WatchEvent, WatchState, WatchStatus
from asnmon.watch.scan import Signature
from asnmon.watch.support import CheckPool

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from asnmon.watch.settle import Track

log = logging.getLogger("asnmon.watch")


class WatcherBase:
    """Attributes set by ``FolderWatcher.__init__``; output and status methods."""

    # configuration
    _folder: Path
    _real: Path
    _on_event: Callable[[WatchEvent], None]
    _patterns: tuple[str, ...]
    _scan_patterns: tuple[str, ...]
    _recursive: bool
    _poll: float | None
    _settle: float
    _max_write: float
    _retry_every: float
    _rescan_every: float
    _read_limits: ReadLimits
    _order_key: Callable[[Path], OrderKey]
    _converters: Mapping[str, ConverterSpec]
    _converted_dir: Path | None
    _converted_real: Path | None
    _tick: float
    # plumbing
    _inbox: queue.SimpleQueue[tuple[str, object]]
    _jobs: queue.SimpleQueue[Path]
    _stopping: threading.Event
    _checks: CheckPool
    # owned by the settle thread
    _observer: BaseObserver | None
    _ident: tuple[int, int] | None
    _pending: dict[Path, Track]
    _handed: dict[Path, Signature]
    _one_writer: bool  # abandoned files are INCOMPLETE once a later one completes
    _moved_on: dict[
        Path, tuple[int, str]
    ]  # run folder -> (mtime_ns, name) of its newest file handed on
    _check_now: bool
    _batches: int
    _held: list[tuple[OrderKey, Path]]
    _not_files: set[Path]
    _lost_noticed: float
    _next_settle: float
    # read by status() from any thread, under _lock
    _lock: threading.Lock
    _state: WatchState
    _since: float
    _observer_kind: ObserverKind
    _pending_count: int
    _last_event_at: float | None
    _last_error: str | None

    def status(self) -> WatchStatus:
        with self._lock:
            return WatchStatus(
                state=self._state,
                folder=self._folder,
                observer=self._observer_kind,
                pending=self._pending_count,
                last_event_at=self._last_event_at,
                last_error=self._last_error,
                since=self._since,
            )

    def _post(self, kind: EventKind, path: Path, message: str) -> None:
        """From a non-settle thread: the settle thread delivers, so on_event never overlaps."""
        self._inbox.put(("emit", WatchEvent(kind, path, message, time.time())))

    def _emit(self, kind: EventKind, path: Path, message: str) -> None:
        self._deliver(WatchEvent(kind, path, message, time.time()))

    def _deliver(self, event: WatchEvent) -> None:
        log.log(
            logging.DEBUG if event.kind == "ready" else logging.INFO,
            "%s: %s",
            event.kind,
            event.message,
        )
        with self._lock:
            self._last_event_at = event.at
        try:
            self._on_event(event)
        except Exception:  # boundary: the consumer's callback must not stop the watcher
            log.exception("on_event callback failed for %s %s", event.kind, event.path)
            with self._lock:
                self._last_error = f"on_event callback failed for {event.kind} {event.path}"

    def _report_crash(self, where: str, exc: Exception, *, direct: bool) -> None:
        """Make a crash visible beyond the log: status().last_error and an "error" event."""
        message = f"unexpected error in the watcher's {where}: {type(exc).__name__}: {exc}"
        with self._lock:
            self._last_error = message
        if direct:
            self._emit("error", self._folder, message)
        else:
            self._post("error", self._folder, message)

    def _set_state(self, state: WatchState, *, error: str | None = None) -> None:
        with self._lock:
            if state != self._state:
                self._state, self._since = state, time.time()
            if error is not None:
                self._last_error = error
