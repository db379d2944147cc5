"""A long overnight run in a real database, quickly: for the dashboard benchmarks.

A small simulated run goes once through the real pipeline; its outcomes are then
recorded again and again under new file names (``RunIngestor.record``: store, QC,
verdict), so the database looks like one run of ``n`` injections.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from asnmon.assay import load_assay
from asnmon.mzml import file_sha256
from asnmon.pipeline import RunIngestor, ingest_paths, process_file
from asnmon.records import Outcome
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist, resolve_sample


def fill_run(db: Path, n: int, work: Path) -> tuple[Store, RunIngestor, list[Outcome]]:
    """~n injections in ``db``; the ingestor (to go on recording) and the sample outcomes."""
    assay = load_assay()
    sim = simulate_run(work / "run", SimConfig(n_samples=30))
    store = Store(db)
    wl = load_worklist(sim.worklist_path)
    ing = RunIngestor(store, assay, RunInfo("big", "big", planned=n), worklist=wl)
    ingest_paths(ing, sim.paths)
    cal = ing.calibration
    outcomes = [
        process_file(p, file_sha256(p), resolve_sample(p, wl, assay), assay, cal) for p in sim.paths
    ]
    k = len(sim.paths)
    while k < n:
        o = outcomes[k % len(outcomes)]
        ing.record(
            replace(o, path=o.path.with_name(f"{k + 1:05d}_{o.path.name}"), sha256=f"{k:064d}"),
            acquired_order=float(k),
        )
        k += 1
    samples = [o for o in outcomes if o.sample.sample_type == "sample"]
    return store, ing, samples
