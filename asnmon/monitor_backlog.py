"""The monitor's backlog: files already waiting are stored in one transaction.

A commit costs more than reading a file (``asnmon.store.group``). When the
worker takes a file and more ready files of the same run are already queued
behind it (a restart's reconciliation scan, a stall, a burst), it stores them
together; a file that arrives alone is committed at once, in a transaction
of its own (everything it writes, the run's verdict included, or nothing).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asnmon.dbguard import DatabaseGuard
from asnmon.pipeline.batch import GROUP_FILES, GROUP_SECONDS
from asnmon.requantify import run_lock
from asnmon.runbook import RunBook
from asnmon.store import Store
from asnmon.watch import WatchEvent

log = logging.getLogger("asnmon.monitor")


@dataclass(frozen=True, slots=True)
class _Stop:
    pass


class MonitorBacklog:
    """Group commits for ``Monitor``; needs its queue, store, runs and per-file path."""

    _queue: queue.Queue[Any]
    _current: WatchEvent | None
    _doing: str
    store: Store
    runs: RunBook
    db: DatabaseGuard
    out: Callable[[str], None]

    _beat: Callable[[], None]
    _check_identity: Callable[..., str]
    _handle_safely: Callable[[WatchEvent], None]
    _ingest: Callable[..., None]

    def _groupable(self, item: WatchEvent | _Stop) -> bool:
        """A ready file while the database works: stored in one transaction of its own.

        Its injection, peaks, result, flags and the run's new verdict then commit
        together or not at all (a kill between two of its writes cannot leave a
        result without its verdict), and a failure goes one by one as a group's.
        """
        return not isinstance(item, _Stop) and item.kind == "ready" and not self.db.in_trouble

    def _backlog(self, item: WatchEvent | _Stop) -> list[WatchEvent]:
        """Ready files of the same run already queued behind ``item`` (none: it is alone).

        Only what is already waiting is grouped, so a live file arriving alone is
        committed at once; a restart's reconciliation scan or a stall's backlog is
        stored ``GROUP_FILES`` to a transaction (``asnmon.store.group``).
        """
        if isinstance(item, _Stop) or item.kind != "ready" or self.db.in_trouble:
            return []
        run_dir = self.runs.run_dir(item.path)
        taken: list[WatchEvent] = []
        with self._queue.mutex:  # peek: a different event stays first in line
            waiting = self._queue.queue
            while waiting and len(taken) < GROUP_FILES - 1:
                nxt = waiting[0]
                if isinstance(nxt, _Stop) or nxt.kind != "ready":
                    break
                if self.runs.run_dir(nxt.path) != run_dir:
                    break
                taken.append(waiting.popleft())
        return taken

    def _handle_backlog(self, events: list[WatchEvent]) -> None:
        """Store ``events`` in one transaction; if anything fails, each again on its own.

        The lines and alerts of a group are given once it is committed. On any
        failure nothing of the group is stored, the runs' memory is rebuilt, and
        every file goes through ``_handle_safely`` (retry, back-off, its own error).
        """
        lines: list[str] = []
        later: list[WatchEvent] = []
        dying = False
        try:
            self._doing = (
                f"storing {len(events)} waiting files ({events[0].path.name} ...)"
                if len(events) > 1
                else f"handling ready {events[0].path.name}"
            )
            self._check_identity()
            ingestor, _ = self.runs.ingestor(events[0].path)
            until = time.monotonic() + GROUP_SECONDS
            with run_lock(self.store.path, ingestor.run.run_id), self.store.group(len(events)):
                for k, event in enumerate(events):
                    self._current = event
                    self._beat()
                    self._ingest(event.path, say=lines.append)
                    if time.monotonic() > until:  # others wait on the store: commit now
                        later = events[k + 1 :]
                        break
        # The group's own boundary: whatever failed, the files go again one by one below,
        # where every kind of failure is handled and reported per file.
        except Exception as exc:
            log.warning(
                "%s was not stored (%s): %s",
                f"a group of {len(events)} files" if len(events) > 1 else events[0].path.name,
                exc,
                "one by one" if len(events) > 1 else "again, on its own",
                exc_info=True,
            )
            self.runs.forget()  # memory may be ahead of what was committed
            for event in events[: len(events) - len(later)]:  # the rest: queued again below
                self._current = event
                self._handle_safely(event)
        # Not an Exception (a library calling sys.exit): the worker dies here and the
        # watchdog starts another. The group was rolled back, so none of its files is
        # stored: the first goes back as the file in hand (the watchdog hands it to the
        # new worker first), the others first in line behind it, in order.
        except BaseException:
            dying = True
            with contextlib.suppress(Exception):
                self.runs.forget()  # memory may be ahead of what was committed
            self._current = events[0]
            with self._queue.mutex:
                self._queue.queue.extendleft(reversed(events[1:]))
            raise
        else:
            self.db.recovered()
            if len(events) > 1:
                log.info("%d waiting files stored in one transaction", len(events) - len(later))
            for line in lines:
                self.out(line)
        finally:
            if not dying:
                self._current = None
                with self._queue.mutex:  # not taken after all: first in line again, in order
                    self._queue.queue.extendleft(reversed(later))
                    if later:
                        self._queue.not_empty.notify()
                for _ in events[1 : len(events) - len(later)]:
                    self._queue.task_done()
