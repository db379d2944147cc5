"""The runs the monitor's worker has open: ingestors, worklists, files held back.

Each folder that holds injection files is a run (the watched folder, or each
sub-folder with ``recursive``). Its worklist is ``settings.worklist`` or a
``worklist*.csv`` in the folder, re-read when it changes.

A worklist that cannot be read at all, or a row with a bad cell, is a
WORKLIST PROBLEM, shown and alerted, and the files it concerns (the whole run,
or the bad rows' files) are **held**, not stored under a guessed identity: a
calibrator taken for a sample (or the reverse) would change the curve and
every result of the run. Held files are ingested, in the order they came,
as soon as the worklist file changes and their rows read cleanly (or it is
removed, which means "name by the file-name convention").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from asnmon.assay import Assay
from asnmon.errors import WorklistError
from asnmon.names import printable
from asnmon.pipeline import RunIngestor
from asnmon.records import Calibration
from asnmon.settings import Settings
from asnmon.store import RunInfo, Store
from asnmon.worklist import Worklist, load_worklist, reinjection_of

log = logging.getLogger("asnmon.runbook")

OPEN_RUNS = 4  # runs kept in memory; an older one is rebuilt from the database if it comes back

Stamp = tuple[int, int] | None  # (mtime_ns, size) of a worklist file; None: no file


@dataclass(slots=True)
class _Worklist:
    path: Path | None
    stamp: Stamp
    worklist: Worklist | None
    problem: str | None
    held: list[Path] = field(default_factory=list)


class RunBook:
    """Single-threaded (the worker's). ``announce(code, message)`` tells people."""

    def __init__(
        self,
        store: Store,
        assay: Assay,
        settings: Settings,
        *,
        root: Callable[[], Path],
        converted: Path | None,
        announce: Callable[[str, str], None],
        out: Callable[[str], None],
    ) -> None:
        self.store = store
        self.assay = assay
        self.settings = settings
        self._root = root
        self._converted = converted
        self._announce = announce
        self._out = out
        self._ingestors: dict[str, RunIngestor] = {}
        self._worklists: dict[Path, _Worklist] = {}

    # ------------------------------------------------------------ where a file belongs

    def run_dir(self, path: Path) -> Path:
        """The run folder of a file; a converted file belongs to its raw file's folder."""
        root = self._root()
        parent = path.parent
        if self._converted is not None and parent.is_relative_to(self._converted):
            parent = root / parent.relative_to(self._converted)
        try:
            parent.relative_to(root)
        except ValueError:  # converted files live outside the watched folder
            return root
        return parent

    def run_id(self, run_dir: Path) -> str:
        root = self._root()
        return run_dir.name if run_dir == root else str(run_dir.relative_to(root.parent))

    # ------------------------------------------------------------ worklists

    def _worklist_path(self, run_dir: Path) -> Path | None:
        if self.settings.worklist:
            return Path(self.settings.worklist)
        found = sorted(run_dir.glob("worklist*.csv"))
        return found[0] if found else None

    def worklist(self, run_dir: Path) -> _Worklist:
        """The run's worklist, re-read when its file changed; a problem is said once."""
        path = self._worklist_path(run_dir)
        try:
            st = path.stat() if path is not None else None
            stamp: Stamp = (st.st_mtime_ns, st.st_size) if st is not None else None
        except OSError:
            path, stamp = None, None
        cached = self._worklists.get(run_dir)
        if cached is not None and cached.path == path and cached.stamp == stamp:
            return cached
        worklist: Worklist | None = None
        problem: str | None = None  # the whole worklist cannot be used
        if path is not None:
            try:
                worklist = load_worklist(path)
            # The parser is a boundary: whatever a malformed cell raises (a WorklistError,
            # or a ValueError the parser did not foresee), it is a worklist problem.
            except Exception as exc:  # documented boundary
                log.warning("worklist %s cannot be used", path, exc_info=True)
                problem = str(exc) if isinstance(exc, WorklistError) else f"{exc!r}"
        held = cached.held if cached is not None else []
        entry = _Worklist(path, stamp, worklist, problem, held)
        self._worklists[run_dir] = entry
        if problem is not None:
            self._announce(
                "WORKLIST_PROBLEM",
                f"run {self.run_id(run_dir)}: worklist {path} cannot be used: {problem}. "
                "Its files are held (not stored under a guessed identity) and are ingested "
                "as soon as the worklist is corrected and saved.",
            )
        elif worklist is not None and worklist.problems:
            self._announce(
                "WORKLIST_PROBLEM",
                f"run {self.run_id(run_dir)}: {worklist.describe_problems()}\nThe files of "
                "these rows are held (not stored under a guessed identity) and are ingested "
                "as soon as the worklist is corrected and saved; the other rows go on.",
            )
        elif cached is not None and _troubled(cached):
            self._announce(
                "WORKLIST_FIXED",
                f"run {self.run_id(run_dir)}: worklist {path or '(none: file-name convention)'} "
                f"reads cleanly now; {len(held)} held file(s) are being ingested.",
            )
        return entry

    def blocked(self, entry: _Worklist, path: Path) -> str | None:
        """Why this file must wait for its worklist, or None."""
        if entry.problem is not None:
            return entry.problem
        found = entry.worklist.problems_for(path) if entry.worklist is not None else ()
        return "; ".join(str(p) for p in found) or None

    def hold(self, run_dir: Path, path: Path) -> None:
        entry = self.worklist(run_dir)
        if path not in entry.held:
            entry.held.append(path)
        self._out(
            f"held  {printable(path.name)}: waits for the worklist of run {self.run_id(run_dir)}"
        )

    def take_released(self, run_dir: Path | None = None) -> list[Path]:
        """Held files whose run's worklist is usable now (re-checked), oldest first."""
        out: list[Path] = []
        for folder in [run_dir] if run_dir is not None else list(self._worklists):
            entry = self._worklists.get(folder)
            if entry is None or not entry.held:
                continue
            entry = self.worklist(folder)
            free = [p for p in entry.held if self.blocked(entry, p) is None]
            out.extend(p for p in free if p.exists())
            entry.held[:] = [p for p in entry.held if p not in free]
        return out

    def problems(self) -> list[str]:
        out = []
        for folder, w in self._worklists.items():
            if not _troubled(w):
                continue
            rows = w.worklist.problems if w.worklist is not None else ()
            what = w.problem or "; ".join(str(p) for p in rows[:3]) + (
                f"; and {len(rows) - 3} more" if len(rows) > 3 else ""
            )
            out.append(
                f"WORKLIST PROBLEM in run {self.run_id(folder)} ({len(w.held)} file(s) held): "
                f"{what}"
            )
        return out

    def planned(self, run_id: str) -> int | None:
        """Worklist rows of an open run (its worklist as last read), or None."""
        ingestor = self._ingestors.get(run_id)
        worklist = ingestor.worklist if ingestor is not None else None
        return len(worklist) if worklist is not None else None

    def reinjection_position(self, run_id: str, file: str) -> int | None:
        """The worklist position a file not in its open run's worklist re-injects, or None."""
        ingestor = self._ingestors.get(run_id)
        found = reinjection_of(file, ingestor.worklist if ingestor is not None else None)
        return found.position if found is not None else None

    def held_count(self) -> int:
        return sum(len(w.held) for w in self._worklists.values())

    # ------------------------------------------------------------ ingestors

    def ingestor(self, path: Path) -> tuple[RunIngestor, _Worklist]:
        """The run's ingestor (opened or restored from the database) and its worklist."""
        run_dir = self.run_dir(path)
        run_id = self.run_id(run_dir)
        entry = self.worklist(run_dir)
        worklist = entry.worklist
        ingestor = self._ingestors.pop(run_id, None)
        if ingestor is None:
            self._close_old_runs()
            run = RunInfo(
                run_id=run_id,
                name=run_id,
                folder=str(run_dir),
                worklist=worklist.path if worklist else None,
                assay_name=self.assay.name,
                assay_unit=self.assay.unit,
                lloq=self.assay.calibration.lloq,
                uloq=self.assay.calibration.uloq,
                planned=len(worklist) if worklist else None,
            )
            ingestor = RunIngestor(
                self.store,
                self.assay,
                run,
                worklist,
                carry_calibration=self.settings.carry_calibration,
                guide_runs=self.settings.guide_runs,
                guide_start=self.settings.guide_start,
                guide_end=self.settings.guide_end,
                read_limits=self.settings.read_limits,
            )
            self._ingestors[run_id] = ingestor
            self._out(
                f"run {run_id}: "
                + (
                    f"worklist {worklist.path} ({len(worklist)} injections)"
                    if worklist
                    else "no worklist, samples named by the file-name convention"
                )
            )
        else:
            ingestor.worklist = worklist
            self._ingestors[run_id] = ingestor  # re-inserted: the dict is least recent first
        return ingestor, entry

    def flush(self) -> list[Calibration]:
        """Fit calibrators still waiting, in every open run."""
        return [cal for i in self._ingestors.values() if (cal := i.flush()) is not None]

    def forget(self) -> None:
        """Drop every run's memory: after a store failure it may be ahead of the database,
        so each run is rebuilt from what the database really holds."""
        self._ingestors.clear()

    def _close_old_runs(self) -> None:
        """Forget all but the newest runs: a monitor left running for weeks of sequence
        folders must not keep every run's history in memory. A forgotten run that gets
        another file is restored from the database, which judges it exactly alike."""
        while len(self._ingestors) >= OPEN_RUNS:
            run_id = next(iter(self._ingestors))
            cal = self._ingestors.pop(run_id).flush()
            if cal is not None:
                self._out(f"calibration v{cal.version}: {cal.reason}")
            for folder, entry in list(self._worklists.items()):
                if self.run_id(folder) == run_id and not entry.held and not _troubled(entry):
                    del self._worklists[folder]


def _troubled(entry: _Worklist) -> bool:
    return entry.problem is not None or bool(entry.worklist and entry.worklist.problems)
