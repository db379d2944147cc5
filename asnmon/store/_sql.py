"""SQL helpers shared by the store's mixins: the transaction, row inserts, encodings."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from asnmon.errors import StoreError
from asnmon.names import printable
from asnmon.records import Flag, Peak, Result


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# What a failing database raises: DuckDB's own errors escape a few paths (a
# failed commit) unwrapped, so callers that must survive one catch both.
STORE_FAILURES: tuple[type[Exception], ...] = (StoreError, duckdb.Error)


_DATA_ERRORS = (duckdb.DataError, duckdb.IntegrityError, duckdb.InvalidInputException)


def is_data_error(exc: BaseException) -> bool:
    """Whether a store failure is about the values written (the schema refuses one),
    not the database: retrying that file cannot help, and other files still store."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(
            seen, duckdb.DataError | duckdb.IntegrityError | duckdb.InvalidInputException
        ):
            return True
        seen = seen.__cause__
    return False


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


class _Transaction:
    """``with store._tx() as con:`` — commit on success, roll back on any error.

    Rows held back for a multi-row INSERT (``Pending``) are written just before
    the commit, so they are part of the same transaction.
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, lock: threading.Lock, pending: Pending
    ) -> None:
        self._con = con
        self._lock = lock
        self._pending = pending

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self._lock.acquire()
        self._con.begin()
        return self._con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                try:
                    self._pending.flush(self._con)
                except duckdb.Error as err:
                    self._pending.end()
                    self._con.rollback()
                    raise StoreError(f"database write failed: {err}") from err
                self._con.commit()
            else:
                self._pending.clear()
                self._con.rollback()
        finally:
            self._pending.end()
            self._lock.release()
        if isinstance(exc, duckdb.Error):
            raise StoreError(f"database write failed: {exc}") from exc


class Pending:
    """Rows held back to be written as one multi-row INSERT per table.

    An injection's peaks, traces, result, flags and change-log row cost five
    statements; in a group commit (``asnmon.store.group``) the rows of every
    injection of the group are written together. A table's rows are written
    before any other statement of the transaction that reads or updates that
    table (``flush``), so nothing ever reads or updates around them.
    """

    def __init__(self) -> None:
        self._rows: dict[str, list[Sequence[Any]]] = {}
        self._ids: dict[str, list[int]] = {}  # sequence values drawn in this transaction
        # ``qc_values``' rows from the database in this transaction, while its tables
        # (injections, results) cannot have changed there (``touched``).
        self.qc_rows: list[Any] | None = None

    def touched(self, tables: Collection[str] | None) -> None:
        """The database's rows of ``tables`` (None: of any table) may have changed."""
        if tables is None or INJECTION_COLUMNS in tables or RESULT_COLUMNS in tables:
            self.qc_rows = None

    def next_id(self, con: duckdb.DuckDBPyConnection, sequence: str, block: int) -> int:
        """A value of ``sequence`` for a row held back (no INSERT ... RETURNING per row).

        Drawn ``block`` at a time, in the transaction that uses them, and the rest
        dropped when it ends (``end``): a value drawn in a transaction that did not
        commit is never used by a later one, so a restart can never hand it out again.
        """
        free = self._ids.setdefault(sequence, [])
        if not free:
            rows = con.execute(
                f"SELECT nextval('{sequence}') FROM range(?)", [max(block, 1)]
            ).fetchall()
            free.extend(sorted((int(r[0]) for r in rows), reverse=True))
        return free.pop()

    def end(self) -> None:
        """The transaction ended (committed or rolled back): nothing held survives it."""
        self._rows = {}
        self._ids = {}
        self.qc_rows = None

    def held(self, *tables: str) -> list[list[Sequence[Any]]]:
        """The rows held for each of ``tables``, as they will be inserted."""
        return [self._rows.get(table, []) for table in tables]

    def add(self, table: str, rows: Iterable[Sequence[Any]]) -> None:
        self._rows.setdefault(table, []).extend(rows)

    def flush(self, con: duckdb.DuckDBPyConnection, tables: Collection[str] | None = None) -> None:
        """Write the rows held (only those of ``tables``, if given): one INSERT per table.

        A table's rows go all at once and in order, so the ids its sequence gives
        them are those they would have had without being held.
        """
        if not self._rows:
            return
        if tables is None:
            held, self._rows = self._rows, {}
        else:
            held = {t: self._rows.pop(t) for t in tables if t in self._rows}
        self.touched(held.keys())
        for table, rows in held.items():
            _insert_rows(con, table, rows)

    def clear(self) -> None:
        self._rows = {}


