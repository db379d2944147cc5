"""What the watcher needs beside its settle loop: checks off-thread, lost events.

* ``CheckPool``: completeness checks (and the acquisition-order key) run on a
  few daemon threads, so one slow file (a huge ``.gz`` inflating) never holds
  back the files behind it, and a thread stuck in ``open()`` never blocks exit.
* ``listen_for_overflow``: watchdog 7 reports an inotify queue overflow
  (``IN_Q_OVERFLOW``: the kernel dropped events) only as a log record,
  "Inotify queue overflowed; filesystem events were lost", from logger
  ``watchdog.observers.inotify_c``; no event reaches a handler. A logging
  handler turns that record into a full rescan of every live watcher.
* ``not_a_file``: what a path is when it is neither a regular file nor a
  folder (a FIFO blocks ``open()``; ``/dev/zero`` never ends).
"""

from __future__ import annotations

import logging
import queue
import stat
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from asnmon.fileread import file_kind

log = logging.getLogger("asnmon.watch")

WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")
_JOIN = 2.0


def not_a_file(mode: int) -> str | None:
    """None for a regular file or a folder; otherwise what it is, in words."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return file_kind(mode)


class CheckPool:
    """``check(path)`` on ``size`` daemon threads; each result goes to ``post``."""

    def __init__(
        self,
        check: Callable[[Path], object],
        post: Callable[[Path, object, object], None],
        size: int = 3,
    ) -> None:
        self._check = check
        self._post = post
        self._jobs: queue.SimpleQueue[tuple[Path, object] | None] = queue.SimpleQueue()
        # When each running check began (path -> (token, monotonic)). Waiting in the
        # queue is not being slow: after a restart hundreds of checks queue at once.
        self._started: dict[Path, tuple[object, float]] = {}
        self._threads = [
            threading.Thread(target=self._loop, name=f"asnmon-watch-check-{i}", daemon=True)
            for i in range(size)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, path: Path, token: object) -> None:
        self._jobs.put((path, token))

    def running_for(self, path: Path, token: object, now: float) -> float:
        """Seconds the check of ``(path, token)`` has been running; 0 while it waits its turn."""
        started = self._started.get(path)
        return now - started[1] if started is not None and started[0] == token else 0.0

    def stop(self, timeout: float = _JOIN) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            path, token = job
            self._started[path] = (token, time.monotonic())
            try:
                result = self._check(path)
            except Exception:  # thread boundary: a failed check is "not complete"
                log.exception("completeness check of %s failed", path)
                result = None
            finally:
                if self._started.get(path, (None,))[0] is token:
                    self._started.pop(path, None)
            self._post(path, token, result)


class _Lossy(Protocol):
    def events_lost(self, reason: str) -> None: ...


class _OverflowListener(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.watchers: weakref.WeakSet[_Lossy] = weakref.WeakSet()

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" not in record.getMessage().lower():
            return
        for watcher in list(self.watchers):
            watcher.events_lost(
                "the system's file-event queue overflowed (inotify IN_Q_OVERFLOW): "
                "events were dropped"
            )


_LISTENER = _OverflowListener()


def listen_for_overflow(watcher: _Lossy) -> None:
    """Have ``watcher.events_lost`` called whenever watchdog logs a queue overflow."""
    for name in WATCHDOG_LOGGERS:
        logger = logging.getLogger(name)
        if _LISTENER not in logger.handlers:
            logger.addHandler(_LISTENER)
        if logger.getEffectiveLevel() > logging.WARNING:  # else the record is never made
            logger.setLevel(logging.WARNING)
    _LISTENER.watchers.add(watcher)


def stop_listening(watcher: _Lossy) -> None:
    _LISTENER.watchers.discard(watcher)
