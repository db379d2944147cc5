"""Watch stage: turn the folder an instrument writes into into settled file paths.

An event from the operating system says only that *something* happened to a
path: Windows reports "created" when writing starts, "closed" exists only on
Linux, and network shares (SMB/NFS) deliver no native events at all. So no
event type is trusted. Events only put a path on a queue; one settle thread
stats every pending path and hands it on (``WatchEvent`` kind ``"ready"``) once
its size and mtime have not moved for ``settle`` seconds *and* the document is
closed (``is_complete``). The ingestion worker dedupes by content hash, so
handing a path on twice is harmless; missing one is not.

Threads, all owned by one ``FolderWatcher``:

* watchdog's observer threads (native or polling): ``_EnqueueHandler`` only.
* ``asnmon-watch-settle``: owns the observer, the pending table, the folder
  health check, and is the only thread that calls ``on_event``.
* ``asnmon-watch-convert`` (only with converters): runs the vendor converter
  one file at a time, so a slow conversion never delays settling; it posts its
  results to the settle thread.

* ``asnmon-watch-check-N``: completeness checks (``watch_support.CheckPool``),
  so one slow file never holds back the others.

Each of our threads catches unexpected errors at its boundary, logs them
(logger ``asnmon.watch``), records them in ``status().last_error``, emits an
``"error"`` event and keeps going. A folder that disappears (share dropped,
drive pulled) is ``"folder_lost"``; the watcher retries every ``retry_every``
seconds, and on ``"folder_back"`` restarts the observer and rescans.

Nothing blocks the pipeline and no event is trusted to arrive: a watched
folder given as a symlink is watched at its target (re-resolved when the link
moves); only regular files are ever opened (a FIFO or a device is skipped
with a ``"not_a_file"`` note); an inotify queue overflow (``"events_lost"``)
triggers a full rescan, and so does every ``rescan_every`` seconds. A rescan
is one batch: its files are handed on together, in acquisition order (the
file's own start time stamp, see ``asnmon.acquired``), not as they settle.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gzip
import logging
import os
import queue
import stat
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, cast

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver
from watchdog.utils import UnsupportedLibcError

from asnmon.acquired import OrderKey, acquisition_key
from asnmon.convert import ConverterSpec, _run_converter, run_converter
from asnmon.errors import ConvertError, SettingsError
from asnmon.fileread import (
    DEFAULT_LIMITS,
    MB,
    RATIO_GRACE_MB,
    ReadLimits,
    tail_before_whitespace,
)
from asnmon.watch_support import CheckPool, listen_for_overflow, not_a_file, stop_listening

__all__ = [
    "DEFAULT_PATTERNS",
    "ConverterSpec",
    "FolderWatcher",
    "WatchEvent",
    "WatchStatus",
    "is_complete",
    "run_converter",
    "scan_folder",
]

log = logging.getLogger("asnmon.watch")

EventKind = Literal[
    "ready",
    "incomplete",
    "convert_error",
    "folder_lost",
    "folder_back",
    "error",
    "not_a_file",
    "events_lost",
]
WatchState = Literal["watching", "unreachable", "stopped"]
ObserverKind = Literal["native", "polling"]

DEFAULT_PATTERNS: tuple[str, ...] = ("*.mzML", "*.mzml", "*.mzML.gz")

_CLOSING_TAGS = (b"</indexedmzML>", b"</mzML>")
_HEAD_BYTES = 2048  # the root element is always within the first lines
_TAIL_BYTES = 8192  # an indexedmzML index footer is far shorter than this
_MAX_TRAILING_SPACE = 64 << 20  # bytes of trailing whitespace scanned back through
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_CHUNK = 1 << 20
_TEMP_PREFIXES = (".", "~$", "~")
_TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".swp", "~")
# Reads (ours, the worker's) must not put a file back on the pending table.
_IGNORED_EVENT_TYPES = frozenset({"opened", "closed_no_write"})
_FALLBACK_POLL = 1.0  # when inotify cannot start (watch or instance limit)
_JOIN_TIMEOUT = 5.0
_PRUNE_EVERY = 600.0  # s; the memory of handed-on files drops those no longer on disk
_START_WAIT = 10.0
_MAX_DRAIN = 10_000
_CHECKERS = 3  # completeness checks at once: a slow file takes one, the others go on
_ORDER_WAIT = 0.5  # s ready files wait for a check still running, to keep their order
_BATCH_WAIT = 2.0  # s a rescan batch waits for one slow check before the rest go on
_LOST_NOTICE_EVERY = 60.0  # s between "events lost" notices (each loss still rescans)


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """What the watcher tells the rest of asnmon; ``at`` is wall-clock epoch seconds."""

    kind: EventKind
    path: Path
    message: str
    at: float


@dataclass(frozen=True, slots=True)
class WatchStatus:
    """A snapshot for the dashboard; ``since`` is when ``state`` last changed."""

    state: WatchState
    folder: Path
    observer: ObserverKind
    pending: int
    last_event_at: float | None
    last_error: str | None
    since: float


# ---------------------------------------------------------------- completeness


def is_complete(path: Path, limits: ReadLimits = DEFAULT_LIMITS) -> bool:
    """Whether a reader will find the whole document.

    mzML: the root's closing tag ends the file, trailing whitespace aside (an
    indexedmzML must end with ``</indexedmzML>``, because its ``</mzML>`` comes
    before the index). gzip (by magic bytes, whatever the name): the stream
    decompresses to its end with a valid CRC and the contents end with the closing
    tag. Anything else (vendor raw files, raw folders) is complete once settled,
    which the caller checks. Unreadable or empty files are not complete.

    Nothing here can block or run away: only regular files are opened (non-blocking,
    after a stat), and a FIFO, device or socket, a file over ``max_file_mb`` or a gzip
    stream past the inflation limits counts as complete at once, so that the reader
    refuses it with a READ_ERROR that says why instead of the settle thread waiting.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limits.max_file_bytes:
            return True  # a folder (raw data) is settled; the rest the reader refuses
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())  # swapped for a FIFO between stat and open?
            if not stat.S_ISREG(st.st_mode):
                return True
            head = fh.read(_HEAD_BYTES)
            if not head:
                return False
            if head.startswith(_GZIP_MAGIC):
                fh.seek(0)
                return _gzip_complete(fh, limits)
            if not _looks_like_mzml(path, head):
                return True
            tail = tail_before_whitespace(fh, st.st_size, _TAIL_BYTES, _MAX_TRAILING_SPACE)
            return tail is None or _ends_closed(head, tail)
    except OSError as exc:
        log.debug("cannot check %s for completeness: %s", path, exc)
        return False


