"""Several instruments: each monitor exports its runs as Parquet into one shared folder.

DuckDB lets one process hold a database, so monitors cannot read each other's
files. Instead each writes, per run, ``<instrument>__<run>.parquet`` (the
results table plus an ``instrument`` column) and ``<instrument>__runs.parquet``
into a shared folder; anyone (``read_share``, DuckDB, Spark) reads them all.
Every file is written under a temporary name in the same folder and then
renamed (``os.replace``), so a reader never sees half a file, even over SMB.

Also here: choosing runs to archive and archiving (then pruning) them, the
functions behind ``asnmon archive``.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from asnmon.errors import StoreError
from asnmon.store import Store

log = logging.getLogger("asnmon.share")

RUNS_SUFFIX = "__runs.parquet"


def _safe(name: str) -> str:
    return Store.archive_folder_name(name)


def _write_atomic(frame: pl.DataFrame, target: Path) -> Path:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        frame.write_parquet(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def write_share(
    store: Store,
    share_dir: str | Path,
    instrument: str,
    *,
    run_id: str | None = None,
    run_ids: Iterable[str] | None = None,
) -> list[Path]:
    """Write the results of one run, some runs, or all runs (running ones too), and the runs table.

    Returns the files written. A run's file is replaced as a whole each time.
    """
    if not instrument.strip():
        raise ValueError("an instrument name is needed to tell the files apart")
    share = Path(share_dir)
    if not share.is_dir():
        raise StoreError(f"{share}: the share folder does not exist or is not reachable")
    wanted: list[str] | None = None
    if run_id is not None:
        wanted = [run_id]
    elif run_ids is not None:
        wanted = list(run_ids)
    runs = store.runs()
    if wanted is None:
        wanted = runs["run_id"].to_list() if runs.height else []
    written: list[Path] = []
    prefix = _safe(instrument)
    for rid in wanted:
        frame = store.results(rid).with_columns(pl.lit(instrument).alias("instrument"))
        written.append(_write_atomic(frame, share / f"{prefix}__{_safe(rid)}.parquet"))
    if runs.height:
        table = runs.with_columns(
            pl.lit(instrument).alias("instrument"),
            pl.lit(datetime.now().isoformat(timespec="seconds")).alias("exported_at"),
        )
        written.append(_write_atomic(table, share / f"{prefix}{RUNS_SUFFIX}"))
    return written


def _read_all(paths: Sequence[Path]) -> pl.DataFrame:
    frames = []
    for p in paths:
        try:
            frames.append(pl.read_parquet(p))
        except (OSError, pl.exceptions.PolarsError) as exc:  # one bad file must not hide the rest
            log.warning("skipping %s: %s", p, exc)
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed")


def read_share(share_dir: str | Path) -> pl.DataFrame:
    """All instruments' results in the share as one frame (column ``instrument``)."""
    files = sorted(
        p
        for p in Path(share_dir).glob("*.parquet")
        if not p.name.startswith(".") and not p.name.endswith(RUNS_SUFFIX)
    )
    return _read_all(files)


def read_share_runs(share_dir: str | Path) -> pl.DataFrame:
    """Every instrument's runs table."""
    return _read_all(sorted(Path(share_dir).glob(f"*{RUNS_SUFFIX}")))


class ShareExporter:
    """The monitor's periodic export: call ``maybe_export()`` when the worker is idle.

    It writes at most every ``every_minutes`` and only the runs that changed
    since the last export (``Store.changes_since``), so a months-old database
    does not rewrite every run each time. Errors (share gone) are logged and
    kept in ``last_error``, then retried next interval; they never stop the
    monitor.
    """

    def __init__(
        self,
        store: Store,
        share_dir: str | Path,
        instrument: str,
        *,
        every_minutes: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.share_dir = Path(share_dir)
        self.instrument = instrument
        self.every = every_minutes * 60.0
        self._clock = clock
        self._last: float | None = None
        self._seq = 0
        self.last_error: str | None = None
        self.last_export: float | None = None  # wall clock

    def due(self) -> bool:
        return self._last is None or self._clock() - self._last >= self.every

    def maybe_export(self, *, force: bool = False) -> list[Path]:
        if not force and not self.due():
            return []
        self._last = self._clock()
        seq = self.store.last_change()
        if seq == self._seq:
            return []
        changed = self.store.changes_since(self._seq)
        run_ids = sorted({r for r in changed["run_id"].to_list() if r} if changed.height else set())
        try:
            written = write_share(self.store, self.share_dir, self.instrument, run_ids=run_ids)
        except (OSError, StoreError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("share export to %s failed (retried later): %s", self.share_dir, exc)
            return []
        self._seq = seq
        self.last_error = None
        self.last_export = time.time()
        return written


# ---------------------------------------------------------------- archive


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    run_ids: tuple[str, ...]
    folders: tuple[Path, ...]
    deleted: dict[str, int] | None  # rows deleted per table when pruned


def select_runs(
    store: Store, *, before: date | None = None, run_ids: Iterable[str] = ()
) -> list[str]:
    """Runs named, plus runs created before a date (local midnight of that day, UTC as stored)."""
    chosen = list(dict.fromkeys(run_ids))
    if before is not None:
        runs = store.runs()
        if runs.height:
            cutoff = datetime(before.year, before.month, before.day)
            old = runs.filter(pl.col("created_at") < cutoff)["run_id"].to_list()
            chosen += [r for r in sorted(old) if r not in chosen]
    return chosen


def archive(
    store: Store,
    dest_dir: str | Path,
    *,
    before: date | None = None,
    run_ids: Iterable[str] = (),
    prune: bool = False,
) -> ArchiveReport:
    """Archive the chosen runs to Parquet and, with ``prune``, delete them from the database."""
    chosen = select_runs(store, before=before, run_ids=run_ids)
    folders = store.archive_runs(chosen, dest_dir) if chosen else []
    deleted = store.prune_runs(chosen, dest_dir) if prune and chosen else None
    return ArchiveReport(tuple(chosen), tuple(folders), deleted)
