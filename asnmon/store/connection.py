"""Opening the database file: created whole or not at all, a stranger never overwritten.

DuckDB writes a new database's header when it creates the file. On a full
disk that write fails and leaves a 0-byte file, which DuckDB then refuses ("not
a valid DuckDB database file") at every later start: the soak's monitor never
came back after a disk-full fault. So a new database is made under a temporary
name beside its path and given the path only once DuckDB has written and
closed it; a crash or a full disk at any moment leaves either no file or a
whole one. A 0-byte file with no write-ahead log (what a failed creation by an
older asnmon, or by DuckDB itself, leaves) holds nothing and is made anew;
any other file that is not a DuckDB database is refused by name and never
written to. Another process holding the file is a ``DatabaseLockedError``
naming it, which ``asnmon run`` waits out (``asnmon.dbguard``).
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import duckdb

from asnmon.errors import DatabaseLockedError, NotADatabaseError, StoreError

log = logging.getLogger("asnmon.store")

# A DuckDB file starts with an 8-byte checksum, then these 4 bytes (its main header).
MAGIC = b"DUCK"
MAGIC_AT = 8
LEFTOVER_AGE = 600.0  # s: a ``.creating`` file older than this was left by a crash

FileState = Literal["absent", "empty", "duckdb"]


class FetchedCursor:
    """A thread's read cursor whose every result is fetched whole when it runs.

    DuckDB keeps a statement's transaction open until its result is read to the
    end or the cursor runs its next statement, and an open transaction blocks
    every checkpoint, DuckDB's automatic one included ("Cannot CHECKPOINT: there
    are other write transactions active"). One ``fetchone()`` on a one-row query
    (``last_change`` every second in each dashboard thread, the schema check of
    the thread that opened the store) leaves one open for as long as that thread
    is idle: the monitor's write-ahead log was never merged (36 MB in the soak).
    Only reads go through here; anything else is passed to the DuckDB cursor.
    """

    __slots__ = ("_at", "_cur", "_rows", "description")

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur
        self._rows: list[Any] = []
        self._at = 0
        self.description: Any = None

    def execute(self, query: str, parameters: Sequence[Any] | None = None) -> Self:
        if parameters is None:
            self._cur.execute(query)
        else:
            self._cur.execute(query, parameters)
        self.description = self._cur.description
        self._rows = self._cur.fetchall() if self.description is not None else []
        self._at = 0
        return self

    def fetchone(self) -> Any:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[Any]:
        rest, self._at = self._rows[self._at :], len(self._rows)
        return rest

    def close(self) -> None:
        self._cur.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def wal_of(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def examine(path: Path) -> FileState:
    """What is at ``path``; ``NotADatabaseError`` if it is something asnmon must not touch."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        raise StoreError(f"{path}: cannot look at the database file ({exc})") from exc
    if path.is_dir():
        raise NotADatabaseError(
            f"{path} is a folder, not a database file: give [database] db (--db) a file name"
        )
    wal = wal_of(path)
    if size == 0:
        if wal.exists() and wal.stat().st_size > 0:
            raise NotADatabaseError(
                f"{path} is empty (0 bytes) but its write-ahead log {wal.name} holds "
                f"{wal.stat().st_size:,} bytes: something other than DuckDB emptied the "
                "database file. asnmon does not overwrite it; restore the file from a "
                "backup (asnmon backup, [database] backup_dir), keeping the .wal beside it"
            )
        return "empty"
    try:
        with path.open("rb") as fh:
            head = fh.read(MAGIC_AT + len(MAGIC))
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the database file ({exc})") from exc
    if head[MAGIC_AT:] != MAGIC:
        raise NotADatabaseError(
            f"{path} is not a DuckDB database ({size:,} bytes, starting {head[:16]!r}). "
            "asnmon does not overwrite it: give [database] db (--db) another file name, "
            "or move this file away if it is not needed"
        )
    return "duckdb"


def connect(
    path: Path, *, read_only: bool, memory_mb: int, create: bool = True
) -> duckdb.DuckDBPyConnection:
    """Open ``path``, created whole if absent or empty (unless ``read_only`` or not ``create``).

    ``create=False`` is for reopening a file the caller had open: if it is gone,
    an empty new one in its place would hide that everything was lost.
    """
    state = examine(path)
    if state == "absent" and (read_only or not create):
        raise StoreError(f"{path}: no such database")
    if read_only and state == "empty":
        raise NotADatabaseError(
            f"{path} is empty (0 bytes): a database whose creation failed (a full disk?) "
            "before anything was stored in it. `asnmon run` makes it anew when it starts"
        )
    if state == "empty":
        log.warning("%s is empty (0 bytes, no write-ahead log): created anew", path)
    if state != "duckdb" and not read_only:
        _create(path)  # "empty" too: nothing was ever stored in a 0-byte file
    try:
        return duckdb.connect(
            str(path), read_only=read_only, config={"memory_limit": f"{memory_mb}MB"}
        )
    except duckdb.Error as exc:
        raise _open_error(path, exc) from exc


def _open_error(path: Path, exc: duckdb.Error) -> StoreError:
    text = str(exc)
    if "Could not set lock" in text or "Conflicting lock" in text:
        found = re.search(r"\(PID (\d+)\)", text)
        program = re.search(r"lock is held in (.+?) \(PID", text)
        pid = int(found.group(1)) if found else None
        who = f"process {pid}" if pid is not None else "another process"
        if program:
            who += f" ({Path(program.group(1)).name})"
        return DatabaseLockedError(
            f"{path} is locked by {who}: DuckDB lets one process write a database file, "
            "and no other open it meanwhile. Stop that process (another `asnmon run`, or "
            "an `asnmon dashboard --db` left open) or give this monitor its own "
            "[database] db",
            pid,
        )
    return StoreError(f"{path}: cannot open the database ({text})")


def _create(path: Path) -> None:
    """A new, empty DuckDB file at ``path``, or none at all (never a half-written one)."""
    _remove_leftovers(path)
    tmp = path.with_name(f".{path.name}.creating-{uuid.uuid4().hex[:8]}")
    try:
        try:
            con = duckdb.connect(str(tmp))
            try:
                con.execute("CHECKPOINT")
            finally:
                con.close()
        except duckdb.Error as exc:
            raise StoreError(f"{path}: cannot create the database ({exc})") from exc
        if wal_of(tmp).exists():  # closed without its checkpoint: not whole
            raise StoreError(f"{path}: cannot create the database (DuckDB could not finish it)")
        if path.exists() and path.stat().st_size == 0:
            path.unlink()  # the empty file of an earlier failed creation (examine said so)
        try:
            os.link(tmp, path)  # fails if another process created it meanwhile: use that
        except FileExistsError:
            log.info("%s was created by another process meanwhile", path)
        except OSError:  # a filesystem without hard links
            if not path.exists():
                os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the database ({exc})") from exc
    finally:
        for leftover in (tmp, wal_of(tmp)):
            leftover.unlink(missing_ok=True)


def _remove_leftovers(path: Path) -> None:
    """Temporary files of creations a crash interrupted (never one in progress)."""
    for old in path.parent.glob(f".{path.name}.creating-*"):
        try:
            if time.time() - old.stat().st_mtime > LEFTOVER_AGE:
                old.unlink()
        except OSError:
            pass
