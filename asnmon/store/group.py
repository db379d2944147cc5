"""Group commits: the writes of several injections in one transaction.

A commit makes DuckDB write and fsync its log: ~1-8 ms on this kind of
machine, more than reading and integrating a file. When ingestion has a
backlog (``asnmon ingest``, a monitor catching up after a restart or a stall)
the single writer stores several files in one transaction (``Store.group``).
A live file that arrives alone is never held: its callers group only what is
already waiting, and a file alone is a group of its own (one commit for all its
writes, the run's new verdict included, instead of one per write).

Inside a group every write method joins the group's transaction instead of
opening its own, and the writer's own reads go through the same connection,
so it sees what it has written; other threads (the dashboard) see the group
when it commits, whole or not at all. An error inside the group, even one a
caller catches and goes on from, leaves the group to be rolled back: DuckDB
has no savepoints, so a half-written injection could otherwise be committed
with the rest. The caller then stores the group's files again one by one
(``asnmon.pipeline.batch``), so a failure is the file's own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass

import duckdb

from asnmon.errors import StoreError
from asnmon.store._sql import Pending

GROUP_IDS = 32  # injection ids drawn at once inside a group (its files, if it says fewer)


@dataclass(slots=True)
class WriteGroup:
    """The open group: which thread writes it, and what has gone wrong in it."""

    owner: int
    files: int = 0  # files the caller means to store in it (0: up to GROUP_IDS)
    writes: int = 0  # write transactions joined
    failed: BaseException | None = None  # set: the group will be rolled back


class _Joined:
    """A write method's transaction inside a group: the group's own, held open."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        group: WriteGroup,
        pending: Pending,
        *,
        flush: bool | Collection[str],
    ) -> None:
        self._con = con
        self._group = group
        self._pending = pending
        self._flush = flush

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        if self._group.failed is not None:
            raise StoreError(
                f"an earlier write of this group failed ({self._group.failed}); "
                "the group is rolled back"
            )
        if self._flush is True:  # rows held back come first: this write may read or update them
            self._pending.flush(self._con)
            self._pending.touched(None)  # ... and change any table
        elif self._flush:  # ... of the tables it names, the only ones it changes
            self._pending.flush(self._con, self._flush)
            self._pending.touched(self._flush)
        return self._con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._group.writes += 1
        if isinstance(exc, BaseException):
            self._group.failed = exc
        if isinstance(exc, duckdb.Error):
            raise StoreError(f"database write failed: {exc}") from exc


class GroupMixin:
    """``Store.group()``; the transaction and reader hooks live in ``StoreBase``."""

    _con: duckdb.DuckDBPyConnection
    _lock: threading.Lock
    _pending: Pending
    _group: WriteGroup | None

    def _own_group(self) -> WriteGroup | None:
        g = self._group
        return g if g is not None and g.owner == threading.get_ident() else None

    @contextlib.contextmanager
    def group(self, files: int = 0) -> Iterator[WriteGroup]:
        """One transaction for every write until the block ends; committed whole or not.

        ``files``: how many injections the caller means to store in it (at most), so
        a group of one file draws one id, not a block it throws away.

        Raises ``StoreError`` at the end if anything inside failed (the group is
        then rolled back and nothing of it is stored). Nested groups join the
        outer one. Other threads' writes wait until the group ends: keep it short
        (``asnmon.pipeline.batch`` bounds it by files and seconds).
        """
        own = self._own_group()
        if own is not None:
            yield own
            return
        self._lock.acquire()
        try:
            self._con.begin()
        except duckdb.Error as exc:
            self._lock.release()
            raise StoreError(f"database write failed: {exc}") from exc
        g = WriteGroup(threading.get_ident(), files=max(files, 0))
        self._group = g
        try:
            yield g
        except BaseException:
            self._end_group(commit=False)
            raise
        if g.failed is not None:
            self._end_group(commit=False)
            raise StoreError(
                f"a write of the group failed, nothing of it was stored: {g.failed}"
            ) from g.failed
        self._end_group(commit=True)

    def _end_group(self, *, commit: bool) -> None:
        self._group = None
        try:
            if commit:
                try:
                    self._pending.flush(self._con)
                    self._con.commit()
                except duckdb.Error as exc:
                    self._pending.clear()
                    with contextlib.suppress(duckdb.Error):
                        self._con.rollback()
                    raise StoreError(
                        f"committing a group of writes failed, nothing of it was stored: {exc}"
                    ) from exc
            else:
                self._pending.clear()
                with contextlib.suppress(duckdb.Error):
                    self._con.rollback()
        finally:
            self._pending.end()
            self._lock.release()