def _looks_like_mzml(path: Path, head: bytes) -> bool:
    """An XML document that should end in a closing tag; junk under an .mzML name is not.

    Bytes that do not even start like XML will never "complete": they are handed on
    once settled, so the reader can store them as READ_ERROR instead of waiting
    ``max_write`` for a closing tag that cannot come.
    """
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start and not start.startswith(b"<"):
        return False
    return path.name.lower().endswith(".mzml") or b"<mzML" in head or b"<indexedmzML" in head


def _ends_closed(head: bytes, tail: bytes) -> bool:
    end = tail.rstrip(b" \t\r\n")
    if b"<indexedmzML" in head:
        return end.endswith(b"</indexedmzML>")
    return end.endswith(_CLOSING_TAGS)


def _gzip_complete(fh: IO[bytes], limits: ReadLimits = DEFAULT_LIMITS) -> bool:
    """Decompress in chunks to EOF; gzip checks each member's CRC and length.

    Bounded like the reader: past ``max_inflated_mb``, or past the grace size at
    more than ``max_ratio`` times the compressed bytes read, the stream is handed
    on as it is (the reader refuses it plainly) instead of inflating a bomb here.
    """
    head = b""
    tail = b""
    produced = 0
    try:
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            while chunk := gz.read(_GZIP_CHUNK):
                produced += len(chunk)
                ratio = produced / max(1, fh.tell())
                if produced > limits.max_inflated_bytes or (
                    produced > RATIO_GRACE_MB * MB and ratio > limits.max_ratio
                ):
                    log.debug("gzip stream past the [read] limits: handed on to be refused")
                    return True
                if len(head) < _HEAD_BYTES:
                    head += chunk[: _HEAD_BYTES - len(head)]
                content = chunk.rstrip(b" \t\r\n")  # the tail is content, not padding
                if content:
                    tail = (tail + content)[-_TAIL_BYTES:]
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        log.debug("gzip stream not complete: %s", exc)
        return False
    return bool(head) and _ends_closed(head, tail)


