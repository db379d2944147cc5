"""One snapshot of a run's frames per database change, shared by the callbacks.

A refresh fans out to several callbacks on different server threads; without
this each would run the same queries. The snapshot is keyed by the store's
change counter, so it is never stale and costs one cheap query to validate.
It also holds the flags grouped and counted ONCE (``asnmon.qc.headline``): the
banner, the flags tab and the beep read the same numbers, so they agree.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import polars as pl

from asnmon.qc.headline import FlagGroup, FlagRow, RunCounts, group_flags, run_counts
from asnmon.store import Store
from dashboard.tables import is_reference

NO_COUNTS = run_counts(None, (), (), None)


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int
    run_id: str | None
    run: dict[str, object] | None  # the runs() row
    results: pl.DataFrame
    flags: pl.DataFrame
    reference: float | None  # mean IS area of calibrators and QCs
    rows: tuple[FlagRow, ...] = ()  # the flags as records
    groups: tuple[FlagGroup, ...] = ()  # cards, most urgent first
    counts: RunCounts = NO_COUNTS  # every counter the page shows


class RunCache:
    """The latest snapshot per run, rebuilt only when ``Store.last_change`` moved."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._snaps: dict[str | None, Snapshot] = {}

    def runs(self) -> pl.DataFrame:
        return self.store.runs()

    def run_ids(self) -> list[str | None]:
        """The runs whose snapshots are in hand, newest load first."""
        with self._lock:
            return [s.run_id for s in reversed(list(self._snaps.values()))]

    def get(self, run_id: str | None) -> Snapshot:
        seq = self.store.last_change()
        with self._lock:
            snap = self._snaps.get(run_id)
            if snap is not None and snap.seq == seq:
                return snap
            snap = self._load(run_id, seq)
            self._snaps[run_id] = snap
            return snap

    def _load(self, run_id: str | None, seq: int) -> Snapshot:
        runs = self.store.runs()
        if run_id is None and not runs.is_empty():
            run_id = str(runs["run_id"][0])
        row = (
            runs.filter(pl.col("run_id") == run_id).row(0, named=True)
            if run_id and (not runs.filter(pl.col("run_id") == run_id).is_empty())
            else None
        )
        if row is None:
            empty = pl.DataFrame()
            return Snapshot(seq, run_id, None, empty, empty, None)
        results = self.store.results(run_id)
        flags = self.store.flags(run_id)
        rows = tuple(FlagRow.of(r) for r in flags.iter_rows(named=True))
        positions = results["position"].to_list() if not results.is_empty() else []
        planned = row.get("planned")
        counts = run_counts(
            str(row.get("verdict") or "pending"),
            rows,
            positions,
            int(planned) if isinstance(planned, int) else None,
        )
        return Snapshot(
            seq,
            run_id,
            row,
            results,
            flags,
            is_reference(results),
            rows,
            tuple(group_flags(rows)),
            counts,
        )
