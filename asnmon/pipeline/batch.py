"""Many files at once: acquisition order, batch ingestion, and re-quantifying after an edit."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from asnmon.acquired import acquisition_key
from asnmon.assay import Assay
from asnmon.errors import AsnmonError
from asnmon.pipeline.ingestor import IngestReport, RunIngestor
from asnmon.requantify import Requantified, apply_edits, run_lock
from asnmon.store import STORE_FAILURES, Store
from asnmon.worklist import Worklist

log = logging.getLogger("asnmon.pipeline")
_FILE_FAILURES: tuple[type[Exception], ...] = (AsnmonError, *STORE_FAILURES)


def order_paths(paths: Iterable[Path], worklist: Worklist | None) -> list[Path]:
    """Acquisition order: each file's own start time stamp, then worklist position, then
    file time and name (``asnmon.acquired``); file-system time stamps never decide alone."""

    def position(p: Path) -> int | None:
        sample = worklist.lookup(p) if worklist else None
        return sample.position if sample is not None else None

    return sorted(paths, key=lambda p: acquisition_key(p, position(p)))


GROUP_FILES = 32  # files per transaction when a backlog is ingested (asnmon.store.group)
GROUP_SECONDS = 1.0  # ... and at most this long: a dashboard sees a batch grow every second


def ingest_paths(
    ingestor: RunIngestor,
    paths: Iterable[Path],
    on_report: Callable[[IngestReport], None] | None = None,
    *,
    group: int = GROUP_FILES,
    group_seconds: float = GROUP_SECONDS,
) -> list[IngestReport]:
    """Batch ingestion in acquisition order; one bad file never stops the rest.

    Files are stored ``group`` at a time in one transaction (a commit costs more
    than reading a file). If a group fails, nothing of it is stored and each of
    its files is stored again on its own, so a failure is reported for the file
    it belongs to and every other file still stores. ``on_report`` hears of a
    file once its group is committed.
    """
    ordered = order_paths(paths, ingestor.worklist)
    reports: list[IngestReport] = []
    start = 0
    while start < len(ordered):
        tried: list[Path] = []
        done: list[IngestReport] = []
        try:
            files = min(max(group, 1), len(ordered) - start)
            with (
                run_lock(ingestor.store.path, ingestor.run.run_id),
                ingestor.store.group(files) as g,
            ):
                until = time.monotonic() + group_seconds
                for path in ordered[start:]:
                    tried.append(path)
                    try:
                        done.append(ingestor.ingest(path))
                    except AsnmonError as err:
                        if g.failed is not None or isinstance(err, STORE_FAILURES):
                            raise  # the group is rolled back: its files go again one by one
                        log.error("%s: %s", path, err)
                        done.append(IngestReport(path, stored=False, message=str(err)))
                    if len(tried) >= max(group, 1) or time.monotonic() > until:
                        break
        except STORE_FAILURES as err:
            log.warning(
                "a group of %d file(s) was not stored (%s): storing them one by one",
                len(tried),
                err,
            )
            ingestor.forget_uncommitted()
            done = [_ingest_one(ingestor, path) for path in tried]
        start += len(tried)
        reports += done
        if on_report:
            for report in done:
                on_report(report)
    ingestor.flush()
    return reports


def _ingest_one(ingestor: RunIngestor, path: Path) -> IngestReport:
    """One file in its own transaction: its failure is reported, not raised."""
    try:
        return ingestor.ingest(path)
    except _FILE_FAILURES as err:  # a failed commit is DuckDB's own error
        log.error("%s: %s", path, err)
        with contextlib.suppress(*STORE_FAILURES):  # else rebuilt before the next file
            ingestor.forget_uncommitted()
        return IngestReport(path, stored=False, message=str(err))


def requantify(store: Store, assay: Assay, run_id: str, **options: object) -> Requantified:
    """After a reviewer's edit: the run rebuilt from the store, refitted if a calibrator
    changed, re-quantified and re-judged (``asnmon.requantify``). ``options``: the
    RunIngestor's run settings (guide set, read limits)."""
    with run_lock(store.path, run_id):
        info = store.run_info(run_id)
        ingestor = RunIngestor(store, assay, info, apply_pending=False, **options)  # type: ignore[arg-type]
        return apply_edits(ingestor)