# ---------------------------------------------------------------- scanning


def _is_temporary(name: str) -> bool:
    """Names that writers use before renaming into place, and hidden files."""
    lower = name.lower()
    return lower.startswith(_TEMP_PREFIXES) or lower.endswith(_TEMP_SUFFIXES)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    """Case-insensitive: acquisition PCs run Windows, where .RAW and .raw are one file."""
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p.lower()) for p in patterns)


def scan_folder(folder: Path, patterns: Sequence[str], recursive: bool) -> list[Path]:
    """Candidate files in acquisition order (mtime, then name), temporary names skipped.

    A directory whose name matches a pattern (``*.d``: an Agilent or Waters raw
    folder) is itself a candidate and is not descended into. Raises OSError
    when ``folder`` itself cannot be listed; unreadable subfolders are skipped
    with a warning.
    """
    found: list[tuple[int, str, str, Path]] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError as exc:
            if current == folder:
                raise
            log.warning("skipping unreadable folder %s: %s", current, exc)
            continue
        for entry in entries:
            if _is_temporary(entry.name):
                continue
            try:
                is_dir = entry.is_dir()
                mtime = entry.stat().st_mtime_ns
            except OSError:  # vanished between listing and stat
                continue
            if _matches(entry.name, patterns):
                found.append((mtime, entry.name, entry.path, Path(entry.path)))
            elif is_dir and recursive:
                stack.append(Path(entry.path))
    found.sort(key=lambda item: item[:3])
    return [item[3] for item in found]


# ---------------------------------------------------------------- watching


Signature = tuple[bool, int, int, int]  # is_dir, size, newest mtime_ns, entries


class _NotAFile(Exception):
    """The path is a FIFO, a device or a socket: opening or reading it could block forever."""


def _signature(path: Path) -> Signature:
    """Size and mtime of a file; for a raw folder, totals over everything inside.

    Raises ``_NotAFile`` for anything but a regular file or a folder (the target of a
    symlink counts): ``stat`` never opens it, so this is where it is caught.
    """
    st = path.stat()
    what = not_a_file(st.st_mode)
    if what is not None:
        raise _NotAFile(what)
    if not stat.S_ISDIR(st.st_mode):
        return (False, st.st_size, st.st_mtime_ns, 1)
    size, newest, count = 0, st.st_mtime_ns, 1
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                entries = list(it)
        except FileNotFoundError:  # a subfolder removed mid-walk: its parent's mtime moved
            continue
        for entry in entries:
            try:
                est = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            count += 1
            size += est.st_size
            newest = max(newest, est.st_mtime_ns)
            if stat.S_ISDIR(est.st_mode):
                stack.append(entry.path)
    return (True, size, newest, count)


@dataclass(slots=True)
class _Track:
    """One path waiting to settle (mutable, private to the settle thread)."""

    kind: Literal["file", "raw"]
    first_seen: float
    changed_at: float
    sig: Signature | None = None
    checked: Signature | None = None
    complete: bool = False
    reported: bool = False
    checking: Signature | None = None  # a check of this signature is running
    check_started: float = 0.0
    key: OrderKey | None = None
    batch: int | None = None  # the rescan it came from; handed on with the rest of it


class _EnqueueHandler(FileSystemEventHandler):
    """Runs on watchdog's thread, so it only queues the path; a move queues its destination."""

    def __init__(self, inbox: queue.SimpleQueue[tuple[str, object]]) -> None:
        super().__init__()
        self._inbox = inbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENT_TYPES:
            return
        self._inbox.put(("path", os.fsdecode(event.dest_path or event.src_path)))


