"""The pending table: a path waits here until it has settled and its document is closed.

Every event only puts a path on the table; each tick stats every pending path
and hands it on once its size and mtime have not moved for ``settle`` seconds
*and* the completeness check says the document is closed. Ready files are held
until nothing that may come before them is still being checked, then handed
on in acquisition order.

A file that settles without its closing tag is waiting for its writer, up to
``max_write``. But an instrument writes one injection at a time: once a file
of the same run folder that was written *after* it (a newer mtime) has been
handed on complete, the instrument has moved on, and the open one was
abandoned (an aborted acquisition). It is reported ``"incomplete"`` at once,
not two hours later, and still handed on normally if it ever completes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from asnmon.acquired import OrderKey
from asnmon.convert import ConverterSpec
from asnmon.watch.base import WatcherBase
from asnmon.watch.complete import is_complete
from asnmon.watch.scan import NotAFile, Signature, is_temporary, matches, scan_folder, signature

log = logging.getLogger("asnmon.watch")

# Both count from when a check starts running, not from when it was asked for: after
# a restart under load hundreds of checks wait their turn for seconds, and files were
# handed on in the order their checks happened to finish (the soak's IS % differences).
# A check that has run this long is slow (a big .gz inflating), not merely descheduled
# on a loaded machine: the files behind it go on without it.
ORDER_WAIT = 1.5  # s ready files wait for a check still running, to keep their order
BATCH_WAIT = 2.0  # s a rescan batch waits for one slow check before the rest go on
QUEUE_WAIT = 60.0  # s at most a check may wait its turn and still hold the others (hung share)
LOST_NOTICE_EVERY = 60.0  # s between "events lost" notices (each loss still rescans)
MB = 1 << 20


@dataclass(slots=True)
class Track:
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


class Settler(WatcherBase):
    """The settle thread's work on the pending table (see the module docstring)."""

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
            self._pending[target] = Track(kind=kind, first_seen=now, changed_at=now, batch=batch)

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
            if is_temporary(part):
                return None
            if self._converter_for(part) is not None:
                if i > 0 and not self._recursive:
                    return None
                return self._real.joinpath(*parts[: i + 1]), "raw"
        if len(parts) > 1 and not self._recursive:
            return None
        if matches(parts[-1], self._patterns):
            return path, "file"
        return None

    def _converter_for(self, name: str) -> ConverterSpec | None:
        suffix = os.path.splitext(name)[1].lower()
        return self._converters.get(suffix) if suffix else None

    def _settle_pending(self) -> None:
        ready: list[tuple[OrderKey, Path, Signature, int | None]] = []
        for target, track in list(self._pending.items()):
            try:
                sig = signature(target)
            except FileNotFoundError:  # renamed away or deleted
                del self._pending[target]
                continue
            except NotAFile as exc:
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
                    elif track.batch is not None and (
                        self._checks.running_for(target, track.checking, now) > BATCH_WAIT
                        or now - track.check_started > QUEUE_WAIT
                    ):
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
            if not sig[0]:
                newest = self._moved_on.get(target.parent)
                if newest is None or sig[2] > newest[0]:
                    self._moved_on[target.parent] = (sig[2], target.name)
        if self._one_writer:
            self._report_abandoned()  # before the files that show it are handed on
        now = time.monotonic()
        in_flight = any(  # a file that may come first is still being checked: wait a moment
            t.checking is not None
            and self._checks.running_for(p, t.checking, now) <= ORDER_WAIT
            and now - t.check_started <= QUEUE_WAIT
            for p, t in self._pending.items()
        )
        if (
            self._held
            and not in_flight
            and not any(t.batch is not None for t in self._pending.values())
        ):
            held, self._held = sorted(self._held), []
            for _, target in held:
                self._emit("ready", target, f"{target.name} is complete")

    def _report_abandoned(self) -> None:
        """Open files older than a complete one of their run folder: the instrument moved on.

        Only a file checked at its current signature, settled and not closed, counts;
        one still growing is being written. Reported once; it stays pending, so a
        file that does complete after all is handed on (and supersedes the report).
        """
        now = time.monotonic()
        for target, track in self._pending.items():
            sig = track.sig
            if (
                track.reported
                or track.kind != "file"
                or sig is None
                or track.checked != sig
                or track.complete
                or now - track.changed_at < self._settle
            ):
                continue
            newer = self._moved_on.get(target.parent)
            if newer is None or newer[0] <= sig[2]:
                continue
            track.reported = True
            track.batch = None
            quiet = max(0.0, time.time() - sig[2] / 1e9)
            self._emit(
                "incomplete",
                target,
                f"{target.name} stopped growing {quiet:.0f} s ago at {sig[1] / MB:.2f} MB "
                f"without its closing mzML tag, and {newer[1]}, written after it, is complete: "
                "the instrument moved on, so this acquisition was probably aborted. It is "
                "ingested normally if the file completes later.",
            )

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
        if now - self._lost_noticed >= LOST_NOTICE_EVERY:
            self._lost_noticed = now
            self._emit("events_lost", self._folder, f"{reason}; rescanning {self._real}")
        log.warning("%s; rescanning %s", reason, self._real)
        self._rescan()

    def _is_raw(self, path: Path) -> bool:
        return self._converter_for(path.name) is not None

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
