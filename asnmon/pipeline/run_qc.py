"""What the run judges as a whole after each file: the curve, Westgard, IS and RT trends.

A mixin of ``RunIngestor`` (``asnmon.pipeline.ingestor``): the single writer's
memory (entries, history, curve) is kept there; these methods re-judge it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from asnmon.assay import Assay
from asnmon.calibrate import fit_calibration
from asnmon.forecast import Pace, injection_pace, pace_times
from asnmon.qc import (
    CALIBRATION_CODES,
    RUN_LEVEL_CODES,
    RunEvaluation,
    evaluate_calibration,
    evaluate_range,
    evaluate_run,
    is_context,
    is_drift_flag,
    qc_level,
    rt_points,
    rt_trend_at,
    rt_trend_ended_flag,
    rt_trend_flag,
    rt_trend_raised_at,
)
from asnmon.qc._history import MEMO_LOCK, history_index
from asnmon.quantify import quantify, response
from asnmon.records import (
    Calibration,
    CalibrationPoint,
    Flag,
    HistoryPoint,
    Peak,
    Result,
    Sample,
    SampleType,
    Severity,
)
from asnmon.store import RunInfo, Store
from asnmon.westgard import RULES as WESTGARD_RULES
from asnmon.westgard import LevelMemo, run_westgard_flags
from asnmon.worklist import Worklist


@dataclass(slots=True)
class _Entry:
    """What the run keeps of a stored injection to re-quantify it later."""

    injection_id: int
    sample: Sample
    peaks: Mapping[str, Peak | None]
    error: bool
    duplicate: bool = False  # a copy of another file: not a point of the curve or the trends
    excluded: str | None = None  # a reviewer excluded this calibrator: why, and who


@dataclass(slots=True)
class _Upcoming:
    """The worklist rows not acquired yet, kept as files arrive.

    Each file used to filter and re-sort every worklist row and count its QCs
    again (O(rows) per file). Built for one worklist object and one ``entries``
    dict (a restore makes a new one, a worklist edit a new worklist: either
    rebuilds it); ``RunQC.entries_changed`` keeps it in step with ``entries``.
    Invariant: ``rows`` holds, in ``worklist.in_order`` order, exactly the rows
    whose file no entry has -- the old filter of the (stably) sorted rows.
    """

    worklist: Worklist
    entries: dict[int, _Entry]
    done: Counter[str]  # files of the entries (a count: two names can share a key)
    rows: dict[int, Sample]  # index into worklist.in_order -> row, in that order
    qc_levels: dict[int, str]  # the QCs among rows -> the level they are counted under
    by_file: dict[str, list[int]]  # file -> its indexes into worklist.in_order
    # Per level: its QCs' indexes as built, how many are left, and where the first left is.
    qc_rows: dict[str, list[int]]
    qc_left: dict[str, int]
    qc_first: dict[str, int]

    @classmethod
    def build(cls, worklist: Worklist, entries: dict[int, _Entry]) -> _Upcoming:
        done = Counter(e.sample.file for e in entries.values())
        by_file: dict[str, list[int]] = {}
        rows: dict[int, Sample] = {}
        qc_levels: dict[int, str] = {}
        qc_rows: dict[str, list[int]] = {}
        for i, s in enumerate(worklist.in_order):
            by_file.setdefault(s.file, []).append(i)
            if s.file in done:
                continue
            rows[i] = s
            if s.sample_type is SampleType.QC:
                qc_levels[i] = level = qc_level(s.level, s.nominal)
                qc_rows.setdefault(level, []).append(i)
        left = {level: len(i) for level, i in qc_rows.items()}
        first = dict.fromkeys(qc_rows, 0)
        return cls(worklist, entries, done, rows, qc_levels, by_file, qc_rows, left, first)

    def take(self, i: int) -> None:
        """Row ``i`` was acquired (its file now has an entry)."""
        self.rows.pop(i, None)
        level = self.qc_levels.pop(i, None)
        if level is None:
            return
        self.qc_left[level] -= 1
        kept, k = self.qc_rows[level], self.qc_first[level]
        while k < len(kept) and kept[k] not in self.qc_levels:
            k += 1
        self.qc_first[level] = k

    def remaining(self) -> Counter[str]:
        """QCs still to come per level, the levels in the order they come (as a count of
        the rows still to come, in order, makes them)."""
        firsts = sorted(
            (self.qc_rows[v][self.qc_first[v]], v) for v, n in self.qc_left.items() if n
        )
        return Counter({level: self.qc_left[level] for _, level in firsts})


class RunQC:
    """Run-level re-judging for ``RunIngestor``; needs its store, assay, run and memory."""

    store: Store
    assay: Assay
    run: RunInfo
    worklist: Worklist | None
    entries: dict[int, _Entry]
    history: list[HistoryPoint]
    calibration: Calibration | None
    versions: int
    guide_runs: tuple[str, ...]
    guide_start: str | None
    guide_end: str | None
    _pending_cal: bool
    _calibration_id: int | None
    _last_evaluation: RunEvaluation | None
    _acquired: dict[int, datetime | None]
    _drift_flag: tuple[int, Flag] | None
    _backfilled: set[int]
    _rt_trend: tuple[HistoryPoint, Flag] | None
    _upcoming: _Upcoming | None
    _westgard_memo: LevelMemo  # each QC level's Westgard flags, by the rows judged

    # ------------------------------------------------------------ the curve

    def calibration_points(self) -> tuple[list[CalibrationPoint], list[int]]:
        points: list[CalibrationPoint] = []
        ids: list[int] = []
        for entry in self.entries.values():
            s = entry.sample
            if s.sample_type is not SampleType.CALIBRATOR or entry.error or s.nominal is None:
                continue
            if entry.duplicate:
                continue
            value = response(entry.peaks, self.assay)  # area ratio, or area without an IS
            if value is None:
                continue
            points.append(
                CalibrationPoint(
                    sample_id=s.sample_id,
                    level=s.level,
                    nominal=s.nominal,
                    area_ratio=value,
                    excluded=entry.excluded is not None,
                    reason=entry.excluded,
                )
            )
            ids.append(entry.injection_id)
        return points, ids

    def calibration_block_open(self) -> bool:
        """True while the worklist's next injection is still a calibrator of this block.

        A live monitor flushes whenever its queue runs dry, i.e. between every two
        calibrators; fitting CAL01-CAL04 of an 8-level block would publish a rejected
        curve (CAL_FAIL, RUN_FAIL) for the minutes the block takes, and a bracketing
        block at the end would make one curve version per calibrator. Once the instrument
        has moved past the block (a later row arrived, even with a calibrator missing),
        the curve is fitted from what came.
        """
        if self.worklist is None:
            return False
        done = {e.sample.file for e in self.entries.values()}
        positions = [
            e.sample.position
            for e in self.entries.values()
            if e.sample.in_worklist and e.sample.position is not None
        ]
        if not positions:
            return False
        last = max(positions)
        upcoming = [
            s
            for s in self.worklist.samples
            if s.position is not None and s.position > last and s.file not in done
        ]
        if not upcoming:
            return False
        following = min(upcoming, key=lambda s: s.position or 0)
        return following.sample_type is SampleType.CALIBRATOR

    def refit(self) -> Calibration | None:
        """Fit a new curve version from every calibrator so far; re-quantify the run."""
        points, ids = self.calibration_points()
        if self.calibration_block_open():
            self._pending_cal = True  # the rest of the block is on its way: fit it whole
            return None
        self._pending_cal = False
        if len({p.nominal for p in points}) < 2:
            return None
        self.versions += 1
        cal = fit_calibration(points, self.assay.calibration, self.versions)
        self.calibration = cal
        requantified: dict[int, tuple[Result, list[Flag]]] = {}
        for entry in self.entries.values():
            if entry.error or entry.sample.sample_type in (SampleType.DOUBLE_BLANK,):
                continue
            result = quantify(entry.peaks, entry.sample, cal, self.assay)
            requantified[entry.injection_id] = (
                result,
                evaluate_range(result, entry.sample, cal, self.assay),
            )
        self._calibration_id = self.store.write_calibration(self.run.run_id, cal, ids, requantified)
        self.store.replace_run_flags(
            self.run.run_id, CALIBRATION_CODES, evaluate_calibration(cal, report_exclusions=True)
        )
        self.history = [_requantified(h, requantified.get(h.injection_id)) for h in self.history]
        if any(e.sample.sample_type is SampleType.QC for e in self.entries.values()):
            self.evaluate_westgard()
        self.evaluate()
        return cal

    def evaluate_westgard(self) -> None:
        """Westgard rules on this run's QCs against the guide set (other runs by default)."""
        run_id = self.run.run_id
        flags = run_westgard_flags(
            self.store.qc_values(),
            run_id,
            runs=self.guide_runs,
            start=self.guide_start,
            end=self.guide_end,
            memo=self._westgard_memo,
        )
        self.store.replace_run_flags(run_id, {*WESTGARD_RULES, "GUIDE_SET_SMALL"}, flags)

    def evaluate(self) -> None:
        """Re-judge the run (verdict and run-level flags) after anything changed."""
        history = tuple(self.history)  # one sequence for every rule: its index is checked once
        self.keep_is_current(history)
        self.keep_rt_current(history)
        remaining = None
        left = self._upcoming_rows()
        if left is not None:  # QCs the worklist has still to inject, per level, in its order
            remaining = left.remaining()
        ev = evaluate_run(history, self.calibration, self.assay, remaining_qcs=remaining)
        if ev == self._last_evaluation:  # nothing moved: spare the database a write
            return
        last = self._last_evaluation
        flags_moved = last is None or ev.flags != last.flags
        self.store.set_verdict(
            self.run.run_id,
            ev.verdict,
            "; ".join(ev.reasons),
            replace_codes=RUN_LEVEL_CODES if flags_moved else None,
            flags=ev.flags,
        )
        self._last_evaluation = ev

    def keep_rt_current(self, history: Sequence[HistoryPoint] | None = None) -> None:
        """RT_TREND's forecast kept current on the injection where it was raised.

        Remembered in memory only: after a restart an ongoing trend's flag keeps its
        last text until the trend is raised again. ``history``: ``self.history``, as is.
        """
        history = self.history if history is None else history
        pts = rt_points(history, self.assay)
        if not pts:
            return
        j = len(pts) - 1
        if rt_trend_raised_at(pts, j, self.assay):  # evaluate_injection just raised it
            self._rt_trend = None
            holder = pts[j]
        elif self._rt_trend is not None:
            holder = self._rt_trend[0]
        else:
            return
        trend = rt_trend_at(pts, j, self.assay)
        last = self._rt_trend[1] if self._rt_trend is not None else None
        if trend is None:
            if last is None or "ended_at" in last.details:
                return
            flag = rt_trend_ended_flag(holder, pts[j], last)
        else:
            flag = rt_trend_flag(
                trend,
                self.assay,
                since=holder,
                last_order=history[-1].order,
                pace=self.pace(history),
            )
        if flag == last:
            return
        self.store.update_flag(self.run.run_id, holder.injection_id, flag)
        self._rt_trend = (holder, flag)

    def upcoming(self) -> list[Sample]:
        """Worklist rows not acquired yet, in worklist order (empty without a worklist)."""
        left = self._upcoming_rows()
        return [] if left is None else list(left.rows.values())

    def _upcoming_rows(self) -> _Upcoming | None:
        if self.worklist is None:
            return None
        left = self._upcoming
        if left is None or left.worklist is not self.worklist or left.entries is not self.entries:
            left = self._upcoming = _Upcoming.build(self.worklist, self.entries)
        return left

    def entries_changed(
        self, *, added: _Entry | None = None, removed: _Entry | None = None
    ) -> None:
        """Keep the rows still to come in step with an entry put into or taken from
        ``entries`` (call it right after; any other change to entries: make a new dict)."""
        left = self._upcoming
        if left is None or left.entries is not self.entries:
            return
        if added is not None:
            f = added.sample.file
            left.done[f] += 1
            if left.done[f] == 1:
                for i in left.by_file.get(f, ()):
                    left.take(i)
        if removed is not None:
            f = removed.sample.file
            left.done[f] -= 1
            if left.done[f] <= 0:
                self._upcoming = None  # its rows come back, in their place: built again

    def pace(self, history: Sequence[HistoryPoint] | None = None) -> Pace | None:
        """The run's current injection interval, from the files' acquisition times.

        Times are known for every file this process stored; only the others (a
        restart's) are read, once. Which points were found known is kept with the
        history's index, for this very dict (it only grows; a rebuild is a new one).
        """
        history = self.history if history is None else history
        index, m, rest = history_index(history)
        with MEMO_LOCK:
            seen = index.memo.get("pace")
            known = seen[1] if isinstance(seen, tuple) and seen[0] is self._acquired else 0
        unseen = [*index.raw[min(known, m) : m], *rest]
        missing = [h.injection_id for h in unseen if h.injection_id not in self._acquired]
        if missing:
            stored = self.store.acquisition_times(self.run.run_id)
            for i in missing:
                self._acquired[i] = _parse_time(stored.get(i))
        with MEMO_LOCK:
            index.memo["pace"] = (self._acquired, max(known, m))
        latest_first = (self._acquired.get(h.injection_id) for h in reversed(history))
        return injection_pace(pace_times(latest_first))

    def keep_is_current(self, history: Sequence[HistoryPoint] | None = None) -> None:
        """IS % for the first injections once there is a reference; the live drift forecast.

        The IS_DRIFT flag stays on the injection where the alarm was raised and is
        updated (``Store.update_flag``) at every injection while the drift lasts.
        ``history``: ``self.history``, as is.
        """
        history = self.history if history is None else history
        if not history:
            return
        ctx = is_context(history, self.assay)
        backfill = {  # only injections judged before any reference can have a settled %
            p.injection_id: pct
            for j in ctx.no_reference
            if (pct := ctx.settled_pct[j]) is not None
            and (p := ctx.points[j]).injection_id not in self._backfilled
        }
        if backfill:
            self.store.backfill_is_pct(self.run.run_id, backfill)
            self._backfilled |= set(backfill)
        if not ctx.episodes:
            return
        holder = ctx.points[ctx.episodes[-1].alarm].injection_id
        ended = ctx.episodes[-1].end is not None  # reads neither pace nor worklist
        flag = is_drift_flag(
            ctx,
            self.assay,
            last_order=history[-1].order,
            pace=None if ended else self.pace(history),
            upcoming=() if ended else self.upcoming(),
        )
        if flag is None:
            return
        prev = self._drift_flag
        if (
            prev is not None
            and prev[0] == holder
            and prev[1].severity is Severity.FAIL
            and flag.severity is not Severity.FAIL
            and ctx.episodes[-1].end is None
        ):  # once escalated, an ongoing drift stays a fail: no alarm that comes and goes
            flag = replace(
                flag, severity=Severity.FAIL, details={**flag.details, "escalated": True}
            )
        if prev == (holder, flag):
            return
        self.store.update_flag(self.run.run_id, holder, flag)
        self._drift_flag = (holder, flag)


def _parse_time(stamp: str | None) -> datetime | None:
    """An ISO 8601 acquisition time as the file stated it; None if absent or unreadable."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _requantified(h: HistoryPoint, new: tuple[Result, list[Flag]] | None) -> HistoryPoint:
    if new is None:
        return h
    r = new[0]
    return replace(
        h,
        area_ratio=r.area_ratio,
        conc_vial=r.conc_vial,
        accuracy_pct=r.accuracy_pct,
        status=r.status,
    )