class FolderWatcher:
    """Hands every completely written injection file in ``folder`` to ``on_event``.

    ``poll=None`` uses native events; ``poll=SECONDS`` polls (network shares).
    ``converters`` maps an extension (``".raw"``, ``".d"``, ``".wiff"``) to the
    command that makes mzML of such a file or folder, written under
    ``converted_dir`` (required with converters; if it lies inside ``folder``
    it is ignored by the watcher). ``start()`` also runs the reconciliation
    scan, after the observer is up, so nothing written around start-up is lost.
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

        self._inbox: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._jobs: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._handler = _EnqueueHandler(self._inbox)
        self._stopping = threading.Event()
        self._first_check = threading.Event()
        self._threads: list[threading.Thread] = []
        self._checks = CheckPool(self._check, self._checked, _CHECKERS)

        # Owned by the settle thread.
        self._observer: BaseObserver | None = None
        self._ident: tuple[int, int] | None = None
        self._pending: dict[Path, _Track] = {}
        self._handed: dict[Path, Signature] = {}
        self._check_now = False
        self._next_health = 0.0
        self._next_rescan = time.monotonic() + rescan_every
        self._batches = 0
        self._held: list[tuple[OrderKey, Path]] = []  # ready, waiting for their batch
        self._not_files: set[Path] = set()
        self._lost_noticed = -_LOST_NOTICE_EVERY
        self._next_prune = time.monotonic() + _PRUNE_EVERY
        self._next_settle = 0.0

        # Read by status() from any thread.
        self._lock = threading.Lock()
        self._state: WatchState = "stopped"
        self._since = time.time()
        self._observer_kind: ObserverKind = "native" if poll is None else "polling"
        self._pending_count = 0
        self._last_event_at: float | None = None
        self._last_error: str | None = None

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

    def stop(self, timeout: float = _JOIN_TIMEOUT) -> bool:
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

    def _track(self, path: Path, batch: int | None = None) -> None:
        if path in (self._folder, self._real):  # the folder itself was deleted or moved
            self._check_now = True
            return
        if self._observer is None:
            return
        found = self._target_for(path)
        if found is None:
            return
        target, kind = found
        if target not in self._pending:
            now = time.monotonic()
            self._pending[target] = _Track(kind=kind, first_seen=now, changed_at=now, batch=batch)

    def _target_for(self, path: Path) -> tuple[Path, Literal["file", "raw"]] | None:
        """The path to watch for an event path: itself, or the raw folder it sits in."""
        try:
            parts = path.relative_to(self._real).parts
        except ValueError:
            return None
        if not parts:
            return None
        for converted in {self._converted_dir, self._converted_real} - {None}:
            if converted is not None and path.is_relative_to(converted):
                return None
        for i, part in enumerate(parts):
            if _is_temporary(part):
                return None
            if self._converter_for(part) is not None:
                if i > 0 and not self._recursive:
                    return None
                return self._real.joinpath(*parts[: i + 1]), "raw"
        if len(parts) > 1 and not self._recursive:
            return None
        if _matches(parts[-1], self._patterns):
            return path, "file"
        return None

    def _converter_for(self, name: str) -> ConverterSpec | None:
        suffix = os.path.splitext(name)[1].lower()
        return self._converters.get(suffix) if suffix else None

    def _settle_pending(self) -> None:
        ready: list[tuple[OrderKey, Path, Signature, int | None]] = []
        for target, track in list(self._pending.items()):
            try:
                sig = _signature(target)
            except FileNotFoundError:  # renamed away or deleted
                del self._pending[target]
                continue
            except _NotAFile as exc:
                del self._pending[target]
                self._skip(target, str(exc))
                continue
            except OSError as exc:  # e.g. a share hiccup: try again next tick
                log.debug("cannot stat %s: %s", target, exc)
                continue
            if track.kind == "file" and sig[0]:
                del self._pending[target]
                continue
            if sig != track.sig:  # stamped after the stat, so stability is never overstated
                if track.sig is not None:
                    track.batch = None  # still being written: not part of the batch
                track.sig, track.changed_at = sig, time.monotonic()
            if self._handed.get(target) == sig:  # a duplicate event, nothing changed
                del self._pending[target]
                continue
            now = time.monotonic()
            if now - track.changed_at >= self._settle:
                if track.kind == "raw":
                    del self._pending[target]
                    self._handed[target] = sig
                    self._jobs.put(target)
                    continue
                if track.checked != sig:
                    if track.checking != sig:
                        track.checking, track.check_started = sig, now
                        self._checks.submit(target, sig)
                    elif track.batch is not None and now - track.check_started > _BATCH_WAIT:
                        track.batch = None  # one slow check: the rest of the batch goes on
                elif track.complete:
                    ready.append(
                        (track.key or self._fallback_key(target), target, sig, track.batch)
                    )
                    continue
                else:
                    track.batch = None  # settled but not closed: it comes when it completes
            if not track.reported and now - track.first_seen >= self._max_write:
                track.reported = True
                track.batch = None
                self._emit(
                    "incomplete",
                    target,
                    f"{target.name} is still being written or has no closing mzML tag "
                    f"after {self._max_write:g} s; it will be handed on if it completes",
                )
        for key, target, sig, _ in ready:
            del self._pending[target]
            self._handed[target] = sig
            self._held.append((key, target))
        now = time.monotonic()
        in_flight = any(  # a file that may come first is still being checked: wait a moment
            t.checking is not None and now - t.check_started <= _ORDER_WAIT
            for t in self._pending.values()
        )
        if (
            self._held
            and not in_flight
            and not any(t.batch is not None for t in self._pending.values())
        ):
            held, self._held = sorted(self._held), []
            for _, target in held:
                self._emit("ready", target, f"{target.name} is complete")

    def _check(self, path: Path) -> tuple[bool, OrderKey]:
        """On a check thread: complete? and where it goes in acquisition order."""
        complete = is_complete(path, self._read_limits)
        return complete, (self._order_key(path) if complete else self._fallback_key(path))

    def _checked(self, path: Path, token: object, result: object) -> None:
        self._inbox.put(("checked", (path, token, result)))

    def _check_done(self, path: Path, sig: object, result: object) -> None:
        track = self._pending.get(path)
        if track is None or track.checking != sig:
            return  # gone, or changed since: a newer check decides
        track.checking = None
        track.checked = cast(Signature, sig)  # if the file changed since, it is checked again
        complete, key = result if isinstance(result, tuple) else (False, None)
        track.complete, track.key = bool(complete), key
        self._next_settle = 0.0  # hand it on now, not a tick later

    @staticmethod
    def _fallback_key(path: Path) -> OrderKey:
        return (float("inf"), 10**9, 0.0, path.name)

    def _skip(self, path: Path, what: str) -> None:
        if path in self._not_files:
            return
        self._not_files.add(path)
        self._emit(
            "not_a_file",
            path,
            f"{path.name} is {what}, not a regular file: asnmon never opens it (it could "
            "block or never end). If it should be an injection, copy the real file in.",
        )

    def _lost(self, reason: str) -> None:
        """Events were dropped: rescan everything, and say so (at most once a minute)."""
        now = time.monotonic()
        if now - self._lost_noticed >= _LOST_NOTICE_EVERY:
            self._lost_noticed = now
            self._emit("events_lost", self._folder, f"{reason}; rescanning {self._real}")
        log.warning("%s; rescanning %s", reason, self._real)
        self._rescan()

    # ------------------------------------------------------------ folder health

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

    def _is_raw(self, path: Path) -> bool:
        return self._converter_for(path.name) is not None

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
                _FALLBACK_POLL,
            )
            observer = PollingObserver(timeout=_FALLBACK_POLL)
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
            observer.join(_JOIN_TIMEOUT)
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

    def _rescan(self) -> None:
        """Track every candidate as one batch, handed on together in acquisition order."""
        try:
            paths = scan_folder(self._real, self._scan_patterns, self._recursive)
        except OSError as exc:
            log.warning("cannot scan %s: %s", self._real, exc)
            self._check_now = True
            return
        self._batches += 1
        for path in paths:
            self._track(path, self._batches)

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

    # ------------------------------------------------------------ output

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
