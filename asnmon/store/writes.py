"""Writes: every one a single transaction, so a kill leaves all of it or none."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from asnmon.errors import StoreError
from asnmon.names import printable, to_db
from asnmon.records import Calibration, Flag, Outcome, Result
from asnmon.store._sql import (
    CHANGE_COLUMNS,
    FLAG_COLUMNS,
    INJECTION_COLUMNS,
    PEAK_COLUMNS,
    RESULT_COLUMNS,
    _blob,
    _flag_rows,
    _insert_rows,
    _now,
    _peak_rows,
    _result_row,
    _shown,
    _text,
)
from asnmon.store.base import StoreBase
from asnmon.store.group import GROUP_IDS
from asnmon.store.rows import QUANT_CODES, RunInfo


class Writes(StoreBase):
    """Injections, curves, flags, verdicts, acknowledgements, monitor status."""

    def ensure_run(self, run: RunInfo) -> str:
        with self._tx(flush=False) as con:
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
                self._held_change(run.run_id, "run", None)
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
        group = self._own_group()
        # Only an update of an earlier version reads or changes rows held back.
        with self._tx(flush=supersedes is not None) as con:
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
            now = _now()
            held = self._pending
            row = [
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
                now,
                _text(outcome.meta.run_id),
                _text(outcome.meta.instrument),
                _text(outcome.meta.polarity),
                _text(outcome.error),
                "\n".join(printable(n) for n in outcome.notes) or None,
                outcome.is_pct,
            ]
            if group is not None and group.files != 1:  # ids for the group's files at once
                block = min(group.files or GROUP_IDS, GROUP_IDS)
                injection_id = held.next_id(con, "seq_injection", block)
                held.add(INJECTION_COLUMNS, [[injection_id, *row]])
            else:  # one file: the INSERT draws its id itself, one statement instead of two
                drawn = con.execute(
                    f"INSERT INTO {INJECTION_COLUMNS} VALUES (nextval('seq_injection'), "
                    + ",".join("?" * len(row))
                    + ") RETURNING injection_id",
                    row,
                ).fetchone()
                if drawn is None:
                    raise StoreError("the database returned no id for the new injection")
                injection_id = int(drawn[0])
            cal_id = calibration_id
            if cal_id is None and outcome.result.calibration_version is not None:
                found = con.execute(
                    "SELECT max(calibration_id) FROM calibrations WHERE run_id = ? AND version = ?",
                    [run_id, outcome.result.calibration_version],
                ).fetchone()
                cal_id = found[0] if found else None
            # Rows held back: written with this transaction's commit, or in a group
            # commit with the other injections' (one INSERT per table).
            held.add(PEAK_COLUMNS, _peak_rows(injection_id, outcome.peaks, outcome.roles))
            held.add(
                "traces",
                [
                    [injection_id, tid, _blob(tr.rt), _blob(tr.intensity)]
                    for tid, tr in outcome.traces.items()
                ],
            )
            held.add(RESULT_COLUMNS, [_result_row(injection_id, outcome.result, cal_id, now)])
            held.add(FLAG_COLUMNS, _flag_rows(run_id, injection_id, outcome.flags, now))
            changes = [[now, run_id, "superseded", supersedes]] if supersedes is not None else []
            held.add(CHANGE_COLUMNS, [*changes, [now, run_id, "injection", injection_id]])
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
            # The run re-quantified: a few statements for all of it, not four per injection
            # (~1 ms each). Rows go in the order a per-injection loop gave them, so the ids
            # are the same; each injection's UPDATEs touch only its own earlier rows.
            ids = list(requantified)
            now = _now()
            if ids:
                con.execute(
                    "UPDATE results SET current = FALSE WHERE current "
                    "AND injection_id IN (SELECT unnest($1::BIGINT[]))",
                    [ids],
                )
                codes = sorted(QUANT_CODES)
                con.execute(
                    "UPDATE flags SET active = FALSE, deactivated_at = $1 WHERE active AND "
                    "injection_id IN (SELECT unnest($2::BIGINT[])) AND code IN (SELECT unnest($3))",
                    [now, ids, codes],
                )
            _insert_rows(
                con,
                RESULT_COLUMNS,
                [_result_row(i, result, cal_id, now) for i, (result, _) in requantified.items()],
            )
            flag_rows = [
                row
                for i, (_, flags) in requantified.items()
                for row in _flag_rows(run_id, i, [f for f in flags if f.code in QUANT_CODES], now)
            ]
            _insert_rows(con, FLAG_COLUMNS, [*flag_rows, *_flag_rows(run_id, None, run_flags, now)])
            self._held_change(run_id, "calibration", None)
        return cal_id

    def replace_run_flags(
        self,
        run_id: str,
        codes: Iterable[str],
        flags: Sequence[Flag],
        *,
        injection_id: int | None = None,
    ) -> None:
        """Deactivate the given codes (run-level or on one injection), insert the new set.

        Both held back (``Pending.deactivate``): a group pays for them at its commit,
        in one UPDATE and one INSERT for all its replacements.
        """
        with self._tx(flush=False):
            now = _now()
            self._pending.deactivate(run_id, injection_id, sorted(set(codes)), now)
            self._pending.add(FLAG_COLUMNS, _flag_rows(run_id, injection_id, flags, now))
            self._held_change(run_id, "flags", injection_id)

    def set_verdict(
        self,
        run_id: str,
        verdict: str,
        reason: str,
        *,
        replace_codes: Iterable[str] | None = None,
        flags: Sequence[Flag] = (),
    ) -> None:
        """The run's verdict, and (with ``replace_codes``) its run-level flags, in one write.

        Held back like the flags (``Pending.verdict``): a group writes its newest verdict
        once, at its commit.
        """
        with self._tx(flush=False):
            self._pending.verdict(run_id, verdict, reason)
            if replace_codes is not None:
                now = _now()
                self._pending.deactivate(run_id, None, sorted(set(replace_codes)), now)
                self._pending.add(FLAG_COLUMNS, _flag_rows(run_id, None, flags, now))
            self._held_change(run_id, "verdict", None)

    def set_status(self, values: Mapping[str, object]) -> None:
        """Monitor health (watcher state, queue, last error) for the dashboard."""
        with self._tx() as con:
            now = _now()
            for key, value in values.items():
                con.execute(
                    "INSERT OR REPLACE INTO monitor_status VALUES (?,?,?)",
                    [key, json.dumps(_shown(value), default=str), now],
                )
            self._held_change(None, "status", None)

    # ---- live flag updates (IS_DRIFT forecast, IS % backfill)

    def update_flag(self, run_id: str, injection_id: int, flag: Flag) -> None:
        """Keep one injection's flag of ``flag.code`` current, its history kept.

        Same severity: the active row keeps its id (its acknowledgements, and no
        second alert) and takes the new text; the text it had is kept as an
        inactive row. A new severity (escalation) deactivates the row and inserts
        a new one, which needs its own acknowledgement and raises its own alert.

        Rows held back (``Pending``) are found and changed where they are, and the
        rows it adds are held after them, so each keeps the id it would have had
        had every held row been written first.
        """
        with self._tx(flush=False) as con:
            now = _now()
            held = self._pending
            text = [
                flag.message,
                flag.action,
                flag.value,
                flag.limit,
                flag.source,
                json.dumps(dict(flag.details), default=str),
                now,
            ]
            i = held.newest_flag(run_id, injection_id, flag.code)
            same = False
            if i is not None:  # the active row is held: copied and changed in memory
                row = held.flag_row(i)
                same = row[3] == flag.severity.value
                if same:
                    held.add_replaced(row, now)
                    row[4:11] = text
            elif not held.replaced(run_id, injection_id, flag.code):  # none held: stored?
                found = con.execute(
                    "SELECT flag_id, run_id, injection_id, code, severity, message, action, "
                    "value, limit_value, source, details, created_at FROM flags WHERE run_id = ? "
                    "AND injection_id = ? AND code = ? AND active ORDER BY flag_id DESC LIMIT 1",
                    [run_id, injection_id, flag.code],
                ).fetchone()
                same = found is not None and found[4] == flag.severity.value
                if found is not None and same:
                    held.add_replaced(found[1:], now)
                    con.execute(
                        "UPDATE flags SET message = ?, action = ?, value = ?, limit_value = ?, "
                        "source = ?, details = ?, created_at = ? WHERE flag_id = ?",
                        [*text, found[0]],
                    )
            if not same:
                held.deactivate(run_id, injection_id, [flag.code], now)
                held.add(FLAG_COLUMNS, _flag_rows(run_id, injection_id, [flag], now))
            self._held_change(run_id, "flags", injection_id)

    def backfill_is_pct(self, run_id: str, values: Mapping[int, float]) -> None:
        """IS % for injections that had no reference when they arrived (never overwrites)."""
        if not values:
            return
        with self._tx(flush=(INJECTION_COLUMNS,)) as con:
            for injection_id, pct in values.items():
                con.execute(
                    "UPDATE injections SET is_pct = ? WHERE run_id = ? AND injection_id = ? "
                    "AND is_pct IS NULL",
                    [pct, run_id, injection_id],
                )
            self._held_change(run_id, "run", None)  # earlier points moved: the plots redraw
