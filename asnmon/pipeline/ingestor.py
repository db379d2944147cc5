"""The run a file belongs to: its single writer, which stores each outcome.

``RunIngestor`` holds what a run remembers between files (its calibrators, its
curve, its history), stores each outcome as the next version of its file, and
re-judges the run (``asnmon.pipeline.run_qc``) after every one.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from asnmon.assay import Assay
from asnmon.calibrate import fit_calibration
from asnmon.errors import ReadError
from asnmon.fileread import read_regular
from asnmon.mzml import DEFAULT_LIMITS, ReadLimits
from asnmon.names import printable, to_db
from asnmon.pipeline.process import process_file
from asnmon.pipeline.run_qc import RunQC, _Entry, _parse_time, _Upcoming
from asnmon.qc import (
    RunEvaluation,
    error_flag,
    history_point,
    is_context,
)
from asnmon.quantify import quantify
from asnmon.records import (
    Calibration,
    Flag,
    HistoryPoint,
    Outcome,
    Result,
    Sample,
    SampleType,
    Severity,
)
from asnmon.requantify import absorb_edits, apply_edits, edit_count, run_lock
from asnmon.store import RunInfo, Store, StoredFile
from asnmon.westgard import LevelMemo
from asnmon.worklist import Worklist, reinjection_of, resolve_sample

log = logging.getLogger("asnmon.pipeline")
P = ParamSpec("P")
R = TypeVar("R")


def _one_writer(
    method: Callable[Concatenate[RunIngestor, P], R],
) -> Callable[Concatenate[RunIngestor, P], R]:
    """Under the run's lock, after absorbing any reviewer's edit (``asnmon.requantify``)."""

    @functools.wraps(method)
    def wrapper(self: RunIngestor, *args: P.args, **kwargs: P.kwargs) -> R:
        with run_lock(self.store.path, self.run.run_id):
            if self._stale:  # a write failed and memory could not be rebuilt then
                self.forget_uncommitted()
            absorb_edits(self)
            return method(self, *args, **kwargs)

    return wrapper


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
class RunIngestor(RunQC):
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
    apply_pending: bool = True  # finish reviewer's edits stored before a crash, on start
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
    _upcoming: _Upcoming | None = None  # the worklist rows still to come (RunQC.upcoming)
    _westgard_memo: LevelMemo = field(default_factory=dict)  # RunQC.evaluate_westgard
    _edit_seq: int = 0  # the newest reviewer's edit this memory includes
    _stale: bool = False  # memory may be ahead of the database: rebuild before the next file

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
        self._edit_seq = edit_count(self.store.path, self.run.run_id)
        if self.apply_pending and self.store.pending_edits(self.run.run_id):
            with run_lock(self.store.path, self.run.run_id):
                apply_edits(self)  # an edit stored, then the process died: finish it

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
        excluded = self.store.exclusions(self.run.run_id)
        self.entries = {
            e.injection_id: _Entry(
                e.injection_id,
                e.sample,
                e.peaks,
                e.error,
                e.injection_id in copies,
                excluded.get(e.injection_id),
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

    def forget_uncommitted(self) -> None:
        """After a failed write (a group commit rolled back): memory as the database has it.

        What the run remembered of files, curves and flags written in the failed
        transaction is gone with it; the files are ingested again from scratch.
        """
        self._stale = True
        self._calibration_id = None  # looked up by version again (the curve may be gone)
        self._acquired = {}
        self._drift_flag = None
        self._backfilled = set()
        self._rt_trend = None
        self.restore()
        self._stale = False

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

    @_one_writer
    def ingest(self, path: Path, *, acquired_order: float | None = None) -> IngestReport:
        path = Path(path)
        try:  # read once: hashed here, parsed by process_file (the hash is of what is parsed)
            data = read_regular(path, self.read_limits, wrap=False)
        except ReadError as err:  # a FIFO, a device, over a [read] limit: refused unread
            return self._refused(path, err)
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            return IngestReport(path, stored=False, message=f"cannot read the file: {exc}")
        sha = hashlib.sha256(data).hexdigest()
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
            data=data,
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

    @_one_writer
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
        if not sample.in_worklist and original is not None:
            notes.append(
                f"not in the worklist: re-injection of {original.sample_id} (worklist "
                f"position {original.position}), judged as it ({sample.sample_type.value}"
                + (f" {sample.level}" if sample.level else "")
                + ")"
            )
        elif not sample.in_worklist:
            notes.append(
                "not in the worklist: "
                + (
                    f"named by the file-name convention ({sample.sample_type.value})"
                    if sample.sample_type is not SampleType.SAMPLE or self.worklist is None
                    else "processed as an unknown sample"
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
            self.entries_changed(removed=self.entries.pop(supersedes, None))
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
        started = outcome.meta.started_at  # the live forecast's pace: no query per file
        self._acquired[injection_id] = _parse_time(printable(started) if started else None)
        self._remember(
            path.name,
            StoredFile(injection_id, version, error, outcome.sha256, str(path), duplicate),
        )
        entry = _Entry(injection_id, sample, outcome.peaks, error, duplicate)
        self.entries[injection_id] = entry
        self.entries_changed(added=entry)
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

    @_one_writer
    def flush(self) -> Calibration | None:
        """End of a batch, or the queue ran dry: fit any calibrators still waiting."""
        return self.refit() if self._pending_cal else None
