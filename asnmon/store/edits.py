"""Store mixin: a reviewer's changes — manual peaks, calibrator exclusion, batch edits, links.

Each change is one transaction that also holds its audit event
(``append_event``) and its row in ``edits``; the run must not be locked
(``ensure_unlocked``) and the actor must be allowed (``asnmon.users.require``).
Nothing is lost: peaks replaced by a manual integration move, unchanged, to
``peak_history`` (the automatic integration stays there to be shown beside the
manual one and to be restored); a corrected batch-table field keeps its old
value in the edit row and the event. The re-quantification that follows is the
pipeline's (``asnmon.pipeline.requantify``); an edit is ``applied`` once it is
stored, so a crash in between is finished later (``pending_edits``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from asnmon.errors import ReviewError, StoreError
from asnmon.names import from_db
from asnmon.records import Flag, Peak, Result, Sample, SampleType
from asnmon.store._sql import _change, _deactivate, _insert_flags, _insert_result, _now
from asnmon.store.base import StoreBase
from asnmon.store.rows import RunInfo
from asnmon.users import Actor, require
from asnmon.worklist import file_key

PEAK_COLUMNS = (
    "injection_id, transition, role, apex_rt, start_rt, end_rt, area, height, "
    "baseline_start, baseline_end, fwhm, sn, points, saturated, truncated, source, edit_id"
)
# kinds of edit, as stored and as the audit trail's action
KINDS = ("reintegrate", "revert_integration", "exclude", "include", "sample", "link")


@dataclass(frozen=True, slots=True)
class PendingEdit:
    """An edit stored but not yet re-quantified."""

    edit_id: int
    injection_id: int | None
    kind: str
    refits: bool  # a calibrator changed: the curve gets a new version


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


class Edits(StoreBase):
    """Manual integration, exclusion, batch-table edits, re-injection links; their reads."""

    if TYPE_CHECKING:  # the audit mixin's (asnmon/store/audit.py), combined in Store

        def append_event(
            self,
            con: duckdb.DuckDBPyConnection,
            *,
            run_id: str | None,
            injection_id: int | None,
            actor: Actor,
            action: str,
            target: str,
            old: Any,
            new: Any,
            reason: str,
        ) -> int: ...

        def ensure_unlocked(self, run_id: str | None) -> None: ...

    # ---------------------------------------------------------------- plumbing

    def _person_write(self, actor: Actor, action: str, run_id: str) -> None:
        """Who may, and whether the run is open for changes; before the transaction."""
        require(actor, action)
        self.ensure_unlocked(run_id)

    def _edit_row(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        actor: Actor,
        run_id: str,
        injection_id: int | None,
        kind: str,
        target: str,
        field: str | None,
        old: object,
        new: object,
        reason: str,
        comment: str,
        refits: bool,
    ) -> int:
        why = reason + (f" ({comment})" if comment else "")
        event_id = self.append_event(
            con,
            run_id=run_id,
            injection_id=injection_id,
            actor=actor,
            action=kind,
            target=target,
            old=old,
            new=new,
            reason=why,
        )
        row = con.execute(
            "INSERT INTO edits (run_id, injection_id, kind, field, old_value, new_value, "
            "reason, comment, actor, actor_role, created_at, refits, event_id, applied_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING edit_id",
            [
                run_id,
                injection_id,
                kind,
                field,
                _json(old),
                _json(new),
                reason,
                comment or None,
                actor.name,
                actor.role,
                _now(),
                refits,
                event_id,
                _now() if kind == "link" else None,  # changes no number: nothing to apply
            ],
        ).fetchone()
        if row is None:
            raise StoreError("the database returned no id for the edit")
        _change(con, run_id, "edit", injection_id)
        return int(row[0])

    def _injection(self, con: duckdb.DuckDBPyConnection, injection_id: int) -> tuple[Any, ...]:
        row = con.execute(
            "SELECT run_id, file, sample_type, superseded, error FROM injections "
            "WHERE injection_id = ?",
            [injection_id],
        ).fetchone()
        if row is None:
            raise ReviewError(f"No injection with id {injection_id} in this database.")
        if row[3]:
            raise ReviewError(
                f"{from_db(row[1])}: this version was replaced by a newer file; edit the "
                "current one."
            )
        return tuple(row)

    # ---------------------------------------------------------------- manual integration

    def write_reintegration(
        self,
        actor: Actor,
        run_id: str,
        injection_id: int,
        peaks: Mapping[str, Peak | None],
        roles: Mapping[str, str],
        *,
        reason: str,
        comment: str = "",
    ) -> int:
        """The group's peaks replaced by manual ones; the replaced ones kept in peak_history."""
        self._person_write(actor, "reintegrate", run_id)
        with self._tx() as con:
            inj = self._injection(con, injection_id)
            if inj[4] is not None:
                raise ReviewError(
                    f"{from_db(inj[1])} has no result to reintegrate (it could not be read)."
                )
            members = list(peaks)
            old = self._group_rows(con, injection_id, members)
            start = min((p.start_rt for p in peaks.values() if p), default=None)
            end = max((p.end_rt for p in peaks.values() if p), default=None)
            edit_id = self._edit_row(
                con,
                actor=actor,
                run_id=run_id,
                injection_id=injection_id,
                kind="reintegrate",
                target=f"integration of {from_db(inj[1])}",
                field="bounds",
                old={r["transition"]: _summary(r) for r in old},
                new={"start_rt": start, "end_rt": end}
                | {t: _summary(_peak_dict(p)) for t, p in peaks.items() if p is not None},
                reason=reason,
                comment=comment,
                refits=inj[2] == SampleType.CALIBRATOR.value,
            )
            self._replace_group(con, injection_id, members, edit_id)
            rows = [
                [
                    injection_id,
                    t,
                    roles.get(t),
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
                    "manual",
                    edit_id,
                ]
                for t, p in peaks.items()
                if p is not None
            ]
            if rows:
                con.executemany(
                    f"INSERT INTO peaks ({PEAK_COLUMNS}) VALUES ({','.join('?' * 17)})", rows
                )
        return edit_id

    def revert_integration(
        self, actor: Actor, run_id: str, injection_id: int, *, reason: str, comment: str = ""
    ) -> int:
        """Back to the automatic integration (the manual one kept in peak_history)."""
        self._person_write(actor, "reintegrate", run_id)
        with self._tx() as con:
            inj = self._injection(con, injection_id)
            manual = con.execute(
                "SELECT transition FROM peaks WHERE injection_id = ? AND source = 'manual'",
                [injection_id],
            ).fetchall()
            if not manual:
                raise ReviewError(f"{from_db(inj[1])} is integrated automatically already.")
            auto = self._automatic(con, injection_id)
            members = sorted({str(r[0]) for r in manual} | {str(r["transition"]) for r in auto})
            edit_id = self._edit_row(
                con,
                actor=actor,
                run_id=run_id,
                injection_id=injection_id,
                kind="revert_integration",
                target=f"integration of {from_db(inj[1])}",
                field="bounds",
                old={
                    r["transition"]: _summary(r)
                    for r in self._group_rows(con, injection_id, members)
                },
                new={r["transition"]: _summary(r) for r in auto},
                reason=reason,
                comment=comment,
                refits=inj[2] == SampleType.CALIBRATOR.value,
            )
            self._replace_group(con, injection_id, members, edit_id)
            cols = [c.strip() for c in PEAK_COLUMNS.split(",")]
            if auto:
                con.executemany(
                    f"INSERT INTO peaks ({PEAK_COLUMNS}) VALUES ({','.join('?' * 17)})",
                    [[r[c] for c in cols] for r in auto],
                )
        return edit_id

    def _group_rows(
        self, con: duckdb.DuckDBPyConnection, injection_id: int, members: Sequence[str]
    ) -> list[dict[str, Any]]:
        if not members:
            return []
        cur = con.execute(
            f"SELECT {PEAK_COLUMNS} FROM peaks WHERE injection_id = ? "
            f"AND transition IN ({','.join('?' * len(members))})",
            [injection_id, *members],
        )
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _replace_group(
        self, con: duckdb.DuckDBPyConnection, injection_id: int, members: Sequence[str], by: int
    ) -> None:
        """The members' current peaks moved to peak_history, unchanged."""
        marks = ",".join("?" * len(members))
        con.execute(
            f"INSERT INTO peak_history SELECT {PEAK_COLUMNS}, ?, ? FROM peaks "
            f"WHERE injection_id = ? AND transition IN ({marks})",
            [by, _now(), injection_id, *members],
        )
        con.execute(
            f"DELETE FROM peaks WHERE injection_id = ? AND transition IN ({marks})",
            [injection_id, *members],
        )

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

    # ---------------------------------------------------------------- calibrators

    def set_excluded(
        self,
        actor: Actor,
        run_id: str,
        injection_id: int,
        excluded: bool,
        *,
        reason: str,
        comment: str = "",
    ) -> int:
        """A calibrator excluded from (or included again in) the run's curve."""
        self._person_write(actor, "exclude", run_id)
        with self._tx() as con:
            inj = self._injection(con, injection_id)
            if inj[2] != SampleType.CALIBRATOR.value:
                raise ReviewError(
                    f"{from_db(inj[1])} is a {inj[2]}, not a calibrator: only calibrators "
                    "are in the curve."
                )
            now = self._excluded_in(con, run_id).get(injection_id) is not None
            if now == excluded:
                raise ReviewError(
                    f"{from_db(inj[1])} is "
                    + ("excluded already." if excluded else "in the curve already.")
                )
            return self._edit_row(
                con,
                actor=actor,
                run_id=run_id,
                injection_id=injection_id,
                kind="exclude" if excluded else "include",
                target=f"calibrator {from_db(inj[1])} in the curve",
                field="excluded",
                old=now,
                new=excluded,
                reason=reason,
                comment=comment,
                refits=True,
            )

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
        """Calibrators a reviewer excluded, with the reason the curve shows."""
        return {k: v for k, v in self._excluded_in(self.reader(), run_id).items() if v}

    # ---------------------------------------------------------------- batch table

    def edit_sample(
        self,
        actor: Actor,
        run_id: str,
        injection_id: int,
        field: str,
        new: str | float | None,
        *,
        reason: str,
        comment: str = "",
        refits: bool,
    ) -> int:
        """One batch-table field corrected; the old value stays in the edit and the event."""
        columns = {"sample_type", "level", "nominal", "dilution", "matrix"}
        if field not in columns:
            raise ReviewError(f"{field!r} cannot be edited.")
        self._person_write(actor, "edit", run_id)
        with self._tx() as con:
            inj = self._injection(con, injection_id)
            row = con.execute(
                f"SELECT {field} FROM injections WHERE injection_id = ?", [injection_id]
            ).fetchone()
            old = row[0] if row else None
            if old == new:
                raise ReviewError(f"{field} of {from_db(inj[1])} is {old!r} already.")
            edit_id = self._edit_row(
                con,
                actor=actor,
                run_id=run_id,
                injection_id=injection_id,
                kind="sample",
                target=f"{field} of {from_db(inj[1])}",
                field=field,
                old=old,
                new=new,
                reason=reason,
                comment=comment,
                refits=refits,
            )
            con.execute(
                f"UPDATE injections SET {field} = ? WHERE injection_id = ?", [new, injection_id]
            )
        return edit_id

    def link_reinjection(
        self,
        actor: Actor,
        run_id: str,
        injection_id: int,
        original_id: int | None,
        *,
        reason: str,
        comment: str = "",
    ) -> int:
        """Mark an injection as the re-injection of another (None: unlink)."""
        self._person_write(actor, "edit", run_id)
        with self._tx() as con:
            inj = self._injection(con, injection_id)
            target = None
            if original_id is not None:
                if original_id == injection_id:
                    raise ReviewError("An injection cannot be a re-injection of itself.")
                orig = self._injection(con, original_id)
                if orig[0] != run_id:
                    raise ReviewError(f"{from_db(orig[1])} belongs to another run.")
                target = from_db(orig[1])
            old = self._links(con, run_id).get(injection_id)
            if old == original_id:
                raise ReviewError(f"{from_db(inj[1])} is linked so already.")
            return self._edit_row(
                con,
                actor=actor,
                run_id=run_id,
                injection_id=injection_id,
                kind="link",
                target=f"re-injection link of {from_db(inj[1])}",
                field="reinjection_of",
                old=old,
                new=original_id
                if target is None
                else {"injection_id": original_id, "file": target},
                reason=reason,
                comment=comment,
                refits=False,
            )

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
        """re-injection id -> original injection id, as reviewers linked them."""
        return {k: v for k, v in self._links(self.reader(), run_id).items() if v is not None}

    # ---------------------------------------------------------------- re-quantification

    def pending_edits(self, run_id: str) -> list[PendingEdit]:
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

    def mark_edits_applied(self, run_id: str, edit_ids: Iterable[int]) -> None:
        ids = list(edit_ids)
        if not ids:
            return
        with self._tx() as con:
            con.execute(
                f"UPDATE edits SET applied_at = ? WHERE run_id = ? "
                f"AND edit_id IN ({','.join('?' * len(ids))})",
                [_now(), run_id, *ids],
            )
            _change(con, run_id, "calibration", None)  # every view redraws its numbers

    def rejudge_injection(
        self,
        run_id: str,
        injection_id: int,
        result: Result | None,
        flags: Sequence[Flag],
        codes: Iterable[str],
        *,
        is_pct: float | None,
    ) -> None:
        """An injection's new result (if given) and its re-judged flags, in one transaction."""
        with self._tx() as con:
            if result is not None:
                found = con.execute(
                    "SELECT max(calibration_id) FROM calibrations WHERE run_id = ? AND version = ?",
                    [run_id, result.calibration_version],
                ).fetchone()
                cal_id = found[0] if found and result.calibration_version is not None else None
                con.execute(
                    "UPDATE results SET current = FALSE WHERE injection_id = ? AND current",
                    [injection_id],
                )
                _insert_result(con, injection_id, result, cal_id)
            _deactivate(con, run_id, injection_id, sorted(set(codes)))
            _insert_flags(con, run_id, injection_id, flags)
            con.execute(
                "UPDATE injections SET is_pct = ? WHERE injection_id = ?", [is_pct, injection_id]
            )
            _change(con, run_id, "calibration", injection_id)

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
        where = "e.run_id = ?" + (" AND e.injection_id = ?" if injection_id is not None else "")
        params: list[Any] = [run_id] + ([injection_id] if injection_id is not None else [])
        return self._frame(
            "SELECT e.*, i.file, i.sample_id FROM edits e LEFT JOIN injections i "
            f"USING (injection_id) WHERE {where} ORDER BY e.edit_id",
            params,
        )

    def review_notes(self, run_id: str) -> dict[int, str]:
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
                "SELECT run_id, file, sample_id, sample_type, position, level, nominal, matrix, "
                "dilution, normalizer, normalizer_unit, volume_ul, group_name, in_worklist "
                "FROM injections WHERE injection_id = ?",
                [injection_id],
            )
            .fetchone()
        )
        if row is None:
            raise ReviewError(f"No injection with id {injection_id} in this database.")
        return str(row[0]), Sample(
            file=file_key(from_db(row[1])),
            sample_id=row[2],
            sample_type=SampleType(row[3]),
            position=row[4],
            level=row[5],
            nominal=row[6],
            matrix=row[7],
            dilution=row[8] or 1.0,
            normalizer=row[9],
            normalizer_unit=row[10],
            volume_ul=row[11],
            group=row[12],
            in_worklist=bool(row[13]),
        )


def _shown(value: object) -> str:
    return (
        "—"
        if value is None or value == ""
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )


def _peak_dict(p: Peak) -> dict[str, Any]:
    return {
        "start_rt": p.start_rt,
        "end_rt": p.end_rt,
        "area": p.area,
        "apex_rt": p.apex_rt,
        "source": "manual",
    }


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit trail keeps of a peak: its bounds, area, apex and origin."""
    return {
        k: (round(float(row[k]), 6) if isinstance(row.get(k), float) else row.get(k))
        for k in ("start_rt", "end_rt", "area", "apex_rt", "source")
    }
