"""The connection: open (``connection``), migrate, per-thread readers, transactions, probes."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Self, cast

import duckdb
import polars as pl

from asnmon.errors import StoreError
from asnmon.store._sql import (
    CHANGE_COLUMNS,
    STORE_FAILURES,
    Pending,
    _now,
    _Transaction,
    one_line,
)
from asnmon.store.connection import FetchedCursor, connect
from asnmon.store.group import GroupMixin, WriteGroup, _Joined
from asnmon.store.schema import MIGRATIONS

# DuckDB caches table blocks up to its memory limit (80 % of RAM by default), so a
# monitor left running for months would grow by ~23 MiB per 1,000 injections until
# then (measured: benchmarks/latency.py --soak). A fixed cap keeps its memory flat.
MEMORY_MB = 256


class StoreBase(GroupMixin):
    """One DuckDB file. Writers call the ``write_*`` methods from one thread."""

    def __init__(
        self, path: str | Path, *, read_only: bool = False, memory_mb: int = MEMORY_MB
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._memory_mb = memory_mb
        self._con = connect(self.path, read_only=read_only, memory_mb=memory_mb)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pending = Pending()  # rows held for one multi-row INSERT (asnmon.store._sql)
        self._group: WriteGroup | None = None  # an open group commit (asnmon.store.group)
        if not read_only:
            self.migrate()

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reader(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor: DuckDB connections are not shared across threads.

        The writer inside a group commit reads through the group's connection, so
        it sees what it wrote (a cursor sees only what is committed). Any other
        read's result is fetched whole at once (``FetchedCursor``): a half-read one
        would hold its transaction open and block every checkpoint.
        """
        if self._own_group() is not None:
            self._pending.flush(self._con)
            return self._con
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = FetchedCursor(self._con.cursor())
            self._local.cursor = cur
        return cast(duckdb.DuckDBPyConnection, cur)  # the read part of its interface

    def schema_version(self) -> int:
        cur = self.reader()
        exists = cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name='schema_version'"
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = cur.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def migrate(self) -> None:
        con = self._con
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMP)"
        )
        current = self.schema_version()
        for version, sql in MIGRATIONS:
            if version <= current:
                continue
            con.begin()
            try:
                con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])
                con.commit()
            except duckdb.Error as exc:
                con.rollback()
                raise StoreError(f"migration {version} failed: {exc}") from exc

    def _tx(self, *, flush: bool | Collection[str] = True) -> _Transaction | _Joined:
        """A write transaction, or the open group's (``asnmon.store.group``).

        ``flush=False``: the rows held back need not be written first (only a
        write that neither reads nor changes a table rows are held for may say
        so); a collection of ``_sql`` table names (``FLAG_COLUMNS``): only those
        tables' rows, and the write changes no other table rows are held for
        (``Pending.touched``). Outside a group nothing is held yet.
        """
        group = self._own_group()
        if group is not None:
            return _Joined(self._con, group, self._pending, flush=flush)
        return _Transaction(self._con, self._lock, self._pending)

    def _held_change(self, run_id: str | None, kind: str, injection_id: int | None) -> None:
        """A ``changes`` row for the open write, held back with its other rows.

        Written with them (one INSERT for all) before the commit, or before the
        next statement of a group that reads or updates them; its ``seq`` keeps
        its place because every ``changes`` row of a held write is held.
        """
        self._pending.add(CHANGE_COLUMNS, [[_now(), run_id, kind, injection_id]])

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        """A query as a polars frame (built from rows: no pyarrow needed)."""
        cur = self.reader().execute(sql, list(params))
        columns = [d[0] for d in cur.description or ()]
        rows = cur.fetchall()
        return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)

    # ------------------------------------------------------------ health (the monitor's)

    def identity(self) -> tuple[int, int] | None:
        """(device, inode) of the file at ``path`` now; None when nothing is there.

        DuckDB keeps writing into a file deleted or replaced under it, so what it
        writes would vanish at exit: the monitor compares this with what it opened.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def probe(self, *, deep: bool = False) -> str | None:
        """None if the database reads and commits a small write; otherwise why not.

        ``deep`` also reads every row of every table, which is where a corrupted
        file shows (DuckDB checks a block's checksum only when it reads it).
        """
        try:
            cur = self.reader()
            cur.execute("SELECT count(*) FROM monitor_status").fetchone()
            if deep:
                tables = cur.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
                ).fetchall()
                for (table,) in tables:
                    cur.execute(f'SELECT max(hash("{table}")) FROM "{table}"').fetchone()
            with self._tx() as con:
                con.execute(
                    "INSERT OR REPLACE INTO monitor_status VALUES ('probe', ?, ?)",
                    [json.dumps(time.time()), _now()],
                )
        except STORE_FAILURES as exc:
            return one_line(exc)
        return None

    def reconnect(self) -> None:
        """Close and reopen ``path`` (after a fatal error, or onto a restored file).

        Every thread's cursor belonged to the old connection: each gets a new one.
        """
        with self._lock:
            with contextlib.suppress(duckdb.Error):
                self._con.close()
            self._local = threading.local()
            self._con = connect(self.path, read_only=False, memory_mb=self._memory_mb, create=False)
        self.migrate()
