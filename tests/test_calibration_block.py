"""The curve is fitted when the calibration block is in, not between its calibrators.

A live monitor flushes the run whenever its queue runs dry, which is between every
two calibrators; fitting a half-arrived block published a rejected curve (CAL_FAIL
and a FAIL verdict) for the minutes the block took to acquire.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor, order_paths
from asnmon.records import SampleType
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("block")
    simulate_run(folder, SimConfig(n_samples=4, seed=7))
    return folder


def _live(
    folder: Path, assay: Assay, db: Path, skip: str | None = None
) -> tuple[Store, list[tuple[SampleType, int]]]:
    """Files one at a time, the run flushed after each, as the idle monitor does."""
    worklist = load_worklist(folder / "worklist.csv")
    store = Store(db)
    run = RunInfo(run_id="run", name="run", planned=len(worklist))
    ingestor = RunIngestor(store, assay, run, worklist)
    seen = []
    for path in order_paths(sorted(folder.glob("*.mzML")), worklist):
        if skip and skip in path.name:
            continue
        ingestor.ingest(path)
        ingestor.flush()
        sample = worklist.lookup(path)
        assert sample is not None
        seen.append((sample.sample_type, store.calibrations("run").height))
    return store, seen


def _blocks(types: list[SampleType]) -> list[tuple[int, int]]:
    """(first, last) index of each run of consecutive calibrators."""
    out: list[tuple[int, int]] = []
    for i, t in enumerate(types):
        if t is not SampleType.CALIBRATOR:
            continue
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def test_no_curve_is_published_while_the_block_is_arriving(
    run_folder: Path, assay: Assay, tmp_path: Path
) -> None:
    store, seen = _live(run_folder, assay, tmp_path / "a.duckdb")
    with store:
        blocks = _blocks([t for t, _ in seen])
        assert len(blocks) == 2  # the simulator brackets: a block first, one at the end
        (_, a1), (_, b1) = blocks
        # nothing fitted before the first block is complete, the curve right after it
        assert all(n == 0 for _, n in seen[:a1])
        assert seen[a1][1] == 1
        # the bracketing block refits once, as a whole: one more version, not eight
        assert all(n == 1 for _, n in seen[a1:b1])
        assert seen[b1][1] == 2
        cals = store.calibrations("run")
        assert all(bool(a) for a in cals["accepted"].to_list())
        every = store.flags("run", active_only=False)
        assert "CAL_FAIL" not in every["code"].to_list()


def test_a_missing_calibrator_does_not_hold_the_curve_back(
    run_folder: Path, assay: Assay, tmp_path: Path
) -> None:
    """The instrument moved on without CAL03: the curve comes from what arrived."""
    store, seen = _live(run_folder, assay, tmp_path / "b.duckdb", skip="CAL03")
    with store:
        (_, a1), _ = _blocks([t for t, _ in seen])
        assert seen[a1][1] == 1
        assert bool(store.calibrations("run").row(0, named=True)["accepted"])
