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
from typing import Any

import duckdb

from asnmon.errors import ReviewError, StoreError
from asnmon.names import from_db
from asnmon.records import Flag, Peak, Result, SampleType
from asnmon.review import ActorLike, require_may
from asnmon.store._sql import (
    _change,
    _deactivate,
    _insert_flags,
    _insert_result,
    _now,
    _peak_rows,
)
from asnmon.store.audit import AuditMixin
from asnmon.store.edit_reads import PEAK_COLUMNS, EditReads

# kinds of edit, as stored and as the audit trail's action
KINDS = ("reintegrate", "revert_integration", "exclude", "include", "sample", "link")


def _json(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


class Edits(EditReads, AuditMixin):
    """Manual integration, exclusion, batch-table edits, re-injection links; their reads."""

    # ---------------------------------------------------------------- plumbing

    def _unlocked(self, run_id: str) -> None:
        """``RunLocked`` for an approved run."""
        self.ensure_unlocked(run_id)

    def _event(self, con: duckdb.DuckDBPyConnection, **event: Any) -> int:
        """The audit event, in the change's own transaction: no change without its event."""
        return int(self.append_event(con, **event))

    def _person_write(self, actor: ActorLike, action: str, run_id: str) -> None:
        """Who may, and whether the run is open for changes: refused before any work.

        ``_edit_row`` asks the lock again inside the change's transaction, which a
        signature's transaction cannot interleave with.
        """
        require_may(actor, action)
        self._unlocked(run_id)

    def _edit_row(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        actor: ActorLike,
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
        self._unlocked(run_id)  # under the write lock: no approval slips in between
        why = reason + (f" ({comment})" if comment else "")
        event_id = self._event(
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
        actor: ActorLike,
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
            rows = _peak_rows(injection_id, peaks, roles, "manual", edit_id)
            if rows:
                con.executemany(
                    f"INSERT INTO peaks ({PEAK_COLUMNS}) VALUES ({','.join('?' * 17)})", rows
                )
        return edit_id

    def revert_integration(
        self, actor: ActorLike, run_id: str, injection_id: int, *, reason: str, comment: str = ""
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

    # ---------------------------------------------------------------- calibrators

    def set_excluded(
        self,
        actor: ActorLike,
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

    # ---------------------------------------------------------------- batch table

    def edit_sample(
        self,
        actor: ActorLike,
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
        actor: ActorLike,
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

    # ---------------------------------------------------------------- re-quantification

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
