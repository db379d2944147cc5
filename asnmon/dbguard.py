"""Keep the monitor's database usable, and say so loudly when it is not.

A monitor that stops writing while its process stays up is the failure labs
trust least, so every store failure becomes a state (DATABASE PROBLEM: shown,
alerted, ``/healthz`` 503) with retries and back-off, never a dead thread.
Files wait on disk meanwhile and are ingested, in order, once a write works
again: nothing is lost, nothing is stored twice.

Three faults need more than a retry:

* the disk fills or the file is locked: the open connection survives; retry;
* DuckDB declares the database invalidated after a fatal error: reopen it;
* the file is deleted or swapped for another file while open: DuckDB would
  go on writing into the old inode, lost at exit. A deleted file is written
  back from the open connection; a replaced one is saved beside it under a
  ``.replaced-TIME`` name and the monitor continues on the new file.

Before all that the file must open: ``open_waiting`` waits with the same
back-off while another process holds it or the disk cannot take a new file,
and says so, instead of ending ``asnmon run`` (a monitor restarted by a
supervisor at 3 a.m. while someone's ``asnmon dashboard --db`` is open must
start by itself once it is closed). A file that is not a database is refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from asnmon.errors import NotADatabaseError, StoreError
from asnmon.store import STORE_FAILURES, Store

log = logging.getLogger("asnmon.dbguard")

BACKOFF_FIRST = 0.5  # s before the first retry
BACKOFF_MAX = 30.0  # s between retries at most: a freed disk is noticed within this
STILL_WAITING_EVERY = 300.0  # s between "still waiting" lines while the file cannot be opened

Identity = Literal["same", "rescued", "switched", "failed"]


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    """A snapshot for ``/healthz`` and the banner; ``since`` is epoch seconds."""

    ok: bool
    problem: str | None
    since: float | None
    failures: int
    notice: str | None  # the last rescue (file deleted or replaced), kept for people to see


class DatabaseGuard:
    """The worker's view of its database: problem state, back-off, file identity.

    ``report(code, message)`` tells people (terminal, alert); it is called once
    when a problem starts and once when it clears, never once per retry.
    Written by the worker thread only; ``health()`` may be read from any thread.
    """

    def __init__(self, store: Store, report: Callable[[str, str], None]) -> None:
        self.store = store
        self._report = report
        self._opened = store.identity()
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._since: float | None = None
        self._failures = 0
        self._notice: str | None = None
        self._delay = BACKOFF_FIRST
        self._next_try = 0.0

    def health(self) -> DatabaseHealth:
        with self._lock:
            return DatabaseHealth(
                ok=self._problem is None,
                problem=self._problem,
                since=self._since,
                failures=self._failures,
                notice=self._notice,
            )

    @property
    def in_trouble(self) -> bool:
        return self._problem is not None

    # ------------------------------------------------------------ failures

    def failed(self, doing: str, why: str) -> None:
        """A store operation failed: enter (or stay in) DATABASE PROBLEM, schedule a retry."""
        with self._lock:
            first = self._problem is None
            self._problem = f"{doing}: {why}"
            self._failures += 1
            if first:
                self._since = time.time()
                self._delay = BACKOFF_FIRST
            self._next_try = time.monotonic() + self._delay
            self._delay = min(BACKOFF_MAX, self._delay * 2)
        log.error("database problem while %s: %s", doing, why)
        if first:
            self._report(
                "DATABASE_PROBLEM",
                f"{self.store.path}: {doing} failed ({why}). asnmon retries with back-off "
                f"(at most every {BACKOFF_MAX:g} s); new files wait on disk and are "
                "ingested when the database works again.",
            )

    def due(self) -> bool:
        """Whether the back-off has passed and a retry may be made."""
        return time.monotonic() >= self._next_try

    def wait(self, stopped: threading.Event, beat: Callable[[], None]) -> bool:
        """Sleep until the next retry (the heartbeat kept fresh); False if stopping."""
        while not self.due():
            beat()
            if stopped.wait(min(1.0, max(0.0, self._next_try - time.monotonic()))):
                return False
        beat()
        return not stopped.is_set()

    def usable(self) -> str | None:
        """None if the database reads and writes now (reopened if DuckDB invalidated it)."""
        problem = self.store.probe()
        if problem is not None and "invalidated" in problem.lower():
            try:
                self.store.reconnect()
            except STORE_FAILURES as exc:
                return f"{problem}; reopening failed: {exc}"
            problem = self.store.probe()
        return problem

    def recovered(self) -> None:
        """A write worked: leave DATABASE PROBLEM (said once)."""
        with self._lock:
            if self._problem is None:
                return
            since, failures = self._since or time.time(), self._failures
            self._problem, self._since, self._failures = None, None, 0
            self._delay, self._next_try = BACKOFF_FIRST, 0.0
        self._report(
            "DATABASE_BACK",
            f"{self.store.path} works again after {time.time() - since:.0f} s "
            f"({failures} failed attempt(s)); the files that waited are being ingested.",
        )

    # ------------------------------------------------------------ file identity

    def check_identity(self) -> Identity:
        """Is the file at the path still the one we opened? Rescue it if not."""
        now = self.store.identity()
        if now == self._opened:
            return "same"
        path = self.store.path
        stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
        if now is None:
            what = f"the database file {path} was deleted while asnmon had it open"
            try:
                self.store.save_open_copy(path)
                self.store.reconnect()
            except STORE_FAILURES as exc:
                self.failed("writing the deleted database back", f"{what}; {exc}")
                return "failed"
            self._opened = self.store.identity()
            message = (
                f"{what}. asnmon wrote its open copy back to {path}: results, flags and "
                "acknowledgements are all there. Find out what deleted it."
            )
            result: Identity = "rescued"
        else:
            what = f"the database file {path} was replaced by another file while asnmon had it open"
            saved = path.with_name(f"{path.stem}.replaced-{stamp}{path.suffix}")
            try:
                self.store.save_open_copy(saved)
                kept = f"the database as asnmon had it is saved as {saved}"
            except STORE_FAILURES as exc:
                kept = f"the database as asnmon had it could NOT be saved ({exc})"
            try:
                self.store.reconnect()
            except STORE_FAILURES as exc:
                self.failed("opening the replacing database file", f"{what}; {kept}; {exc}")
                return "failed"
            self._opened = now
            message = (
                f"{what}; {kept}. asnmon now writes the new file and re-checks the folder "
                "for files the new file does not hold. Acknowledgements made since that "
                "file was copied are only in the saved one."
            )
            result = "switched"
        log.error("%s", message)
        with self._lock:
            self._notice = f"{datetime.now():%H:%M:%S} {message}"
        self._report("DATABASE_PROBLEM", message)
        return result


def open_waiting(
    path: str,
    report: Callable[[str, str], None],
    stopped: threading.Event,
    *,
    still_every: float = STILL_WAITING_EVERY,
    on_wait: Callable[[StoreError, int], None] | None = None,
) -> Store:
    """Open the monitor's database, retrying with back-off while it cannot be opened.

    ``report(code, message)`` as for ``DatabaseGuard``: once when the wait
    starts (the reason, e.g. "locked by process N"), every ``still_every`` s
    while it lasts, once when the file opens. A file that is not a database
    (``NotADatabaseError``) is raised at once: waiting cannot fix it. Raises
    ``StoreError`` if ``stopped`` is set while waiting. ``on_wait(exc, attempts)`` is
    called at every failed attempt (``asnmon.monitor_waiting``: ``/healthz`` says why).
    """
    delay, began, told_at = BACKOFF_FIRST, time.monotonic(), 0.0
    failures = 0
    while True:
        try:
            store = Store(path)
        except NotADatabaseError:
            raise
        except StoreError as exc:
            failures += 1
            now = time.monotonic()
            log.warning("cannot open the database (attempt %d): %s", failures, exc)
            if on_wait is not None:
                on_wait(exc, failures)
            if failures == 1 or now - told_at >= still_every:
                waited = f" (waiting for {now - began:.0f} s)" if failures > 1 else ""
                report(
                    "DATABASE_PROBLEM",
                    f"{exc}{waited}. asnmon retries with back-off (at most every "
                    f"{BACKOFF_MAX:g} s) and starts as soon as it opens; files wait on disk.",
                )
                told_at = now
            if stopped.wait(delay):
                raise StoreError(f"{path}: stopped while waiting for the database") from exc
            delay = min(BACKOFF_MAX, delay * 2)
            continue
        if failures:
            report(
                "DATABASE_BACK",
                f"{path} opened after {time.monotonic() - began:.0f} s "
                f"({failures} failed attempt(s)); the monitor starts.",
            )
        return store
