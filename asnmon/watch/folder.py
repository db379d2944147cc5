"""Folder health and the file observer: lost shares, replaced folders, dead observers.

Every ``retry_every`` seconds the settle thread probes the folder. A folder
that disappears (share dropped, drive pulled) is ``"folder_lost"`` and is
retried; on ``"folder_back"`` the observer is restarted and the folder
rescanned. A symlinked folder is watched at its target (re-resolved when the
link moves). Native events fall back to polling when inotify cannot start.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver
from watchdog.utils import UnsupportedLibcError

from asnmon.watch.events import ObserverKind
from asnmon.watch.settle import Settler

log = logging.getLogger("asnmon.watch")

FALLBACK_POLL = 1.0  # s, when inotify cannot start (watch or instance limit)
JOIN_TIMEOUT = 5.0


class FolderKeeper(Settler):
    """Keeps the observer running on the folder that is really there."""

    _handler: FileSystemEventHandler  # the watchdog handler, scheduled on every new observer

    def _probe(self) -> tuple[tuple[int, int] | None, str]:
        """(device, inode) of the folder, or None and why it cannot be used."""
        try:
            st = os.stat(self._folder)
            if not stat.S_ISDIR(st.st_mode):
                return None, "it is not a folder"
            with os.scandir(self._folder) as it:
                next(it, None)
        except FileNotFoundError:
            return None, "it does not exist"
        except OSError as exc:
            return None, f"it cannot be read: {exc.strerror or exc}"
        return (st.st_dev, st.st_ino), ""

    def _check_health(self) -> None:
        ident, reason = self._probe()
        if self._observer is None:
            if ident is None:
                self._lose(reason)
            else:
                self._connect(ident, announce=self.status().state == "unreachable")
            return
        if ident is None:
            self._lose(reason)
        elif ident != self._ident:
            # Removed and recreated between two checks: the native watch is on the old inode.
            self._lose("it was replaced by a new folder")
            self._connect(ident, announce=True)
        elif not self._observer_alive():
            log.warning(
                "the file observer for %s stopped; restarting it and rescanning", self._folder
            )
            self._dispose_observer()
            self._connect(ident, announce=False)

    def _observer_alive(self) -> bool:
        observer = self._observer
        return (
            observer is not None
            and observer.is_alive()
            and all(e.is_alive() for e in observer.emitters)
        )

    def _connect(self, ident: tuple[int, int], *, announce: bool) -> None:
        # A symlinked folder is watched at its target: inotify does not follow the link.
        self._real = Path(os.path.realpath(self._folder))
        if self._converted_dir is not None:
            self._converted_real = Path(os.path.realpath(self._converted_dir))
        try:
            self._start_observer()
        except (OSError, UnsupportedLibcError) as exc:
            self._lose(f"its file observer could not start: {exc}")
            return
        self._ident = ident
        self._set_state("watching")
        if announce:
            log.info("watched folder %s is reachable again", self._folder)
            # The worker dedupes, so re-hand every mzML; only skip costly reconversions.
            self._handed = {p: s for p, s in self._handed.items() if self._is_raw(p)}
            self._emit(
                "folder_back", self._folder, f"watched folder {self._folder} is back; rescanning it"
            )
        self._rescan()

    def _start_observer(self) -> None:
        kind: ObserverKind = "native" if self._poll is None else "polling"
        observer = Observer() if self._poll is None else PollingObserver(timeout=self._poll)
        try:
            self._schedule(observer)
        except (OSError, UnsupportedLibcError) as exc:
            if self._poll is not None or isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise
            log.warning(
                "native file events unavailable for %s (%s); polling every %g s instead",
                self._folder,
                exc,
                FALLBACK_POLL,
            )
            observer = PollingObserver(timeout=FALLBACK_POLL)
            kind = "polling"
            self._schedule(observer)
        self._observer = observer
        with self._lock:
            self._observer_kind = kind

    def _schedule(self, observer: BaseObserver) -> None:
        try:
            observer.schedule(self._handler, str(self._real), recursive=self._recursive)
            observer.start()
        except (OSError, UnsupportedLibcError):
            self._stop_observer(observer)
            raise

    def _dispose_observer(self) -> None:
        if self._observer is not None:
            observer, self._observer = self._observer, None
            self._stop_observer(observer)

    @staticmethod
    def _stop_observer(observer: BaseObserver) -> None:
        """Stop even an observer whose folder vanished; inotify may complain about that."""
        try:
            observer.stop()
        except (OSError, RuntimeError, KeyError) as exc:
            log.debug("observer did not stop cleanly: %s", exc)
        if observer.is_alive():
            observer.join(JOIN_TIMEOUT)
            if observer.is_alive():
                log.error("file observer thread %s did not stop", observer.name)

    def _lose(self, reason: str) -> None:
        self._dispose_observer()
        self._pending.clear()
        if self.status().state == "unreachable":
            return
        message = (
            f"watched folder {self._folder} is unreachable ({reason}); "
            f"retrying every {self._retry_every:g} s"
        )
        log.warning(message)
        self._set_state("unreachable", error=message)
        self._emit("folder_lost", self._folder, message)
