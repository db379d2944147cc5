"""A run re-quantified after a reviewer's change, and the lock that keeps it one writer.

A reviewer's change (manual peaks, a calibrator excluded or included, a
corrected batch-table field) is stored first, as that person, with its audit
event (``asnmon.store.edits``). This module then brings the run up to date:
the run is rebuilt from the store (``RunIngestor.restore`` reads the manual
peaks, the corrected samples and the exclusions), the curve is refitted as a
new version when a calibrator changed (accepted or rejected by the same ICH
M10 rules) and every injection is re-quantified on it; the changed injections'
own flags (peaks, IS, RT, ion ratio, carryover, range) are judged again on
their new peaks. The edit is marked applied only when all that is stored, so
a crash in between is finished when the run is next opened (``RunIngestor``).

The live monitor's ingestor and the dashboard's review share one process and
one database: ``run_lock`` serializes them per run, and the monitor's ingestor
rebuilds itself when it sees an edit it has not absorbed (``absorb_edits``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asnmon.qc import evaluate_injection, history_point, is_context
from asnmon.quantify import quantify
from asnmon.records import Calibration

if TYPE_CHECKING:
    from asnmon.pipeline import RunIngestor

# Per-injection codes judged again on a reviewer's new peaks or corrected sample. The
# run-trend flags (IS_DRIFT, IS_BIAS, RT_TREND) live on the injection that raised them
# and are kept current by the ingestor; file-level ones (READ_ERROR, REPLACED, DUPLICATE)
# do not depend on peaks.
REJUDGED_CODES = frozenset(
    {
        "NO_PEAK",
        "LOW_SN",
        "SATURATION",
        "FEW_POINTS",
        "PEAK_TRUNCATED",
        "BASELINE_UNCERTAIN",
        "IS_LOW",
        "IS_HIGH",
        "IS_NO_REFERENCE",
        "RT_SHIFT",
        "ION_RATIO",
        "COELUTION",
        "CARRYOVER",
        "BLQ",
        "ALQ",
        "NO_CALIBRATION",
        "REF_LOW",
        "REF_HIGH",
        "QC_FAIL",
        "DEPLETED",
    }
)

_LOCKS: dict[tuple[str, str], threading.RLock] = {}
# How many reviewer's edits each run has had in this process: DuckDB lets one process
# write a database, so an edit the live ingestor must see is always made here, and a
# dictionary look-up spares every file a query (measured: 4.5 ms a file under load).
_EDITS: dict[tuple[str, str], int] = {}
_GUARD = threading.Lock()


# A database path as resolved the first time it was seen: four look-ups a file, each a
# realpath (a system call per path component) for a file that is open for the whole run.
# Relative paths are resolved every time: they depend on the working directory.
_RESOLVED: dict[str, str] = {}


def _key(db: Path, run_id: str) -> tuple[str, str]:
    given = str(db)
    resolved = _RESOLVED.get(given)
    if resolved is None:
        resolved = str(Path(db).resolve())
        if Path(db).is_absolute() and len(_RESOLVED) < 1024:
            _RESOLVED[given] = resolved
    return resolved, run_id


def run_lock(db: Path, run_id: str) -> threading.RLock:
    """The one lock of a run in this process: ingestion and review never interleave."""
    with _GUARD:
        return _LOCKS.setdefault(_key(db, run_id), threading.RLock())


def edited(db: Path, run_id: str) -> None:
    """Count an edit of the run (``asnmon.review_actions`` calls it after each one)."""
    key = _key(db, run_id)
    with _GUARD:
        _EDITS[key] = _EDITS.get(key, 0) + 1


def edit_count(db: Path, run_id: str) -> int:
    with _GUARD:
        return _EDITS.get(_key(db, run_id), 0)


@dataclass(frozen=True, slots=True)
class Requantified:
    """What one application of a reviewer's edits changed."""

    edits: tuple[int, ...]  # edit ids applied
    injections: tuple[int, ...]  # injections judged again on their own
    calibration: Calibration | None  # the new curve version, when a calibrator changed
    requantified: int  # results written


def absorb_edits(ingestor: RunIngestor) -> None:
    """Rebuild the ingestor's memory when the run was edited since it last looked."""
    seen = edit_count(ingestor.store.path, ingestor.run.run_id)
    if seen != ingestor._edit_seq:
        ingestor.restore()
        if ingestor.store.pending_edits(ingestor.run.run_id):
            apply_edits(ingestor)
        ingestor._edit_seq = seen


def apply_edits(ingestor: RunIngestor) -> Requantified:
    """Apply every stored edit of the run not applied yet; see the module docstring."""
    store, run_id = ingestor.store, ingestor.run.run_id
    pending = store.pending_edits(run_id)
    if not pending:
        return Requantified((), (), None, 0)
    cal: Calibration | None = None
    written = 0
    if any(p.refits for p in pending):
        cal = ingestor.refit()
        written = len([e for e in ingestor.entries.values() if not e.error])
    touched = sorted({p.injection_id for p in pending if p.injection_id is not None})
    written += rejudge(ingestor, touched, with_result=cal is None)
    store.mark_edits_applied(run_id, [p.edit_id for p in pending])
    ingestor.evaluate()
    return Requantified(tuple(p.edit_id for p in pending), tuple(touched), cal, written)


def rejudge(ingestor: RunIngestor, injection_ids: list[int], *, with_result: bool) -> int:
    """The injections' own flags (and, unless a refit just did it, their results) again."""
    assay, cal = ingestor.assay, ingestor.calibration
    order = {h.injection_id: i for i, h in enumerate(ingestor.history)}
    written = 0
    for iid in injection_ids:
        entry = ingestor.entries.get(iid)
        if entry is None or entry.error:
            continue
        result = quantify(entry.peaks, entry.sample, cal, assay)
        before = ingestor.history[: order.get(iid, len(ingestor.history))]
        flags = [
            f
            for f in evaluate_injection(entry.peaks, result, entry.sample, cal, assay, before)
            if f.code in REJUDGED_CODES
        ]
        here = history_point(
            iid, len(before) + 1, entry.sample, entry.peaks, result, assay, entry.error
        )
        ctx = is_context([*before, here], assay)
        is_pct = ctx.pct[-1] if ctx.points and ctx.points[-1] is here else None
        ingestor.store.rejudge_injection(
            ingestor.run.run_id,
            iid,
            result if with_result else None,
            flags,
            REJUDGED_CODES,
            is_pct=is_pct,
        )
        if iid in order:
            ingestor.history[order[iid]] = here
        written += int(with_result)
    return written
