"""Many files at once: acquisition order, batch ingestion, and re-quantifying after an edit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from asnmon.acquired import acquisition_key
from asnmon.assay import Assay
from asnmon.errors import AsnmonError
from asnmon.pipeline.ingestor import IngestReport, RunIngestor
from asnmon.requantify import Requantified, apply_edits, run_lock
from asnmon.store import Store
from asnmon.worklist import Worklist

log = logging.getLogger("asnmon.pipeline")


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


def requantify(store: Store, assay: Assay, run_id: str, **options: object) -> Requantified:
    """After a reviewer's edit: the run rebuilt from the store, refitted if a calibrator
    changed, re-quantified and re-judged (``asnmon.requantify``). ``options``: the
    RunIngestor's run settings (guide set, read limits)."""
    with run_lock(store.path, run_id):
        info = store.run_info(run_id)
        ingestor = RunIngestor(store, assay, info, apply_pending=False, **options)  # type: ignore[arg-type]
        return apply_edits(ingestor)
