"""What the run keeps between files (rows still to come, the rules' history index, the
QC tally) is what a computation from scratch gives, through every change to its inputs:
a rewritten file, a re-injection, a worklist edited mid-run, a curve refit, a restart."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor
from asnmon.qc import _history, evaluate_run, is_context, qc_level, qc_tally, rt_points
from asnmon.qc import internal_standard as _is
from asnmon.records import HistoryPoint, SampleType
from asnmon.simulate import SimConfig, simulate_run, write_injection
from asnmon.store import RunInfo, Store
from asnmon.worklist import Worklist, load_worklist


def _rows_from_scratch(ing: RunIngestor) -> Counter[str]:
    """The worklist rows still to come and their QCs per level, in order, as kept."""
    assert ing.worklist is not None
    done = {e.sample.file for e in ing.entries.values()}
    rows = [s for s in ing.worklist.samples if s.file not in done]
    expected = sorted(rows, key=lambda s: s.position if s.position is not None else 10**9)
    assert ing.upcoming() == expected
    left = Counter(qc_level(s.level, s.nominal) for s in expected if s.sample_type is SampleType.QC)
    kept = ing._upcoming_rows()
    assert kept is not None and list(kept.remaining().items()) == list(left.items())
    return left


def _from_scratch(ing: RunIngestor, assay: Assay) -> None:
    left = _rows_from_scratch(ing)
    history, cal = ing.history, ing.calibration

    # Only QCs at the LLOQ can pass: another curve (its LLOQ above every QC) or another
    # assay must give other counts over the same history.
    strict = replace(
        assay, limits=replace(assay.limits, qc_accuracy_pct=0.0, qc_accuracy_lloq_pct=1e3)
    )

    def judged() -> tuple[object, ...]:
        tallies = None
        if cal is not None:
            tallies = [
                qc_tally(history, cal, assay),
                qc_tally(history, cal, strict),
                qc_tally(history, replace(cal, lloq=1e9), strict),
            ]
            if any(t.n for t in tallies[0]):
                assert tallies[1] != tallies[2]
        return (
            rt_points(history, assay),
            rt_points([*history[:-1]], assay),  # the shorter history of a point being judged
            tallies,
            evaluate_run(history, cal, assay, remaining_qcs=left),
            is_context(history, assay),
        )

    kept_answers = judged()
    _history._INDEXES.clear()
    _is._SCANS.clear()
    assert judged() == kept_answers
    # A tuple asked again is answered without a check: still right after the run grew.
    like = rt_points(history, assay)[-1]  # a point the RT trend and the IS follow
    judging = (*history, replace(like, injection_id=-1))
    first = rt_points(judging, assay), is_context(judging, assay)
    other = replace(like, injection_id=-2, is_rt=like.is_rt + 1.0, is_area=like.is_area * 3)
    grown = [*history, other, replace(like, injection_id=-3)]
    rt_points(grown, assay), is_context(grown, assay)
    assert (rt_points(judging, assay), is_context(judging, assay)) == first
    _history._INDEXES.clear()
    _is._SCANS.clear()
    assert (rt_points(judging, assay), is_context(judging, assay)) == first


def test_what_the_run_keeps_is_what_a_scratch_computation_gives(
    tmp_path: Path, assay: Assay
) -> None:
    config = SimConfig(n_samples=6, seed=5)
    sim = simulate_run(tmp_path / "sim", config)
    worklist = load_worklist(sim.worklist_path)
    paths = list(sim.paths)
    half = len(paths) // 2
    with Store(tmp_path / "m.duckdb") as store:
        ing = RunIngestor(store, assay, RunInfo("M", "M"), worklist)
        for path in paths[:half]:
            ing.ingest(path)
            _rows_from_scratch(ing)
        ing.flush()
        assert ing.calibration is not None  # the first calibrator block is fitted
        _from_scratch(ing, assay)
        # A file rewritten after it was ingested: version 2 supersedes version 1.
        first = sim.injections[3]
        write_injection(first, paths[3], replace(config, seed=config.seed + 7))
        assert ing.ingest(paths[3]).version == 2
        _from_scratch(ing, assay)
        # A re-injection (not in the worklist) of a QC.
        qc = next(i for i in sim.injections if i.sample.sample_type is SampleType.QC)
        again = write_injection(
            qc, sim.out_dir / f"{qc.sample.sample_id}_R.mzML", replace(config, seed=9)
        )
        assert not ing.ingest(again).outcome.sample.in_worklist  # type: ignore[union-attr]
        _from_scratch(ing, assay)
        # The worklist edited mid-run: two rows still to come are taken out.
        gone = {Path(p).stem for p in paths[half : half + 2]}
        ing.worklist = Worklist(
            tuple(s for s in worklist.samples if s.file not in gone), worklist.path
        )
        _from_scratch(ing, assay)
        for path in paths[half + 2 :]:
            ing.ingest(path)
            _rows_from_scratch(ing)
            if path == paths[-3]:
                _from_scratch(ing, assay)
        ing.flush()  # the last calibrator block: a refit re-quantifies the run
        assert ing.versions >= 2
        _from_scratch(ing, assay)
        # A restart rebuilds the memory from the database.
        restarted = RunIngestor(store, assay, RunInfo("M", "M"), ing.worklist)
        assert restarted.upcoming() == ing.upcoming()
        _from_scratch(restarted, assay)


def test_the_is_context_of_a_point_being_judged_leaves_the_kept_pass_as_it_was(
    assay: Assay,
) -> None:
    """Judging a point (and a what-if one) between stored ones: each context is the one
    computed from scratch, through a drift's alarm and the reference points it drops."""
    rng = random.Random(3)
    kinds = [SampleType.CALIBRATOR] * 8 + [SampleType.QC, SampleType.SAMPLE] * 40
    run: list[HistoryPoint] = []
    for i, kind in enumerate(kinds, start=1):
        area = 1.5e5 * (0.97 ** max(i - 40, 0)) * (1 + rng.gauss(0, 0.03))
        run.append(HistoryPoint(i, i, f"S{i}", kind, is_area=area, is_rt=1.0, analyte_rt=1.0))
    for j in range(1, len(run)):
        what_if = replace(run[j], injection_id=-j, is_area=run[j].is_area * 0.5)  # type: ignore[operator]
        for points in ([*run[:j], what_if], run[: j + 1], [*run[:j], what_if]):
            kept = is_context(points, assay)
            _is._SCANS.clear()
            assert is_context(points, assay) == kept
            is_context(run[:j], assay)  # the pass kept as the run has it
    assert is_context(run, assay).episodes  # a drift was found on the way
