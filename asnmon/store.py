"""The store: the only module that runs SQL, and the only writer of the database.

DuckDB allows one read-write process per file and other processes cannot
read it meanwhile, so ``asnmon run`` is one process: the ingestion worker
writes through ``Store``; the dashboard's threads read through their own
cursors (``Store.reader()``). Every write is one transaction, so a kill at
any moment leaves either the whole injection or none of it.

Nothing is overwritten: a file that changes becomes a new injection version
(the old one is marked superseded), a new curve adds result rows (the old
ones stop being ``current``), and flags are deactivated, never deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from asnmon.errors import StoreError
from asnmon.names import from_db, printable, to_db
from asnmon.records import Calibration, Flag, Outcome, Peak, Result, Sample, SampleType
from asnmon.worklist import file_key as file_stem

# Numbered migrations: append, never edit a released one.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
    CREATE SEQUENCE seq_injection START 1;
    CREATE SEQUENCE seq_result START 1;
    CREATE SEQUENCE seq_flag START 1;
    CREATE SEQUENCE seq_calibration START 1;
    CREATE SEQUENCE seq_change START 1;
    CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY,
        name VARCHAR,
        folder VARCHAR,
        worklist VARCHAR,
        assay_name VARCHAR,
        assay_unit VARCHAR,
        lloq DOUBLE,
        uloq DOUBLE,
        planned INTEGER,
        created_at TIMESTAMP,
        verdict VARCHAR,
        verdict_reason VARCHAR
    );
    CREATE TABLE injections (
        injection_id BIGINT PRIMARY KEY DEFAULT nextval('seq_injection'),
        run_id VARCHAR NOT NULL,
        position INTEGER,
        file VARCHAR NOT NULL,
        path VARCHAR,
        sha256 VARCHAR NOT NULL,
        version INTEGER NOT NULL DEFAULT 1,
        superseded BOOLEAN NOT NULL DEFAULT FALSE,
        sample_id VARCHAR,
        sample_type VARCHAR,
        level VARCHAR,
        nominal DOUBLE,
        matrix VARCHAR,
        dilution DOUBLE,
        normalizer DOUBLE,
        normalizer_unit VARCHAR,
        volume_ul DOUBLE,
        group_name VARCHAR,
        in_worklist BOOLEAN,
        acquired_at VARCHAR,
        acquired_order DOUBLE,
        ingested_at TIMESTAMP,
        mzml_run_id VARCHAR,
        instrument VARCHAR,
        polarity VARCHAR,
        error VARCHAR,
        notes VARCHAR
    );
    CREATE INDEX idx_injections_run ON injections(run_id);
    CREATE INDEX idx_injections_sha ON injections(sha256);
    CREATE TABLE peaks (
        injection_id BIGINT NOT NULL,
        transition VARCHAR NOT NULL,
        role VARCHAR,
        apex_rt DOUBLE, start_rt DOUBLE, end_rt DOUBLE,
        area DOUBLE, height DOUBLE,
        baseline_start DOUBLE, baseline_end DOUBLE,
        fwhm DOUBLE, sn DOUBLE, points INTEGER,
        saturated BOOLEAN, truncated BOOLEAN
    );
    CREATE TABLE traces (
        injection_id BIGINT NOT NULL,
        transition VARCHAR NOT NULL,
        rt BLOB,        -- float32 little-endian: for review plots, ~10x cheaper than DOUBLE[]
        intensity BLOB
    );
    CREATE TABLE calibrations (
        calibration_id BIGINT PRIMARY KEY DEFAULT nextval('seq_calibration'),
        run_id VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        model VARCHAR, weighting VARCHAR, zero_intercept BOOLEAN,
        c0 DOUBLE, c1 DOUBLE, c2 DOUBLE, r2 DOUBLE,
        accepted BOOLEAN, reason VARCHAR,
        lloq DOUBLE, uloq DOUBLE,
        carried_over_from VARCHAR,
        created_at TIMESTAMP
    );
    CREATE TABLE calibration_points (
        calibration_id BIGINT NOT NULL,
        injection_id BIGINT,
        sample_id VARCHAR, level VARCHAR, nominal DOUBLE, area_ratio DOUBLE,
        back_calculated DOUBLE, accuracy_pct DOUBLE, excluded BOOLEAN, reason VARCHAR
    );
    CREATE TABLE results (
        result_id BIGINT PRIMARY KEY DEFAULT nextval('seq_result'),
        injection_id BIGINT NOT NULL,
        calibration_id BIGINT,
        calibration_version INTEGER,
        status VARCHAR,
        area_ratio DOUBLE, conc_vial DOUBLE, conc DOUBLE, unit VARCHAR,
        normalized_value DOUBLE, normalized_unit VARCHAR, accuracy_pct DOUBLE,
        current BOOLEAN NOT NULL DEFAULT TRUE,
        created_at TIMESTAMP
    );
    CREATE INDEX idx_results_injection ON results(injection_id);
    CREATE TABLE flags (
        flag_id BIGINT PRIMARY KEY DEFAULT nextval('seq_flag'),
        run_id VARCHAR NOT NULL,
        injection_id BIGINT,
        code VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,
        message VARCHAR, action VARCHAR,
        value DOUBLE, limit_value DOUBLE, source VARCHAR, details VARCHAR,
        active BOOLEAN NOT NULL DEFAULT TRUE,
        created_at TIMESTAMP, deactivated_at TIMESTAMP
    );
    CREATE INDEX idx_flags_run ON flags(run_id);
    CREATE TABLE acknowledgements (
        flag_id BIGINT NOT NULL,
        by_name VARCHAR NOT NULL,
        comment VARCHAR,
        acked_at TIMESTAMP
    );
    CREATE TABLE changes (
        seq BIGINT PRIMARY KEY DEFAULT nextval('seq_change'),
        changed_at TIMESTAMP, run_id VARCHAR, kind VARCHAR, injection_id BIGINT
    );
    CREATE TABLE monitor_status (
        key VARCHAR PRIMARY KEY, value VARCHAR, updated_at TIMESTAMP
    );
    """,
    ),
    # 2: the IS response as the QC rules judged it on arrival (% of the causal reference),
    # so every view shows the number the IS_LOW/IS_HIGH flag was raised on.
    (2, "ALTER TABLE injections ADD COLUMN is_pct DOUBLE;"),
    # 3: duplicates are found in the ingestor's memory of its run; an index on every
    # hash only slowed each insert down.
    (3, "DROP INDEX idx_injections_sha;"),
)

