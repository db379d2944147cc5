"""Store mixin: the reads of a reviewer's changes (what the review panel, the report and
the re-quantification ask), apart from the writes in ``asnmon.store.edits``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from asnmon.errors import ReviewError
from asnmon.names import from_db
from asnmon.records import Sample
from asnmon.store.base import StoreBase
from asnmon.store.rows import SAMPLE_COLUMNS, RunInfo, sample_of
from asnmon.worklist import file_key

PEAK_COLUMNS = (
    "injection_id, transition, role, apex_rt, start_rt, end_rt, area, height, "
    "baseline_start, baseline_end, fwhm, sn, points, saturated, truncated, source, edit_id"
)


@dataclass(frozen=True, slots=True)
class PendingEdit:
    """An edit stored but not yet re-quantified."""

    edit_id: int
    injection_id: int | None
    kind: str
    refits: bool  # a calibrator changed: the curve gets a new version


class EditReads(StoreBase):
    """Automatic peaks kept, exclusions, links, pending edits, notes, the edit list.

    A database from before the review (opened read-only, so not migrated) has no
    edits: every read here then answers "none" instead of failing.
    """

    _has_edits: bool | None = None

    def _edits_table(self) -> bool:
        if self._has_edits is None or not self._has_edits:
            row = (
                self.reader()
                .execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = 'edits'"
                )
                .fetchone()
            )
            self._has_edits = bool(row and row[0])
        return self._has_edits

    def _automatic(self, con: duckdb.DuckDBPyConnection, injection_id: int) -> list[dict[str, Any]]:
        """The automatic integration: current, or the last one a manual one replaced."""
        cur = con.execute(
            f"SELECT {PEAK_COLUMNS} FROM peak_history WHERE injection_id = ? "
            "AND coalesce(source, 'auto') = 'auto' AND replaced_by = (SELECT max(replaced_by) "
            "FROM peak_history WHERE injection_id = ? AND coalesce(source, 'auto') = 'auto')",
            [injection_id, injection_id],
        )
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def automatic_peaks(self, injection_id: int) -> pl.DataFrame:
        if not self._edits_table():
            return pl.DataFrame()
        """The automatic integration of an injection whose current peaks are manual (else
        empty): shown beside the manual one."""
        manual = (
            self.reader()
            .execute(
                "SELECT count(*) FROM peaks WHERE injection_id = ? AND source = 'manual'",
                [injection_id],
            )
            .fetchone()
        )
        if not manual or not manual[0]:
            return pl.DataFrame()
        rows = self._automatic(self.reader(), injection_id)
        return pl.DataFrame(rows) if rows else pl.DataFrame()

    def _excluded_in(self, con: duckdb.DuckDBPyConnection, run_id: str) -> dict[int, str | None]:
        """injection id -> "excluded by NAME: REASON" (None: included again), latest edit."""
        rows = con.execute(
            "SELECT injection_id, kind, actor, reason, comment FROM edits WHERE run_id = ? "
            "AND kind IN ('exclude', 'include') ORDER BY edit_id",
            [run_id],
        ).fetchall()
        out: dict[int, str | None] = {}
        for iid, kind, actor, reason, comment in rows:
            text = f"excluded by {actor}: {reason}" + (f" ({comment})" if comment else "")
            out[int(iid)] = text if kind == "exclude" else None
        return out

    def exclusions(self, run_id: str) -> dict[int, str]:
        if not self._edits_table():
            return {}
        """Calibrators a reviewer excluded, with the reason the curve shows."""
        return {k: v for k, v in self._excluded_in(self.reader(), run_id).items() if v}

    def _links(self, con: duckdb.DuckDBPyConnection, run_id: str) -> dict[int, int | None]:
        rows = con.execute(
            "SELECT injection_id, new_value FROM edits WHERE run_id = ? AND kind = 'link' "
            "ORDER BY edit_id",
            [run_id],
        ).fetchall()
        out: dict[int, int | None] = {}
        for iid, new in rows:
            value = json.loads(new) if new else None
            out[int(iid)] = int(value["injection_id"]) if isinstance(value, dict) else value
        return out

    def reinjection_links(self, run_id: str) -> dict[int, int]:
        if not self._edits_table():
            return {}
        """re-injection id -> original injection id, as reviewers linked them."""
        return {k: v for k, v in self._links(self.reader(), run_id).items() if v is not None}

    def pending_edits(self, run_id: str) -> list[PendingEdit]:
        if not self._edits_table():
            return []
        rows = (
            self.reader()
            .execute(
                "SELECT edit_id, injection_id, kind, refits FROM edits WHERE run_id = ? "
                "AND applied_at IS NULL ORDER BY edit_id",
                [run_id],
            )
            .fetchall()
        )
        return [PendingEdit(int(r[0]), r[1], str(r[2]), bool(r[3])) for r in rows]

    def run_info(self, run_id: str) -> RunInfo:
        row = (
            self.reader()
            .execute(
                "SELECT run_id, name, folder, worklist, assay_name, assay_unit, lloq, uloq, "
                "planned FROM runs WHERE run_id = ?",
                [run_id],
            )
            .fetchone()
        )
        if row is None:
            raise ReviewError(f"No run {run_id!r} in this database.")
        return RunInfo(*row)

    # ---------------------------------------------------------------- reads

    def edits(self, run_id: str, injection_id: int | None = None) -> pl.DataFrame:
        """The run's edits, oldest first, with the file they touched."""
        if not self._edits_table():
            return pl.DataFrame()
        where = "e.run_id = ?" + (" AND e.injection_id = ?" if injection_id is not None else "")
        params: list[Any] = [run_id] + ([injection_id] if injection_id is not None else [])
        return self._frame(
            "SELECT e.*, i.file, i.sample_id FROM edits e LEFT JOIN injections i "
            f"USING (injection_id) WHERE {where} ORDER BY e.edit_id",
            params,
        )

    def review_notes(self, run_id: str) -> dict[int, str]:
        if not self._edits_table():
            return {}
        """What each changed injection's result says about it, in words."""
        cur = self.reader()
        rows = cur.execute(
            "SELECT injection_id, kind, field, old_value, new_value, actor, reason FROM edits "
            "WHERE run_id = ? AND injection_id IS NOT NULL ORDER BY edit_id",
            [run_id],
        ).fetchall()
        integration: dict[int, str | None] = {}
        fields: dict[int, dict[str, str]] = {}
        for iid, kind, field, old, new, actor, reason in rows:
            if kind == "reintegrate":
                integration[iid] = f"manually integrated by {actor} because {reason}"
            elif kind == "revert_integration":
                integration[iid] = None
            elif kind == "sample":
                was = json.loads(old) if old else None
                fields.setdefault(iid, {})[field] = (
                    f"{field} {_shown(was)} → {_shown(json.loads(new) if new else None)} "
                    f"by {actor} ({reason})"
                )
        links = self.reinjection_links(run_id)
        names = dict(
            cur.execute(
                "SELECT injection_id, file FROM injections WHERE run_id = ?", [run_id]
            ).fetchall()
        )
        notes: dict[int, list[str]] = {}
        for iid, text in integration.items():
            if text:
                notes.setdefault(iid, []).append(text)
        for iid, text in self.exclusions(run_id).items():
            notes.setdefault(iid, []).append(text.replace("excluded", "excluded from the curve", 1))
        for iid, by_field in fields.items():
            notes.setdefault(iid, []).extend(by_field.values())
        for iid, orig in links.items():
            notes.setdefault(iid, []).append(
                f"re-injection of {file_key(from_db(str(names.get(orig, orig))))}"
            )
        return {k: "; ".join(v) for k, v in notes.items()}

    def stored_sample(self, injection_id: int) -> tuple[str, Sample]:
        """(run id, the sample as stored now): what an edit starts from."""
        row = (
            self.reader()
            .execute(
                f"SELECT run_id, {SAMPLE_COLUMNS} FROM injections WHERE injection_id = ?",
                [injection_id],
            )
            .fetchone()
        )
        if row is None:
            raise ReviewError(f"No injection with id {injection_id} in this database.")
        return str(row[0]), sample_of(row[1:])


def _shown(value: object) -> str:
    return (
        "—"
        if value is None or value == ""
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )
