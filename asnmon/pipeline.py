"""One file through every stage, and the run it belongs to.

``process_file`` is the pure part: read -> integrate -> quantify -> flag, for
one file against the run's current curve. ``RunIngestor`` holds what a run
remembers between files (its calibrators, its curve, its history) and is the
single writer that stores each outcome, refits the curve when calibrators
arrive and re-quantifies the run against every new version.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from asnmon.acquired import acquisition_key
from asnmon.assay import Assay
from asnmon.calibrate import fit_calibration
from asnmon.drift import Pace, injection_pace
from asnmon.errors import AsnmonError, ReadError
from asnmon.integrate import integrate_injection
from asnmon.mzml import DEFAULT_LIMITS, ReadLimits, file_sha256, read_injection
from asnmon.names import printable, to_db
from asnmon.qc import (
    CALIBRATION_CODES,
    RUN_LEVEL_CODES,
    RunEvaluation,
    error_flag,
    evaluate_calibration,
    evaluate_injection,
    evaluate_range,
    evaluate_run,
    history_point,
    is_context,
    is_drift_flag,
    qc_level,
    rt_points,
    rt_trend_at,
    rt_trend_ended_flag,
    rt_trend_flag,
    rt_trend_raised_at,
)
from asnmon.quantify import quantify, response
from asnmon.records import (
    Calibration,
    CalibrationPoint,
    Chromatogram,
    Flag,
    HistoryPoint,
    Injection,
    Outcome,
    Peak,
    Result,
    Sample,
    SampleType,
    Severity,
)
from asnmon.store import RunInfo, Store, StoredFile
from asnmon.traces import TraceCheck, check_traces, coverage_flags, search_window
from asnmon.westgard import RULES as WESTGARD_RULES
from asnmon.westgard import QcPoint, guides_for, westgard_flags
from asnmon.worklist import Worklist, reinjection_of, resolve_sample

log = logging.getLogger("asnmon.pipeline")

TRACE_MARGIN = 0.3  # min kept beyond the search window, so a reviewer sees the baseline


def _trace_windows(traces: Mapping[str, Chromatogram], assay: Assay) -> dict[str, Chromatogram]:
    """The part of each trace a reviewer needs: the RT window and some baseline."""
    lo = assay.retention.expected_rt - assay.retention.window - TRACE_MARGIN
    hi = assay.retention.expected_rt + assay.retention.window + TRACE_MARGIN
    out = {}
    for tid, tr in traces.items():
        keep = (tr.rt >= lo) & (tr.rt <= hi)
        out[tid] = Chromatogram(
            id=tr.id,
            index=tr.index,
            rt=tr.rt[keep],
            intensity=tr.intensity[keep],
            q1=tr.q1,
            q3=tr.q3,
            polarity=tr.polarity,
            kind=tr.kind,
        )
    return out


def process_file(
    path: Path,
    sha256: str,
    sample: Sample,
    assay: Assay,
    calibration: Calibration | None,
    history: tuple[HistoryPoint, ...] = (),
    limits: ReadLimits = DEFAULT_LIMITS,
) -> Outcome:
    """Read, integrate, quantify and flag one file. Unreadable files become data."""
    try:
        injection = read_injection(path, assay, limits)
    except ReadError as err:
        return Outcome(
            path=path,
            sha256=sha256,
            sample=sample,
            result=Result(status="no_result"),
            flags=(error_flag(err),),
            error=str(err),
        )
    check = check_traces(injection, assay)
    roles = {t.id: t.role.value for t in assay.transitions}
    kept = _trace_windows(injection.traces, assay)
    if check.failed:  # a quantifier's trace cannot be judged: no number, no "< LLOQ"
        return _untrusted(path, injection, sample, check.flags, roles, kept)
    usable = replace(
        injection,
        traces={k: v for k, v in injection.traces.items() if k not in check.unusable},
    )
    peaks = integrate_injection(usable, assay)
    uncovered = coverage_flags(check, usable, peaks, assay)
    if uncovered:
        return _untrusted(path, injection, sample, check.flags + uncovered, roles, kept)
    result = quantify(peaks, sample, calibration, assay)
    flags = [*check.flags, *evaluate_injection(peaks, result, sample, calibration, assay, history)]
    return Outcome(
        path=path,
        sha256=injection.sha256,
        sample=sample,
        result=result,
        flags=tuple(flags),
        meta=injection.meta,
        peaks=peaks,
        roles=roles,
        traces=kept,
        notes=injection.notes + _partial_notes(check, assay),
    )


def _untrusted(
    path: Path,
    injection: Injection,
    sample: Sample,
    flags: tuple[Flag, ...],
    roles: Mapping[str, str],
    traces: Mapping[str, Chromatogram],
) -> Outcome:
    """An injection whose quantifier trace cannot be judged: stored like an unreadable file.

    No peaks are kept, so a later re-quantification (a new curve version, a
    restart) can never turn it into a BLQ; the traces are kept for review.
    """
    fails = [f for f in flags if f.severity is Severity.FAIL]
    return Outcome(
        path=path,
        sha256=injection.sha256,
        sample=sample,
        result=Result(status="no_result"),
        flags=flags,
        meta=injection.meta,
        roles=roles,
        traces=traces,
        notes=injection.notes,
        error="; ".join(f"{f.code}: {f.message}" for f in fails),
    )


def _partial_notes(check: TraceCheck, assay: Assay) -> tuple[str, ...]:
    lo, hi = search_window(assay)
    return tuple(
        f"{tid}: acquired {a:.2f}-{b:.2f} min, inside the search window {lo:.2f}-{hi:.2f} min; "
        "integrated on what was acquired"
        for tid, (a, b) in check.partial.items()
    )


@dataclass(slots=True)
class _Entry:
    """What the run keeps of a stored injection to re-quantify it later."""

    injection_id: int
    sample: Sample
    peaks: Mapping[str, Peak | None]
    error: bool
    duplicate: bool = False  # a copy of another file: not a point of the curve or the trends


@dataclass(frozen=True, slots=True)
class IngestReport:
    path: Path
    stored: bool  # False: already in the database (same content), unreadable, or waiting
    injection_id: int | None = None
    outcome: Outcome | None = None
    version: int = 1
    message: str = ""
    waiting: bool = False  # its worklist row has a problem: ingest it again once fixed


@dataclass(slots=True)
class RunIngestor:
    """The single writer of one run: stores outcomes, keeps the curve current."""

    store: Store
    assay: Assay
    run: RunInfo
    worklist: Worklist | None = None
    entries: dict[int, _Entry] = field(default_factory=dict)
    history: list[HistoryPoint] = field(default_factory=list)
    calibration: Calibration | None = None
    versions: int = 0
    carry_calibration: bool = False  # start with the newest accepted curve of another run
    guide_runs: tuple[str, ...] = ()  # Westgard guide set; empty: every other run in the database
    guide_start: str | None = None  # ... or the QCs acquired between these dates (ISO)
    guide_end: str | None = None
    read_limits: ReadLimits = DEFAULT_LIMITS  # [read] settings: file size, inflation bounds
    _pending_cal: bool = False
    _calibration_id: int | None = None  # database id of self.calibration, once written
    _last_evaluation: RunEvaluation | None = None
    # The single writer's memory of what is stored: no query per file to find duplicates.
    # A file's current version by name, and which names currently hold each content.
    _files: dict[str, StoredFile] = field(default_factory=dict)
    _holders: dict[str, list[str]] = field(default_factory=dict)
    # The live IS_DRIFT forecast: acquisition times read once, the flag last written.
    _acquired: dict[int, datetime | None] = field(default_factory=dict)
    _drift_flag: tuple[int, Flag] | None = None
    _backfilled: set[int] = field(default_factory=set)
    _rt_trend: tuple[HistoryPoint, Flag] | None = None  # where RT_TREND was raised, last text

    def __post_init__(self) -> None:
        # A run named after a folder the OS gave in bytes that are not UTF-8: keyed in
        # the database by its escaped form (asnmon.names), which every query then uses.
        self.run = replace(
            self.run,
            run_id=to_db(self.run.run_id),
            name=to_db(self.run.name),
            folder=printable(self.run.folder) if self.run.folder is not None else None,
        )
        self.store.ensure_run(self.run)
        self.restore()
        has_carried = self.calibration is not None and self.calibration.version == 0
        if self.carry_calibration and not self.versions and not has_carried:
            self._carry_over()

    def _carry_over(self) -> None:
        """Quantify from the first sample with the last accepted curve, where the SOP allows."""
        earlier = self.store.latest_calibration(exclude_run=self.run.run_id)
        if earlier is None:
            return
        cal = replace(
            earlier,
            version=0,
            reason=f"carried over from {earlier.carried_over_from} ({earlier.reason})",
        )
        self._calibration_id = self.store.write_calibration(self.run.run_id, cal, [], {})
        self.calibration = cal

    def has_stored(self, sha256: str, path: Path | None = None) -> bool:
        """Whether this is the current content of ``path`` (without a path: of any file).

        Only the current version counts: a file rewritten A -> B -> A gets a new
        version A, because a file's result must always be its content now.
        """
        if path is None:
            return sha256 in self._holders
        current = self._files.get(Path(path).name)
        return current is not None and current.sha256 == sha256

    def _remember(self, name: str, stored: StoredFile) -> None:
        old = self._files.get(name)
        if old is not None:
            names = self._holders.get(old.sha256, [])
            if name in names:
                names.remove(name)
            if not names:
                self._holders.pop(old.sha256, None)
        self._files[name] = stored
        self._holders.setdefault(stored.sha256, []).append(name)

    def restore(self) -> None:
        """Rebuild the run from the database: a restart judges later files exactly alike."""
        stored = self.store.load_run(self.run.run_id)
        self._files, self._holders = {}, {}
        for name, current in self.store.run_files(self.run.run_id).items():
            self._remember(name, current)
        copies = {f.injection_id for f in self._files.values() if f.duplicate}
        self.versions = self.store.calibration_versions(self.run.run_id)
        self.entries = {
            e.injection_id: _Entry(
                e.injection_id, e.sample, e.peaks, e.error, e.injection_id in copies
            )
            for e in stored
        }
        points, ids = self.calibration_points()
        fitted = self.store.fitted_calibrators(self.run.run_id)
        # Calibrators committed but not yet fitted (a kill between the two): fit them next.
        self._pending_cal = bool(set(ids) - fitted)
        used = [p for p, i in zip(points, ids, strict=True) if i in fitted]
        if self.versions and len({p.nominal for p in used}) >= 2:
            # The fit is deterministic: the same points give the stored curve back.
            self.calibration = fit_calibration(used, self.assay.calibration, self.versions)
        elif self.versions == 0:  # only a carried-over curve (version 0), if any
            self.calibration = self.store.latest_calibration(run_id=self.run.run_id, accepted=False)
        self.history = []
        for e in stored:
            if e.injection_id in copies:
                continue
            result = (
                quantify(e.peaks, e.sample, self.calibration, self.assay)
                if not e.error
                else Result(status="no_result")
            )
            self.history.append(
                history_point(
                    e.injection_id,
                    self.acquisition_order(e.sample),
                    e.sample,
                    e.peaks,
                    result,
                    self.assay,
                    e.error,
                    self._linked(e.sample),
                )
            )
        self._last_evaluation = None

    def acquisition_order(self, sample: Sample) -> int:
        """The number the table shows: the worklist position (see ``HistoryPoint.order``)."""
        if sample.in_worklist and sample.position is not None:
            return sample.position
        if self.worklist is None or not self.history:
            return len(self.history) + 1
        return self.history[-1].order

    def _linked(self, sample: Sample) -> int | None:
        if sample.in_worklist:
            return None
        original = reinjection_of(sample.file, self.worklist)
        return original.position if original is not None else None

    # ------------------------------------------------------------ one file

    def ingest(self, path: Path, *, acquired_order: float | None = None) -> IngestReport:
        path = Path(path)
        try:
            sha = file_sha256(path, self.read_limits)
        except ReadError as err:  # a FIFO, a device, over a [read] limit: refused unread
            return self._refused(path, err)
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            return IngestReport(path, stored=False, message=f"cannot read the file: {exc}")
        if self.has_stored(sha, path):
            return IngestReport(path, stored=False, message="already ingested (same content)")
        problems = self.worklist.problems_for(path) if self.worklist is not None else ()
        if problems:
            message = (
                f"waiting for the worklist ({self.worklist.path if self.worklist else ''}) to be "
                "fixed: " + "; ".join(str(p) for p in problems)
            )
            log.warning("%s: %s", printable(path.name), message)
            return IngestReport(path, stored=False, message=message, waiting=True)
        sample = resolve_sample(path, self.worklist, self.assay)
        if self._pending_cal and sample.sample_type is not SampleType.CALIBRATOR:
            self.refit()
        outcome = process_file(
            path,
            sha,
            sample,
            self.assay,
            self.calibration,
            tuple(self.history),
            self.read_limits,
        )
        return self.record(outcome, acquired_order=acquired_order)

    def _refused(self, path: Path, err: ReadError) -> IngestReport:
        """A file that cannot even be hashed is a stored READ_ERROR, not a log line.

        Its content is unknown, so its identity is what the file system says of it
        (name, size, change time): the same refused file is stored once, and a
        changed one again.
        """
        try:
            st = path.stat()
            stamp = f"{st.st_mode}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "gone"
        sha = hashlib.sha256(f"READ_ERROR:{path}:{stamp}".encode()).hexdigest()
        if self.has_stored(sha, path):
            return IngestReport(path, stored=False, message="already recorded as unreadable")
        sample = resolve_sample(path, self.worklist, self.assay)
        outcome = Outcome(
            path=path,
            sha256=sha,
            sample=sample,
            result=Result(status="no_result"),
            flags=(error_flag(err),),
            error=str(err),
        )
        return self.record(outcome)

    def record(self, outcome: Outcome, *, acquired_order: float | None = None) -> IngestReport:
        """Store an outcome as the next version of its file; keep the run's memory current."""
        path = outcome.path
        sample = outcome.sample
        if acquired_order is None:
            try:
                acquired_order = path.stat().st_mtime
            except OSError:
                acquired_order = 0.0
        notes = list(outcome.notes)
        flags = list(outcome.flags)
        original = reinjection_of(path, self.worklist)
        if not sample.in_worklist:
            notes.append(
                "not in the worklist: "
                + (
                    f"named by the file-name convention ({sample.sample_type.value})"
                    if sample.sample_type is not SampleType.SAMPLE or self.worklist is None
                    else "processed as an unknown sample"
                )
                + (
                    f"; re-injection of {original.sample_id} (worklist position "
                    f"{original.position})"
                    if original is not None
                    else ""
                )
            )
        previous = self._files.get(path.name)
        version = 1
        supersedes = None
        if previous is not None:
            supersedes = previous.injection_id
            version = previous.version + 1
        if previous is not None and not previous.error:  # INCOMPLETE/unreadable: just completes
            flags.append(
                Flag(
                    code="REPLACED",
                    severity=Severity.WARNING,
                    message=f"{path.name} changed after it was ingested: this is version "
                    f"{version}; version {previous.version} is kept, marked superseded.",
                    action="Check why the file was rewritten (re-acquisition, re-conversion).",
                )
            )
        error = outcome.error is not None
        copy_of = self._copy_of(outcome)
        if copy_of is not None:
            flags.append(copy_of)
        if supersedes is not None:
            self.entries.pop(supersedes, None)
            self.history = [h for h in self.history if h.injection_id != supersedes]
        order = self.acquisition_order(sample)
        linked = original.position if original is not None else None
        here = history_point(
            0, order, sample, outcome.peaks, outcome.result, self.assay, error, linked
        )
        ctx = is_context([*self.history, here], self.assay)
        is_pct = ctx.pct[-1] if ctx.points and ctx.points[-1] is here else None
        outcome = replace(
            outcome,
            flags=tuple(flags),
            notes=tuple(notes),
            acquired_order=acquired_order,
            is_pct=is_pct,
        )
        position = sample.position if sample.in_worklist else None
        used = outcome.result.calibration_version
        known = (
            self._calibration_id if self.calibration and used == self.calibration.version else None
        )
        injection_id = self.store.write_injection(
            self.run.run_id,
            outcome,
            position=position,
            version=version,
            supersedes=supersedes,
            calibration_id=known,
        )
        duplicate = copy_of is not None
        self._remember(
            path.name,
            StoredFile(injection_id, version, error, outcome.sha256, str(path), duplicate),
        )
        self.entries[injection_id] = _Entry(injection_id, sample, outcome.peaks, error, duplicate)
        if not duplicate:
            self.history.append(
                history_point(
                    injection_id,
                    order,
                    sample,
                    outcome.peaks,
                    outcome.result,
                    self.assay,
                    error,
                    linked,
                )
            )
        if sample.sample_type is SampleType.CALIBRATOR and not error and not duplicate:
            self._pending_cal = True
        if sample.sample_type is SampleType.QC and not error:
            self.evaluate_westgard()
        self.evaluate()
        return IngestReport(
            path, stored=True, injection_id=injection_id, outcome=outcome, version=version
        )

    def _copy_of(self, outcome: Outcome) -> Flag | None:
        """DUPLICATE when another file of the run holds these very bytes now.

        Two acquisitions never give identical files (each has its own time
        stamps), so this is a copy, a re-export or a rename: kept as its own
        row and shown, but not counted twice in the curve or the run's trends.
        Unreadable files are left out: two empty files say nothing of a copy.
        """
        if outcome.error is not None:
            return None
        name = outcome.path.name
        others = [n for n in self._holders.get(outcome.sha256, ()) if n != name]
        if not others:
            return None
        first = self._files[others[0]]
        gone = not Path(first.path).exists()
        return Flag(
            code="DUPLICATE",
            severity=Severity.WARNING,
            message=f"{name} has the same content, byte for byte, as {others[0]}"
            + (", which is no longer in the folder (renamed?)" if gone else "")
            + ": a copy, not a new injection. Both are kept; this one is not used for the "
            "curve or the run's trends.",
            action="Check why the file exists under two names (copied, re-exported or "
            "renamed) and which name the worklist means.",
            details={"duplicate_of": others[0], "injection_id": first.injection_id},
        )

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
                    sample_id=s.sample_id, level=s.level, nominal=s.nominal, area_ratio=value
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
        points = [QcPoint(*row) for row in self.store.qc_values()]
        run_id = self.run.run_id
        guides = guides_for(
            points, run_id, runs=self.guide_runs, start=self.guide_start, end=self.guide_end
        ).values()
        self.store.replace_run_flags(
            run_id, {*WESTGARD_RULES, "GUIDE_SET_SMALL"}, westgard_flags(points, guides, run_id)
        )

    def evaluate(self) -> None:
        """Re-judge the run (verdict and run-level flags) after anything changed."""
        self.keep_is_current()
        self.keep_rt_current()
        upcoming = self.upcoming()
        qcs = [s for s in upcoming if s.sample_type is SampleType.QC]
        remaining = None
        if self.worklist is not None:  # QCs the worklist has still to inject, per level
            remaining = Counter(qc_level(s.level, s.nominal) for s in qcs)
        ev = evaluate_run(self.history, self.calibration, self.assay, remaining_qcs=remaining)
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

    def keep_rt_current(self) -> None:
        """RT_TREND's forecast kept current on the injection where it was raised.

        Remembered in memory only: after a restart an ongoing trend's flag keeps its
        last text until the trend is raised again.
        """
        pts = rt_points(self.history, self.assay)
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
                trend, self.assay, since=holder, last_order=self.history[-1].order, pace=self.pace()
            )
        if flag == last:
            return
        self.store.update_flag(self.run.run_id, holder.injection_id, flag)
        self._rt_trend = (holder, flag)

    def upcoming(self) -> list[Sample]:
        """Worklist rows not acquired yet, in worklist order (empty without a worklist)."""
        if self.worklist is None:
            return []
        done = {e.sample.file for e in self.entries.values()}
        rows = [s for s in self.worklist.samples if s.file not in done]
        return sorted(rows, key=lambda s: s.position if s.position is not None else 10**9)

    def pace(self) -> Pace | None:
        """The run's current injection interval, from the files' acquisition times."""
        missing = [h.injection_id for h in self.history if h.injection_id not in self._acquired]
        if missing:
            stored = self.store.acquisition_times(self.run.run_id)
            for i in missing:
                self._acquired[i] = _parse_time(stored.get(i))
        return injection_pace([self._acquired.get(h.injection_id) for h in self.history])

    def keep_is_current(self) -> None:
        """IS % for the first injections once there is a reference; the live drift forecast.

        The IS_DRIFT flag stays on the injection where the alarm was raised and is
        updated (``Store.update_flag``) at every injection while the drift lasts.
        """
        if not self.history:
            return
        ctx = is_context(self.history, self.assay)
        backfill = {
            p.injection_id: pct
            for p, pct in zip(ctx.points, ctx.settled_pct, strict=True)
            if pct is not None and p.injection_id not in self._backfilled
        }
        if backfill:
            self.store.backfill_is_pct(self.run.run_id, backfill)
            self._backfilled |= set(backfill)
        if not ctx.episodes:
            return
        holder = ctx.points[ctx.episodes[-1].alarm].injection_id
        flag = is_drift_flag(
            ctx,
            self.assay,
            last_order=self.history[-1].order,
            pace=self.pace(),
            upcoming=self.upcoming(),
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

    def flush(self) -> Calibration | None:
        """End of a batch, or the queue ran dry: fit any calibrators still waiting."""
        return self.refit() if self._pending_cal else None


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


def order_paths(paths: Iterable[Path], worklist: Worklist | None) -> list[Path]:
    """Acquisition order: each file's own start time stamp, then worklist position, then
    file time and name (``asnmon.acquired``); file-system time stamps never decide alone."""

    def position(p: Path) -> int | None:
        sample = worklist.lookup(p) if worklist else None
        return sample.position if sample is not None else None

    return sorted(paths, key=lambda p: acquisition_key(p, position(p)))


def ingest_paths(
    ingestor: RunIngestor,
    paths: Iterable[Path],
    on_report: Callable[[IngestReport], None] | None = None,
) -> list[IngestReport]:
    """Batch ingestion in acquisition order; one bad file never stops the rest."""
    reports = []
    for path in order_paths(paths, ingestor.worklist):
        try:
            report = ingestor.ingest(path)
        except AsnmonError as err:  # e.g. StoreError: report it, keep going
            log.error("%s: %s", path, err)
            report = IngestReport(path, stored=False, message=str(err))
        reports.append(report)
        if on_report:
            on_report(report)
    ingestor.flush()
    return reports