# DuckDB caches table blocks up to its memory limit (80 % of RAM by default), so a
# monitor left running for months would grow by ~23 MiB per 1,000 injections until
# then (measured: benchmarks/latency.py --soak). A fixed cap keeps its memory flat.
MEMORY_MB = 256

# Codes that depend on the calibration: replaced when the run is re-quantified.
QUANT_CODES = frozenset(
    {"BLQ", "ALQ", "NO_CALIBRATION", "REF_LOW", "REF_HIGH", "QC_FAIL", "DEPLETED"}
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    name: str
    folder: str | None = None
    worklist: str | None = None
    assay_name: str | None = None
    assay_unit: str | None = None
    lloq: float | None = None
    uloq: float | None = None
    planned: int | None = None


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What the single writer remembers of a file's current version."""

    injection_id: int
    version: int
    error: bool  # stored as unreadable / INCOMPLETE: a completed file is no replacement
    sha256: str
    path: str
    duplicate: bool  # same content as another file on arrival: not an independent injection


@dataclass(frozen=True, slots=True)
class StoredEntry:
    injection_id: int
    sample: Sample
    peaks: Mapping[str, Peak]
    error: bool


class Store:
    """One DuckDB file. Writers call the ``write_*`` methods from one thread."""

    def __init__(
        self, path: str | Path, *, read_only: bool = False, memory_mb: int = MEMORY_MB
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._memory_mb = memory_mb
        try:
            if read_only and not self.path.exists():
                raise StoreError(f"{self.path}: no such database")
            self._con = duckdb.connect(
                str(self.path), read_only=read_only, config={"memory_limit": f"{memory_mb}MB"}
            )
        except duckdb.Error as exc:
            raise StoreError(
                f"{self.path}: cannot open the database ({exc}). Is another "
                "asnmon process using it? DuckDB allows one writer."
            ) from exc
        self._lock = threading.Lock()
        self._local = threading.local()
        if not read_only:
            self.migrate()

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reader(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor: DuckDB connections are not shared across threads."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
        return cur

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

    def _tx(self) -> _Transaction:
        return _Transaction(self._con, self._lock)

    # ------------------------------------------------------------ writes

    def ensure_run(self, run: RunInfo) -> str:
        with self._tx() as con:
            row = con.execute("SELECT run_id FROM runs WHERE run_id = ?", [run.run_id]).fetchone()
            if row is None:
                con.execute(
                    "INSERT INTO runs (run_id, name, folder, worklist, assay_name, assay_unit, "
                    "lloq, uloq, planned, created_at, verdict, verdict_reason) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?, 'pending', 'no injections yet')",
                    [
                        run.run_id,
                        run.name,
                        run.folder,
                        run.worklist,
                        run.assay_name,
                        run.assay_unit,
                        run.lloq,
                        run.uloq,
                        run.planned,
                        _now(),
                    ],
                )
                _change(con, run.run_id, "run", None)
        return run.run_id

    def write_injection(
        self,
        run_id: str,
        outcome: Outcome,
        *,
        position: int | None,
        version: int = 1,
        supersedes: int | None = None,
        calibration_id: int | None = None,
    ) -> int:
        """Store one file's outcome: injection, peaks, traces, result, flags. One transaction.

        ``calibration_id``: the curve the result was quantified on, when the caller
        knows it (else it is looked up from the result's calibration version).
        """
        s = outcome.sample
        with self._tx() as con:
            if supersedes is not None:
                con.execute(
                    "UPDATE injections SET superseded = TRUE WHERE injection_id = ?", [supersedes]
                )
                con.execute(
                    "UPDATE results SET current = FALSE WHERE injection_id = ?", [supersedes]
                )
                con.execute(
                    "UPDATE flags SET active = FALSE, deactivated_at = ? "
                    "WHERE injection_id = ? AND active",
                    [_now(), supersedes],
                )
            row = con.execute(
                "INSERT INTO injections (run_id, position, file, path, sha256, version, "
                "sample_id, sample_type, level, nominal, matrix, dilution, normalizer, "
                "normalizer_unit, volume_ul, group_name, in_worklist, acquired_at, "
                "acquired_order, ingested_at, mzml_run_id, instrument, polarity, error, notes, "
                "is_pct) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "RETURNING injection_id",
                [
                    run_id,
                    position,
                    to_db(outcome.path.name),
                    to_db(str(outcome.path)),
                    outcome.sha256,
                    version,
                    _text(s.sample_id),
                    s.sample_type.value,
                    _text(s.level),
                    s.nominal,
                    _text(s.matrix),
                    s.dilution,
                    s.normalizer,
                    _text(s.normalizer_unit),
                    s.volume_ul,
                    _text(s.group),
                    s.in_worklist,
                    _text(outcome.meta.started_at),
                    outcome.acquired_order,
                    _now(),
                    _text(outcome.meta.run_id),
                    _text(outcome.meta.instrument),
                    _text(outcome.meta.polarity),
                    _text(outcome.error),
                    "\n".join(printable(n) for n in outcome.notes) or None,
                    outcome.is_pct,
                ],
            ).fetchone()
            if row is None:
                raise StoreError("the database returned no id for the new injection")
            injection_id = int(row[0])
            peak_rows = [
                [
                    injection_id,
                    tid,
                    outcome.roles.get(tid),
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
                ]
                for tid, p in outcome.peaks.items()
                if p is not None
            ]
            _insert_rows(con, "peaks", peak_rows)
            _insert_rows(
                con,
                "traces",
                [
                    [injection_id, tid, _blob(tr.rt), _blob(tr.intensity)]
                    for tid, tr in outcome.traces.items()
                ],
            )
            cal_id = calibration_id
            if cal_id is None and outcome.result.calibration_version is not None:
                found = con.execute(
                    "SELECT max(calibration_id) FROM calibrations WHERE run_id = ? AND version = ?",
                    [run_id, outcome.result.calibration_version],
                ).fetchone()
                cal_id = found[0] if found else None
            _insert_result(con, injection_id, outcome.result, cal_id)
            _insert_flags(con, run_id, injection_id, outcome.flags)
            if supersedes is not None:
                _change(con, run_id, "superseded", supersedes)
            _change(con, run_id, "injection", injection_id)
        return injection_id

    def write_calibration(
        self,
        run_id: str,
        calibration: Calibration,
        point_injections: Sequence[int | None],
        requantified: Mapping[int, tuple[Result, Sequence[Flag]]],
        run_flags: Sequence[Flag] = (),
    ) -> int:
        """Store a new curve version and the run re-quantified against it, atomically."""
        c = calibration
        with self._tx() as con:
            row = con.execute(
                "INSERT INTO calibrations (run_id, version, model, weighting, zero_intercept, "
                "c0, c1, c2, r2, accepted, reason, lloq, uloq, carried_over_from, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING calibration_id",
                [
                    run_id,
                    c.version,
                    c.model,
                    c.weighting,
                    c.zero_intercept,
                    *c.coefficients,
                    c.r2,
                    c.accepted,
                    c.reason,
                    c.lloq,
                    c.uloq,
                    c.carried_over_from,
                    _now(),
                ],
            ).fetchone()
            if row is None:
                raise StoreError("the database returned no id for the new calibration")
            cal_id = int(row[0])
            _insert_rows(
                con,
                "calibration_points",
                [
                    [
                        cal_id,
                        inj,
                        p.sample_id,
                        p.level,
                        p.nominal,
                        p.area_ratio,
                        p.back_calculated,
                        p.accuracy_pct,
                        p.excluded,
                        p.reason,
                    ]
                    for p, inj in zip(c.points, point_injections, strict=True)
                ],
            )
            for injection_id, (result, flags) in requantified.items():
                con.execute(
                    "UPDATE results SET current = FALSE WHERE injection_id = ? AND current",
                    [injection_id],
                )
                _insert_result(con, injection_id, result, cal_id)
                codes = sorted(QUANT_CODES)
                con.execute(
                    f"UPDATE flags SET active = FALSE, deactivated_at = ? WHERE injection_id = ? "
                    f"AND active AND code IN ({','.join('?' * len(codes))})",
                    [_now(), injection_id, *codes],
                )
                _insert_flags(
                    con, run_id, injection_id, [f for f in flags if f.code in QUANT_CODES]
                )
            if run_flags:
                _insert_flags(con, run_id, None, run_flags)
            _change(con, run_id, "calibration", None)
        return cal_id

    def replace_run_flags(
        self,
        run_id: str,
        codes: Iterable[str],
        flags: Sequence[Flag],
        *,
        injection_id: int | None = None,
    ) -> None:
        """Deactivate the given codes (run-level or on one injection), insert the new set."""
        with self._tx() as con:
            _deactivate(con, run_id, injection_id, sorted(set(codes)))
            _insert_flags(con, run_id, injection_id, flags)
            _change(con, run_id, "flags", injection_id)

    def set_verdict(
        self,
        run_id: str,
        verdict: str,
        reason: str,
        *,
        replace_codes: Iterable[str] | None = None,
        flags: Sequence[Flag] = (),
    ) -> None:
        """The run's verdict, and (with ``replace_codes``) its run-level flags, in one write."""
        with self._tx() as con:
            con.execute(
                "UPDATE runs SET verdict = ?, verdict_reason = ? WHERE run_id = ?",
                [verdict, reason, run_id],
            )
            if replace_codes is not None:
                _deactivate(con, run_id, None, sorted(set(replace_codes)))
                _insert_flags(con, run_id, None, flags)
            _change(con, run_id, "verdict", None)

    def acknowledge(self, flag_id: int, by: str, comment: str = "") -> None:
        """Record who looked at a flag and what they said; the flag itself stays."""
        if not by.strip():
            raise StoreError("an acknowledgement needs a name")
        with self._tx() as con:
            row = con.execute("SELECT run_id FROM flags WHERE flag_id = ?", [flag_id]).fetchone()
            if row is None:
                raise StoreError(f"no flag with id {flag_id}")
            con.execute(
                "INSERT INTO acknowledgements VALUES (?,?,?,?)",
                [flag_id, by.strip(), comment.strip(), _now()],
            )
            _change(con, row[0], "acknowledgement", None)

    def set_status(self, values: Mapping[str, object]) -> None:
        """Monitor health (watcher state, queue, last error) for the dashboard."""
        with self._tx() as con:
            now = _now()
            for key, value in values.items():
                con.execute(
                    "INSERT OR REPLACE INTO monitor_status VALUES (?,?,?)",
                    [key, json.dumps(_shown(value), default=str), now],
                )
            _change(con, None, "status", None)

    # ------------------------------------------------------------ reads

    def run_files(self, run_id: str) -> dict[str, StoredFile]:
        """Each file's current version, by its name as the OS gives it, in arrival order."""
        rows = (
            self.reader()
            .execute(
                "SELECT file, injection_id, version, error IS NOT NULL, sha256, path, "
                "injection_id IN (SELECT injection_id FROM flags WHERE run_id = ? "
                "AND code = 'DUPLICATE') FROM injections WHERE run_id = ? AND NOT superseded "
                "ORDER BY injection_id",
                [run_id, run_id],
            )
            .fetchall()
        )
        return {
            from_db(r[0]): StoredFile(
                int(r[1]), int(r[2]), bool(r[3]), str(r[4]), from_db(r[5] or ""), bool(r[6])
            )
            for r in rows
        }

    def load_run(self, run_id: str) -> list[StoredEntry]:
        """Every current injection of a run with its sample and peaks, in arrival order.

        A restarted monitor rebuilds its in-memory run (calibrators, history)
        from this, so a restart changes nothing about how later files are judged.
        """
        cur = self.reader()
        rows = cur.execute(
            "SELECT injection_id, file, sample_id, sample_type, position, level, nominal, "
            "matrix, dilution, normalizer, normalizer_unit, volume_ul, group_name, in_worklist, "
            "error FROM injections WHERE run_id = ? AND NOT superseded ORDER BY injection_id",
            [run_id],
        ).fetchall()
        peaks: dict[int, dict[str, Peak]] = {}
        for r in cur.execute(
            "SELECT p.injection_id, p.transition, p.apex_rt, p.start_rt, p.end_rt, p.area, "
            "p.height, p.baseline_start, p.baseline_end, p.fwhm, p.sn, p.points, p.saturated, "
            "p.truncated FROM peaks p JOIN injections i USING (injection_id) "
            "WHERE i.run_id = ? AND NOT i.superseded",
            [run_id],
        ).fetchall():
            peaks.setdefault(r[0], {})[r[1]] = Peak(r[1], *r[2:])
        out = []
        for r in rows:
            sample = Sample(
                file=file_stem(from_db(r[1])),
                sample_id=r[2],
                sample_type=SampleType(r[3]),
                position=r[4],
                level=r[5],
                nominal=r[6],
                matrix=r[7],
                dilution=r[8] or 1.0,
                normalizer=r[9],
                normalizer_unit=r[10],
                volume_ul=r[11],
                group=r[12],
                in_worklist=bool(r[13]),
            )
            out.append(StoredEntry(int(r[0]), sample, peaks.get(r[0], {}), r[14] is not None))
        return out

    def latest_calibration(
        self, *, run_id: str | None = None, exclude_run: str | None = None, accepted: bool = True
    ) -> Calibration | None:
        """The newest (accepted) curve of a run, or of any other run (carry-over)."""
        sql = (
            "SELECT run_id, version, model, weighting, zero_intercept, c0, c1, c2, r2, "
            "accepted, reason, lloq, uloq, carried_over_from FROM calibrations WHERE TRUE"
        )
        params: list[Any] = []
        if accepted:
            sql += " AND accepted"
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        if exclude_run is not None:
            sql += " AND run_id <> ?"
            params.append(exclude_run)
        row = (
            self.reader()
            .execute(sql + " ORDER BY created_at DESC, calibration_id DESC LIMIT 1", params)
            .fetchone()
        )
        if row is None:
            return None
        return Calibration(
            version=int(row[1]),
            model=row[2],
            weighting=row[3],
            coefficients=(float(row[5]), float(row[6]), float(row[7])),
            r2=float(row[8]),
            points=(),
            accepted=bool(row[9]),
            reason=row[10],
            lloq=float(row[11]),
            uloq=float(row[12]),
            zero_intercept=bool(row[4]),
            carried_over_from=row[13] or f"{row[0]} v{row[1]}",
        )

    def qc_values(self) -> list[tuple[str, str, str, float]]:
        """(run_id, acquired, level, accuracy %) of every current QC result, all runs.

        The Westgard rules read this after every QC; a narrow query (no peaks, no
        flags) keeps it to a fraction of a millisecond.
        """
        rows = (
            self.reader()
            .execute(
                "SELECT i.run_id, coalesce(i.acquired_at, CAST(i.ingested_at AS VARCHAR), ''), "
                "i.level, r.accuracy_pct FROM injections i JOIN results r "
                "ON r.injection_id = i.injection_id AND r.current "
                "WHERE NOT i.superseded AND i.sample_type = 'qc' AND i.level IS NOT NULL "
                "AND r.accuracy_pct IS NOT NULL ORDER BY i.injection_id"
            )
            .fetchall()
        )
        return [(str(a), str(b), str(c), float(d)) for a, b, c, d in rows]

    def fitted_calibrators(self, run_id: str) -> set[int]:
        """Injection ids of the calibrators behind the run's newest curve version."""
        rows = (
            self.reader()
            .execute(
                "SELECT p.injection_id FROM calibration_points p JOIN calibrations c "
                "USING (calibration_id) WHERE c.run_id = ? AND c.version = "
                "(SELECT max(version) FROM calibrations WHERE run_id = ?)",
                [run_id, run_id],
            )
            .fetchall()
        )
        return {int(r[0]) for r in rows if r[0] is not None}

    def calibration_versions(self, run_id: str) -> int:
        row = (
            self.reader()
            .execute(
                "SELECT coalesce(max(version), 0) FROM calibrations WHERE run_id = ?", [run_id]
            )
            .fetchone()
        )
        return int(row[0]) if row else 0

    def _frame(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        """A query as a polars frame (built from rows: no pyarrow needed)."""
        cur = self.reader().execute(sql, list(params))
        columns = [d[0] for d in cur.description or ()]
        rows = cur.fetchall()
        return pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)

    def last_change(self) -> int:
        row = self.reader().execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()
        return int(row[0]) if row else 0

    def runs(self) -> pl.DataFrame:
        return self._frame(
            "SELECT r.*, (SELECT count(*) FROM injections i WHERE i.run_id = r.run_id AND NOT "
            "i.superseded) AS injections FROM runs r ORDER BY created_at DESC"
        )

    def flags(self, run_id: str, *, active_only: bool = True) -> pl.DataFrame:
        where = "AND f.active" if active_only else ""
        return self._frame(
            "SELECT f.*, i.file, i.sample_id, i.position, "
            "(SELECT count(*) FROM acknowledgements a WHERE a.flag_id = f.flag_id) AS acks "
            "FROM flags f LEFT JOIN injections i USING (injection_id) "
            f"WHERE f.run_id = ? {where} "
            "ORDER BY f.flag_id",
            [run_id],
        )

    def acknowledgements(self, flag_id: int) -> pl.DataFrame:
        return self._frame(
            "SELECT * FROM acknowledgements WHERE flag_id = ? ORDER BY acked_at", [flag_id]
        )

    def calibrations(self, run_id: str) -> pl.DataFrame:
        return self._frame("SELECT * FROM calibrations WHERE run_id = ? ORDER BY version", [run_id])

    def calibration_points(self, calibration_id: int) -> pl.DataFrame:
        return self._frame(
            "SELECT * FROM calibration_points WHERE calibration_id = ?", [calibration_id]
        )

    def peaks(self, injection_id: int) -> pl.DataFrame:
        return self._frame("SELECT * FROM peaks WHERE injection_id = ?", [injection_id])

    def traces(self, injection_id: int) -> pl.DataFrame:
        """transition, rt and intensity (lists of floats) of an injection's stored windows."""
        rows = (
            self.reader()
            .execute(
                "SELECT transition, rt, intensity FROM traces WHERE injection_id = ?",
                [injection_id],
            )
            .fetchall()
        )
        return pl.DataFrame(
            {
                "injection_id": [injection_id] * len(rows),
                "transition": [r[0] for r in rows],
                "rt": [_unblob(r[1]) for r in rows],
                "intensity": [_unblob(r[2]) for r in rows],
            },
            schema={
                "injection_id": pl.Int64,
                "transition": pl.String,
                "rt": pl.List(pl.Float64),
                "intensity": pl.List(pl.Float64),
            },
        )

    def status(self) -> dict[str, Any]:
        rows = self.reader().execute("SELECT key, value FROM monitor_status").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def results(self, run_id: str | None = None) -> pl.DataFrame:
        """One row per current injection, the contract's columns (README "Export")."""
        where = "WHERE NOT i.superseded"
        params: list[Any] = []
        if run_id:
            where += " AND i.run_id = ?"
            params.append(run_id)
        return self._frame(
            f"""
            SELECT i.run_id, i.position, i.file, i.sample_id, i.sample_type, i.level, i.matrix,
                   i.acquired_at, i.ingested_at,
                   a.area AS analyte_area, s.area AS is_area, r.area_ratio,
                   a.apex_rt AS analyte_rt, s.apex_rt AS is_rt,
                   CASE WHEN q.area IS NOT NULL AND a.area > 0 THEN q.area / a.area END
                       AS ion_ratio,
                   r.conc_vial, r.conc, r.unit, i.dilution, r.normalized_value,
                   r.normalized_unit, r.accuracy_pct, r.calibration_id, r.status,
                   coalesce((SELECT string_agg(DISTINCT f.code, ';' ORDER BY f.code)
                             FROM flags f WHERE f.injection_id = i.injection_id AND f.active),
                            '') AS flags,
                   i.injection_id, i.version, i.group_name, i.nominal, i.error, i.is_pct
            FROM injections i
            LEFT JOIN results r ON r.injection_id = i.injection_id AND r.current
            LEFT JOIN peaks a ON a.injection_id = i.injection_id AND a.role = 'analyte_quant'
            LEFT JOIN peaks s ON s.injection_id = i.injection_id AND s.role = 'is_quant'
            LEFT JOIN peaks q ON q.injection_id = i.injection_id AND q.role = 'analyte_qual'
            {where}
            ORDER BY i.run_id, i.position NULLS LAST, i.injection_id
        """,
            params,
        )

    # ---- dashboard queries (begin)
    def changes_since(self, seq: int) -> pl.DataFrame:
        """What was written after ``seq``, so the dashboard can append instead of redraw."""
        return self._frame(
            "SELECT seq, run_id, kind, injection_id FROM changes WHERE seq > ? ORDER BY seq",
            [seq],
        )

    # ---- dashboard queries (end)

    # ---- operations (begin)
    # Backup, archive and prune for a monitor that lives for months. Reads go
    # through their own cursor inside one transaction, so the copy is one
    # consistent snapshot while the ingestion worker keeps committing.

    # parents first; prune deletes in reverse so each sub-select still finds its keys
    ARCHIVE_TABLES: tuple[str, ...] = (
        "runs",
        "injections",
        "peaks",
        "traces",
        "results",
        "calibrations",
        "calibration_points",
        "flags",
        "acknowledgements",
        "changes",
    )

    @staticmethod
    def archive_folder_name(run_id: str) -> str:
        """A file-system-safe folder per run (run ids may hold '/' with recursive watching)."""
        import hashlib
        import re

        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._") or "run"
        if safe == run_id:
            return safe
        return f"{safe}-{hashlib.sha1(run_id.encode()).hexdigest()[:8]}"

    @staticmethod
    def _sql_string(text: str) -> str:
        """A quoted SQL literal: ATTACH and COPY TO take no parameters for file names."""
        return "'" + text.replace("'", "''") + "'"

    def backup(self, dest: str | Path) -> Path:
        """A consistent copy of the whole database, taken while the monitor writes.

        Written under a temporary name beside ``dest`` and renamed, so a
        half-written backup never looks like a good one.
        """
        dest = Path(dest)
        refusal = backup_refusal(self.path, dest)
        if refusal is not None:
            raise StoreError(refusal)
        if not dest.parent.is_dir():
            raise StoreError(f"{dest.parent}: no such folder for the backup")
        return self._copy_open_database(dest, "backup", failed=f"backup to {dest} failed")

    def _run_rows(self, table: str, run_ids: Sequence[str]) -> tuple[str, list[Any]]:
        """SELECT of one table's rows that belong to the given runs (for archive/prune)."""
        marks = ",".join("?" * len(run_ids))
        by_injection = (
            f"injection_id IN (SELECT injection_id FROM injections WHERE run_id IN ({marks}))"
        )
        where = {
            "runs": f"run_id IN ({marks})",
            "injections": f"run_id IN ({marks})",
            "peaks": by_injection,
            "traces": by_injection,
            "results": by_injection,
            "calibrations": f"run_id IN ({marks})",
            "calibration_points": "calibration_id IN (SELECT calibration_id FROM calibrations "
            f"WHERE run_id IN ({marks}))",
            "flags": f"run_id IN ({marks})",
            "acknowledgements": f"flag_id IN (SELECT flag_id FROM flags WHERE run_id IN ({marks}))",
            "changes": f"run_id IN ({marks})",
        }[table]
        return f"SELECT * FROM {table} WHERE {where}", list(run_ids)

    def archive_runs(self, run_ids: Iterable[str], dest_dir: str | Path) -> list[Path]:
        """Every row of these runs, table by table, as Parquet: one folder per run.

        Each folder holds ``<table>.parquet`` and ``manifest.json`` (row counts);
        ``prune_runs`` deletes a run only when its manifest matches the database.
        """
        import os
        import shutil
        import uuid

        ids = list(dict.fromkeys(run_ids))
        known = set(self.runs()["run_id"].to_list()) if ids else set()
        missing = [r for r in ids if r not in known]
        if missing:
            raise StoreError(f"no such run(s): {', '.join(missing)}")
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        out: list[Path] = []
        cur = self._con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            for run_id in ids:
                folder = dest_dir / self.archive_folder_name(run_id)
                tmp = dest_dir / f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp"
                tmp.mkdir()
                counts: dict[str, int] = {}
                for table in self.ARCHIVE_TABLES:
                    sql, params = self._run_rows(table, [run_id])
                    row = cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()
                    counts[table] = int(row[0]) if row else 0
                    target = self._sql_string(str(tmp / f"{table}.parquet"))
                    cur.execute(f"COPY ({sql}) TO {target} (FORMAT parquet)", params)
                manifest = {"run_id": run_id, "archived_at": _now().isoformat(), "rows": counts}
                (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), "utf-8")
                if folder.exists():
                    old = dest_dir / f".{folder.name}.{uuid.uuid4().hex[:8]}.old"
                    os.replace(folder, old)
                    os.replace(tmp, folder)
                    shutil.rmtree(old)
                else:
                    os.replace(tmp, folder)
                out.append(folder)
            cur.execute("COMMIT")
        except duckdb.Error as exc:
            raise StoreError(f"archive to {dest_dir} failed: {exc}") from exc
        finally:
            cur.close()
        return out

    def prune_runs(self, run_ids: Iterable[str], archive_dir: str | Path) -> dict[str, int]:
        """Delete these runs' rows in one transaction, only if each is archived in full.

        The archive is checked on disk (manifest row counts equal the database's
        now), so a run that gained rows after it was archived is not lost.
        Returns rows deleted per table.
        """
        ids = list(dict.fromkeys(run_ids))
        archive_dir = Path(archive_dir)
        problems: list[str] = []
        for run_id in ids:
            manifest_path = archive_dir / self.archive_folder_name(run_id) / "manifest.json"
            try:
                manifest = json.loads(manifest_path.read_text("utf-8"))
            except (OSError, ValueError):
                problems.append(f"{run_id}: not archived in {archive_dir} (archive it first)")
                continue
            for table in self.ARCHIVE_TABLES:
                sql, params = self._run_rows(table, [run_id])
                row = self.reader().execute(f"SELECT count(*) FROM ({sql})", params).fetchone()
                have = int(row[0]) if row else 0
                if manifest.get("rows", {}).get(table) != have:
                    problems.append(
                        f"{run_id}: the archive holds {manifest.get('rows', {}).get(table)} "
                        f"{table} rows, the database {have} (archive it again)"
                    )
                    break
                if not (manifest_path.parent / f"{table}.parquet").is_file():
                    problems.append(f"{run_id}: {table}.parquet missing from the archive")
                    break
        if problems:
            raise StoreError("refusing to prune: " + "; ".join(problems))
        deleted: dict[str, int] = {}
        with self._tx() as con:
            # children before parents: the sub-selects still see their keys
            for table in reversed(self.ARCHIVE_TABLES):
                sql, params = self._run_rows(table, ids)
                where = sql.split(" WHERE ", 1)[1]
                row = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()
                deleted[table] = int(row[0]) if row else 0
                con.execute(f"DELETE FROM {table} WHERE {where}", params)
            _change(con, None, "pruned", None)
        return deleted

    def max_flag_id(self) -> int:
        row = self.reader().execute("SELECT coalesce(max(flag_id), 0) FROM flags").fetchone()
        return int(row[0]) if row else 0

    def alert_flags_since(self, flag_id: int) -> list[dict[str, Any]]:
        """Active fail-severity flags newer than ``flag_id``, with their file (for alerts)."""
        cur = self.reader().execute(
            "SELECT f.flag_id, f.run_id, f.injection_id, f.code, f.severity, f.message, "
            "f.action, i.file FROM flags f LEFT JOIN injections i USING (injection_id) "
            "WHERE f.flag_id > ? AND f.severity = 'fail' AND f.active ORDER BY f.flag_id",
            [flag_id],
        )
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def run_verdicts(self) -> dict[str, tuple[str, str]]:
        """run_id -> (verdict, reason); cheap enough to poll."""
        rows = self.reader().execute("SELECT run_id, verdict, verdict_reason FROM runs").fetchall()
        return {r[0]: (r[1] or "", r[2] or "") for r in rows}

    # ---- live flag updates (IS_DRIFT forecast, IS % backfill)

    def update_flag(self, run_id: str, injection_id: int, flag: Flag) -> None:
        """Keep one injection's flag of ``flag.code`` current, its history kept.

        Same severity: the active row keeps its id (its acknowledgements, and no
        second alert) and takes the new text; the text it had is kept as an
        inactive row. A new severity (escalation) deactivates the row and inserts
        a new one, which needs its own acknowledgement and raises its own alert.
        """
        with self._tx() as con:
            row = con.execute(
                "SELECT flag_id, severity FROM flags WHERE run_id = ? AND injection_id = ? "
                "AND code = ? AND active ORDER BY flag_id DESC LIMIT 1",
                [run_id, injection_id, flag.code],
            ).fetchone()
            if row is not None and row[1] == flag.severity.value:
                now = _now()
                con.execute(
                    "INSERT INTO flags (run_id, injection_id, code, severity, message, action, "
                    "value, limit_value, source, details, active, created_at, deactivated_at) "
                    "SELECT run_id, injection_id, code, severity, message, action, value, "
                    "limit_value, source, details, FALSE, created_at, ? FROM flags "
                    "WHERE flag_id = ?",
                    [now, row[0]],
                )
                con.execute(
                    "UPDATE flags SET message = ?, action = ?, value = ?, limit_value = ?, "
                    "source = ?, details = ?, created_at = ? WHERE flag_id = ?",
                    [
                        flag.message,
                        flag.action,
                        flag.value,
                        flag.limit,
                        flag.source,
                        json.dumps(dict(flag.details), default=str),
                        now,
                        row[0],
                    ],
                )
            else:
                _deactivate(con, run_id, injection_id, [flag.code])
                _insert_flags(con, run_id, injection_id, [flag])
            _change(con, run_id, "flags", injection_id)

    def acquisition_times(self, run_id: str) -> dict[int, str | None]:
        """injection_id -> acquired_at (the file's startTimeStamp) of a run's current injections."""
        rows = (
            self.reader()
            .execute(
                "SELECT injection_id, acquired_at FROM injections "
                "WHERE run_id = ? AND NOT superseded",
                [run_id],
            )
            .fetchall()
        )
        return {int(r[0]): r[1] for r in rows}

    def backfill_is_pct(self, run_id: str, values: Mapping[int, float]) -> None:
        """IS % for injections that had no reference when they arrived (never overwrites)."""
        if not values:
            return
        with self._tx() as con:
            for injection_id, pct in values.items():
                con.execute(
                    "UPDATE injections SET is_pct = ? WHERE run_id = ? AND injection_id = ? "
                    "AND is_pct IS NULL",
                    [pct, run_id, injection_id],
                )
            _change(con, run_id, "run", None)  # earlier points moved: the plots redraw

    # ---- operations (end)

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
            try:
                self._con = duckdb.connect(
                    str(self.path), config={"memory_limit": f"{self._memory_mb}MB"}
                )
            except duckdb.Error as exc:
                raise StoreError(f"{self.path}: cannot reopen the database ({exc})") from exc
        self.migrate()

    def save_open_copy(self, dest: Path) -> Path:
        """Write what this connection holds to ``dest`` (may be ``path`` itself, once deleted).

        The rescue of a database file deleted or replaced while open: the open
        connection still reads the old file, so nothing written to it is lost.
        """
        return self._copy_open_database(
            dest, "rescue", failed=f"could not save the open database to {dest}"
        )

    def _copy_open_database(self, dest: Path, purpose: str, *, failed: str) -> Path:
        """COPY FROM DATABASE into a temporary file beside ``dest``, then rename it.

        A half-written copy never carries ``dest``'s name: a backup that looks good
        but is not, or a rescued file cut short, would be worse than none.
        """
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
        alias = f"asnmon_{purpose}_{uuid.uuid4().hex[:8]}"
        cur = self._con.cursor()
        try:
            source = cur.execute("SELECT current_database()").fetchone()
            if source is None:
                raise StoreError("the database did not name itself")
            cur.execute(f"ATTACH {self._sql_string(str(tmp))} AS {alias} (READ_WRITE)")
            try:
                cur.execute("BEGIN TRANSACTION")
                cur.execute(f'COPY FROM DATABASE "{source[0]}" TO {alias}')
                cur.execute("COMMIT")
            finally:
                cur.execute(f"DETACH {alias}")
            os.replace(tmp, dest)
        except duckdb.Error as exc:
            raise StoreError(f"{failed}: {exc}") from exc
        finally:
            cur.close()
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
        return dest


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


# Files DuckDB keeps beside a database (its write-ahead log, its spill folder) and the
# names SQLite-style tools use: a backup written over one of them destroys the database.
OWN_SUFFIXES = (".wal", "-wal", ".tmp", "-journal", "-shm", ".backup-request")


def backup_refusal(db: Path, dest: Path) -> str | None:
    """Why ``dest`` must not receive a backup of ``db`` (None: it may).

    Checked where the user types the command and again by the process that
    writes, because ``os.replace`` onto the live write-ahead log empties the
    database at its next start.
    """
    own = db.resolve()
    target = dest.resolve()
    if target.is_dir():
        return f"{dest} is a folder: give the backup a file name (e.g. {dest / own.name})"
    kin = [own, *(own.with_name(own.name + s) for s in OWN_SUFFIXES)]
    same = target in kin or any(k in target.parents for k in kin)
    if not same and target.exists():
        try:
            same = os.path.samefile(target, own)  # a hard link is the database itself
        except OSError:
            same = False
    if same:
        return (
            f"{dest} is the database's own file ({target.name} of {own.name}): a backup "
            "written there would overwrite the database and lose its data; choose another file"
        )
    return None


class _Transaction:
    """``with store._tx() as con:`` — commit on success, roll back on any error."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lock: threading.Lock) -> None:
        self._con = con
        self._lock = lock

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self._lock.acquire()
        self._con.begin()
        return self._con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._con.commit()
            else:
                self._con.rollback()
        finally:
            self._lock.release()
        if isinstance(exc, duckdb.Error):
            raise StoreError(f"database write failed: {exc}") from exc


def _insert_result(
    con: duckdb.DuckDBPyConnection, injection_id: int, r: Result, calibration_id: int | None
) -> None:
    con.execute(
        "INSERT INTO results (injection_id, calibration_id, calibration_version, status, "
        "area_ratio, conc_vial, conc, unit, normalized_value, normalized_unit, accuracy_pct, "
        "current, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,TRUE,?)",
        [
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
            _now(),
        ],
    )


def _insert_flags(
    con: duckdb.DuckDBPyConnection, run_id: str, injection_id: int | None, flags: Iterable[Flag]
) -> None:
    rows = [
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
            _now(),
        ]
        for f in flags
    ]
    _insert_rows(
        con,
        "flags (run_id, injection_id, code, severity, message, action, value, limit_value, "
        "source, details, created_at)",
        rows,
    )


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
    """One multi-row INSERT: DuckDB's executemany pays a statement per row."""
    if not rows:
        return
    one = "(" + ",".join("?" * len(rows[0])) + ")"
    con.execute(
        f"INSERT INTO {table} VALUES " + ",".join([one] * len(rows)),
        [v for row in rows for v in row],
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
    con.execute(
        "INSERT INTO changes (changed_at, run_id, kind, injection_id) VALUES (?,?,?,?)",
        [_now(), run_id, kind, injection_id],
    )
