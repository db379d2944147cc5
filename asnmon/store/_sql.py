"""SQL helpers shared by the store's mixins: the transaction, row inserts, encodings."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

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

    The run's re-judging after each file (flags replaced, a flag's live text, the
    verdict) is held the same way: a replacement marks the held rows it replaces
    and its UPDATE of the stored ones waits for the flush (``deactivate``); only the
    newest verdict is written (``verdict``).
    """

    def __init__(self) -> None:
        self._rows: dict[str, list[Sequence[Any]]] = {}
        self._ids: dict[str, list[int]] = {}  # sequence values drawn in this transaction
        # Flags replaced while held (``deactivate``): the held flag rows already replaced
        # (index -> when), and the stored rows to deactivate, as the first replacement
        # of each (run, injection, code) would have (a later one finds none active).
        self._gone: dict[int, datetime] = {}
        self._deactivations: dict[tuple[str, int | None, str], datetime] = {}
        self._verdicts: dict[str, tuple[str, str]] = {}  # run -> its newest verdict, reason
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
        self.clear()
        self._ids = {}
        self.qc_rows = None

    def held(self, *tables: str) -> list[list[Sequence[Any]]]:
        """The rows held for each of ``tables``, as they will be inserted."""
        return [self._rows.get(table, []) for table in tables]

    def add(self, table: str, rows: Iterable[Sequence[Any]]) -> None:
        self._rows.setdefault(table, []).extend(rows)

    def deactivate(
        self, run_id: str, injection_id: int | None, codes: Collection[str], now: datetime
    ) -> None:
        """``_deactivate`` held back: its UPDATE of the stored flags, and of the held ones.

        Written before the held flags (``flush``), as one UPDATE for every replacement
        held, so a group that re-judges the run after each file pays one statement.
        Every write that reads or changes ``flags`` flushes them first, so the stored
        rows cannot change while it is held.
        """
        if not codes:
            return
        for i, row in enumerate(self._rows.get(FLAG_COLUMNS, ())):
            if row[0] == run_id and row[1] == injection_id and row[2] in codes:
                self._gone.setdefault(i, now)
        for code in codes:
            self._deactivations.setdefault((run_id, injection_id, code), now)

    def newest_flag(self, run_id: str, injection_id: int | None, code: str) -> int | None:
        """The newest held flag row of ``code`` still active (its index), if any: it
        will have a higher id than any stored one."""
        rows = self._rows.get(FLAG_COLUMNS, ())
        for i in range(len(rows) - 1, -1, -1):
            row = rows[i]
            if (
                row[0] == run_id
                and row[1] == injection_id
                and row[2] == code
                and i not in self._gone
            ):
                return i
        return None

    def replaced(self, run_id: str, injection_id: int | None, code: str) -> bool:
        """Whether a held replacement deactivates the stored flags of ``code``."""
        return (run_id, injection_id, code) in self._deactivations

    def flag_row(self, i: int) -> list[Any]:
        return cast(list[Any], self._rows[FLAG_COLUMNS][i])

    def add_replaced(self, row: Sequence[Any], now: datetime) -> None:
        """A flag row held as already replaced at ``now`` (the old text of an updated flag)."""
        rows = self._rows.setdefault(FLAG_COLUMNS, [])
        self._gone[len(rows)] = now
        rows.append(list(row))

    def verdict(self, run_id: str, verdict: str, reason: str) -> None:
        """The run's verdict, written with the rows held back (only the newest counts)."""
        self._verdicts[run_id] = (verdict, reason)

    def flush(self, con: duckdb.DuckDBPyConnection, tables: Collection[str] | None = None) -> None:
        """Write the rows held (only those of ``tables``, if given): one INSERT per table.

        A table's rows go all at once and in order, so the ids its sequence gives
        them are those they would have had without being held.
        """
        if tables is None or FLAG_COLUMNS in tables:
            self._flush_deactivations(con)
        if self._rows:
            if tables is None:
                held, self._rows = self._rows, {}
            else:
                held = {t: self._rows.pop(t) for t in tables if t in self._rows}
            self.touched(held.keys())
            for table, rows in held.items():
                if table == FLAG_COLUMNS and self._gone:
                    gone, self._gone = self._gone, {}
                    rows = [[*r, i not in gone, gone.get(i)] for i, r in enumerate(rows)]
                    table = FLAG_STATE_COLUMNS
                _insert_rows(con, table, rows)
        if tables is None and self._verdicts:
            verdicts, self._verdicts = self._verdicts, {}
            for run_id, (verdict, reason) in verdicts.items():
                con.execute(
                    "UPDATE runs SET verdict = ?, verdict_reason = ? WHERE run_id = ?",
                    [verdict, reason, run_id],
                )

    def _flush_deactivations(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self._deactivations:
            return
        held, self._deactivations = self._deactivations, {}
        if len({(r, i, t) for (r, i, _), t in held.items()}) == 1:  # one replacement
            ((run_id, injection_id, _), now) = next(iter(held.items()))
            _deactivate(con, run_id, injection_id, [c for _, _, c in held], now)
            return
        keys = list(held)
        con.execute(
            "UPDATE flags SET active = FALSE, deactivated_at = d.t FROM (SELECT "
            "unnest($1::VARCHAR[]) AS r, unnest($2::BIGINT[]) AS i, unnest($3::VARCHAR[]) AS c, "
            "unnest($4::TIMESTAMP[]) AS t) d WHERE flags.active AND flags.run_id = d.r "
            "AND flags.code = d.c AND flags.injection_id IS NOT DISTINCT FROM d.i",
            [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], list(held.values())],
        )

    def clear(self) -> None:
        self._rows = {}
        self._gone = {}
        self._deactivations = {}
        self._verdicts = {}


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
# Held flags some later write of the transaction replaced: inserted already inactive.
FLAG_STATE_COLUMNS = FLAG_COLUMNS[:-1] + ", active, deactivated_at)"
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
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    injection_id: int | None,
    codes: Sequence[str],
    now: datetime | None = None,
) -> None:
    """Flags are never deleted: the ones being replaced stop being active."""
    if not codes:
        return
    target = "injection_id = ?" if injection_id is not None else "injection_id IS NULL"
    params: list[Any] = [now or _now(), run_id]
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