INJECTION_COLUMNS = (
    "injections (injection_id, run_id, position, file, path, sha256, version, "
    "sample_id, sample_type, level, nominal, matrix, dilution, normalizer, "
    "normalizer_unit, volume_ul, group_name, in_worklist, acquired_at, "
    "acquired_order, ingested_at, mzml_run_id, instrument, polarity, error, notes, is_pct)"
)
PEAK_COLUMNS = (
    "peaks (injection_id, transition, role, apex_rt, start_rt, end_rt, area, "
    "height, baseline_start, baseline_end, fwhm, sn, points, saturated, truncated)"
)
RESULT_COLUMNS = (
    "results (injection_id, calibration_id, calibration_version, status, "
    "area_ratio, conc_vial, conc, unit, normalized_value, normalized_unit, accuracy_pct, "
    "current, created_at)"
)
FLAG_COLUMNS = (
    "flags (run_id, injection_id, code, severity, message, action, value, limit_value, "
    "source, details, created_at)"
)
CHANGE_COLUMNS = "changes (changed_at, run_id, kind, injection_id)"


def _result_row(
    injection_id: int, r: Result, calibration_id: int | None, now: datetime | None = None
) -> list[Any]:
    return [
        injection_id,
        calibration_id,
        r.calibration_version,
        r.status,
        r.area_ratio,
        r.conc_vial,
        r.conc,
        r.unit,
        r.normalized_value,
        r.normalized_unit,
        r.accuracy_pct,
        True,
        now or _now(),
    ]


def _insert_result(
    con: duckdb.DuckDBPyConnection, injection_id: int, r: Result, calibration_id: int | None
) -> None:
    _insert_rows(con, RESULT_COLUMNS, [_result_row(injection_id, r, calibration_id)])


def _flag_rows(
    run_id: str,
    injection_id: int | None,
    flags: Iterable[Flag],
    now: datetime | None = None,
) -> list[list[Any]]:
    return [
        [
            run_id,
            injection_id,
            f.code,
            f.severity.value,
            _text(f.message),
            _text(f.action),
            f.value,
            f.limit,
            _text(f.source),
            json.dumps(dict(f.details), default=str),
            now or _now(),
        ]
        for f in flags
    ]


def _insert_flags(
    con: duckdb.DuckDBPyConnection, run_id: str, injection_id: int | None, flags: Iterable[Flag]
) -> None:
    _insert_rows(con, FLAG_COLUMNS, _flag_rows(run_id, injection_id, flags))


def _deactivate(
    con: duckdb.DuckDBPyConnection, run_id: str, injection_id: int | None, codes: Sequence[str]
) -> None:
    """Flags are never deleted: the ones being replaced stop being active."""
    if not codes:
        return
    target = "injection_id = ?" if injection_id is not None else "injection_id IS NULL"
    params: list[Any] = [_now(), run_id]
    if injection_id is not None:
        params.append(injection_id)
    con.execute(
        f"UPDATE flags SET active = FALSE, deactivated_at = ? WHERE run_id = ? AND {target} "
        f"AND active AND code IN ({','.join('?' * len(codes))})",
        [*params, *codes],
    )


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """One INSERT for any number of rows.

    One row binds as VALUES. More bind as one list per column, unnested: DuckDB
    binds a VALUES list superlinearly (64 rows of 15 columns: 10 ms, unnested 3 ms)
    and executemany pays a statement per row. A list parameter converts each value
    as a parameter of its own would (NULL and NaN stay apart), then the INSERT casts
    it to the column's type as it does a VALUES row's.
    """
    if not rows:
        return
    width = len(rows[0])
    if len(rows) == 1:
        con.execute(f"INSERT INTO {table} VALUES (" + ",".join("?" * width) + ")", list(rows[0]))
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    con.execute(
        f"INSERT INTO {table} SELECT " + ",".join(f"unnest(${k + 1})" for k in range(width)),
        columns,
    )


def _text(value: str | None) -> str | None:
    """Free text as the database can hold it and a screen can show it (asnmon.names)."""
    return printable(value) if value is not None else None


def _shown(value: object) -> object:
    """A status value as the dashboard may show it: file names and errors made printable."""
    if isinstance(value, str | Path):
        return printable(str(value))
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {printable(str(k)): _shown(v) for k, v in value.items()}
    return value


def _blob(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def _unblob(data: bytes | None) -> list[float]:
    return np.frombuffer(data, dtype="<f4").astype(np.float64).tolist() if data else []


def _change(
    con: duckdb.DuckDBPyConnection, run_id: str | None, kind: str, injection_id: int | None
) -> None:
    _insert_rows(con, CHANGE_COLUMNS, [[_now(), run_id, kind, injection_id]])


def _peak_rows(
    injection_id: int,
    peaks: Mapping[str, Peak | None],
    roles: Mapping[str, str],
    *extra: object,
) -> list[list[Any]]:
    """One ``peaks`` row per measured transition, in the table's column order, then ``extra``
    (a reviewer's peaks add their source and edit id)."""
    return [
        [
            injection_id,
            tid,
            roles.get(tid),
            p.apex_rt,
            p.start_rt,
            p.end_rt,
            p.area,
            p.height,
            p.baseline_start,
            p.baseline_end,
            p.fwhm,
            p.sn,
            p.points,
            p.saturated,
            p.truncated,
            *extra,
        ]
        for tid, p in peaks.items()
        if p is not None
    ]
