"""Reads: typed rows for the ingestor, polars frames for the dashboard and reports."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from asnmon.names import from_db
from asnmon.records import Calibration, Peak
from asnmon.store._sql import (
    INJECTION_COLUMNS,
    RESULT_COLUMNS,
    _unblob,
)
from asnmon.store.base import StoreBase
from asnmon.store.rows import SAMPLE_COLUMNS, StoredEntry, StoredFile, sample_of

_QC_VALUES = (
    "SELECT i.injection_id, i.run_id, coalesce(i.acquired_at, CAST(i.ingested_at AS VARCHAR), ''), "
    "i.level, r.accuracy_pct FROM injections i JOIN results r "
    "ON r.injection_id = i.injection_id AND r.current "
    "WHERE NOT i.superseded AND i.sample_type = 'qc' AND i.level IS NOT NULL "
    "AND r.accuracy_pct IS NOT NULL ORDER BY i.injection_id"
)


def _held_qc_rows(
    injections: Sequence[Sequence[Any]], results: Sequence[Sequence[Any]]
) -> list[tuple[Any, ...]] | None:
    """``_QC_VALUES``'s rows among rows held back (``Pending``), or None where only the
    database can tell them (they are then written first and the query reads them).

    Held rows are as inserted (a write that updates them writes them first): the
    injections not superseded, their results current. Positions are those of
    ``INJECTION_COLUMNS`` and ``RESULT_COLUMNS``.
    """
    ids = {r[0] for r in injections}
    accuracy: dict[Any, list[Any]] = {}
    for r in results:
        if r[0] not in ids:  # a held result of an injection already written
            return None
        if r[11] and r[10] is not None:
            accuracy.setdefault(r[0], []).append(r[10])
    out: list[tuple[Any, ...]] = []
    for r in injections:
        if r[8] != "qc" or r[9] is None or r[0] not in accuracy:
            continue
        if r[18] is None:  # no acquisition time: the database's text of ingested_at stands in
            return None
        out.extend((r[0], r[1], r[18], r[9], value) for value in accuracy[r[0]])
    return out


def _qc_row(row: Sequence[Any]) -> tuple[int, tuple[str, str, str, float]]:
    """A ``_QC_VALUES`` row as ``qc_values`` gives it, after its injection id."""
    _, run_id, acquired, level, value = row
    return int(row[0]), (str(run_id), str(acquired), str(level), float(value))


class Queries(StoreBase):
    """Read queries; each runs on the calling thread's own cursor."""

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
            f"SELECT injection_id, {SAMPLE_COLUMNS}, error FROM injections "
            "WHERE run_id = ? AND NOT superseded ORDER BY injection_id",
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
            out.append(
                StoredEntry(int(r[0]), sample_of(r[1:14]), peaks.get(r[0], {}), r[14] is not None)
            )
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
        flags) keeps it to a fraction of a millisecond. Inside a group the rows
        held back are read where they are (``_held_qc_rows``) instead of being
        written first (that write would cost more than the query), and the
        database's part is read again only after its tables may have changed.
        """
        held = None
        if self._own_group() is not None:  # only the group's writer may look at its rows
            held = _held_qc_rows(*self._pending.held(INJECTION_COLUMNS, RESULT_COLUMNS))
        if held is None:
            return [_qc_row(r)[1] for r in self.reader().execute(_QC_VALUES).fetchall()]
        written = self._pending.qc_rows  # the group's own rows, not flushed
        if written is None:  # read (and converted) once while its tables stay as they are
            rows = self._con.execute(_QC_VALUES).fetchall()
            written = self._pending.qc_rows = [_qc_row(r) for r in rows]
        mine = [_qc_row(r) for r in held]
        ordered = (not written or not mine or written[-1][0] <= mine[0][0]) and all(
            a[0] <= b[0] for a, b in itertools.pairwise(mine)
        )
        # In injection id order, as ORDER BY would give them (a stable sort: a
        # concatenation already in order is that order).
        merged = [*written, *mine] if ordered else sorted([*written, *mine], key=lambda r: r[0])
        return [r for _, r in merged]

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

    def open_fail_counts(self) -> dict[str, int]:
        """Active fail flags nobody acknowledged, per run: every run in one query."""
        rows = (
            self.reader()
            .execute(
                "SELECT f.run_id, count(*) FROM flags f WHERE f.active AND f.severity = 'fail' "
                "AND NOT EXISTS (SELECT 1 FROM acknowledgements a WHERE a.flag_id = f.flag_id) "
                "GROUP BY f.run_id"
            )
            .fetchall()
        )
        return {str(run_id): int(n) for run_id, n in rows}

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
