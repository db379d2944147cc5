"""Simulator faults through the real pipeline into a real DuckDB file: each fault's flag.

Three small runs (30 samples each) cover every fault; an injection the
simulator did not touch must carry none of the fault flags.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.report import write_report
from asnmon.simulate import SimConfig, apply_faults, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

FAULT_CODES = {
    "IS_LOW",
    "IS_HIGH",
    "IS_DRIFT",
    "IS_BIAS",
    "RT_SHIFT",
    "ION_RATIO",
    "CARRYOVER",
    "QC_FAIL",
    "ALQ",
    "READ_ERROR",
    "NO_PEAK",
    "LOW_SN",
    "SATURATION",
    "FEW_POINTS",
    "PEAK_TRUNCATED",
    "COELUTION",
}
RUNS = {
    "A": [
        "short:25",
        "over-curve",
        "depleted",
        "biased-qc:QC-M:25",
        "carryover:40",
        "truncated:20",
        "junk:35",
    ],
    "B": ["is-drift:20:2.5"],
    "C": ["rt-step:30:0.3", "broken-curve"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> dict[str, tuple]:
    root = tmp_path_factory.mktemp("scenarios")
    store = Store(root / "asnmon.duckdb")
    out = {}
    for name, faults in RUNS.items():
        cfg = apply_faults(SimConfig(n_samples=30, qc_every=10, seed=11), faults)
        sim = simulate_run(root / name, cfg)
        ing = RunIngestor(
            store, assay, RunInfo(name, name), worklist=load_worklist(sim.worklist_path)
        )
        ingest_paths(ing, sim.paths)
        out[name] = sim
    yield store, out, root
    store.close()


def flags_by_position(store: Store, run_id: str) -> dict[int | None, set[str]]:
    df = store.flags(run_id)
    out: dict[int | None, set[str]] = {}
    for pos, code in df.select("position", "code").iter_rows():
        out.setdefault(pos, set()).add(code)
    return out


def faulted(sim, fault: str) -> list[int]:
    return [p.position for p in sim.injections if fault in p.faults]


@pytest.mark.parametrize(
    ("run", "fault", "code"),
    [
        ("A", "short", "IS_LOW"),
        ("A", "over-curve", "ALQ"),
        ("A", "depleted", "DEPLETED"),
        ("A", "depleted", "BLQ"),
        ("A", "biased-qc", "QC_FAIL"),
        ("A", "carryover", "CARRYOVER"),
        ("A", "truncated", "READ_ERROR"),
        ("A", "junk", "READ_ERROR"),
    ],
)
def test_fault_gives_its_flag(runs, run: str, fault: str, code: str) -> None:
    store, sims, _ = runs
    by_pos = flags_by_position(store, run)
    positions = faulted(sims[run], fault)
    assert positions
    for pos in positions:
        assert code in by_pos.get(pos, set()), (pos, by_pos.get(pos))


def test_depleted_is_information_not_alarm(runs) -> None:
    store, sims, _ = runs
    pos = faulted(sims["A"], "depleted")[0]
    df = store.flags("A").filter(pl.col("position") == pos)
    assert set(df["severity"]) == {"info"}


def test_drift_raised_once_before_is_low(runs) -> None:
    store, _sims, _ = runs
    df = store.flags("B")
    drift = df.filter(pl.col("code") == "IS_DRIFT")["position"].to_list()
    low = df.filter(pl.col("code") == "IS_LOW")["position"].to_list()
    assert len(drift) == 1
    assert drift[0] >= 20
    assert low
    assert min(low) - drift[0] >= 5  # the lead the early warning buys
    verdict = store.runs().filter(pl.col("run_id") == "B")["verdict_reason"][0]
    assert "IS falling" in verdict


def test_rt_step_and_broken_curve(runs) -> None:
    store, sims, _ = runs
    by_pos = flags_by_position(store, "C")
    stepped = faulted(sims["C"], "rt-step")
    assert all("RT_SHIFT" in by_pos.get(p, set()) for p in stepped)
    run_codes = by_pos.get(None, set())
    assert {"CAL_FAIL", "RUN_FAIL"} <= run_codes
    run = store.runs().filter(pl.col("run_id") == "C")
    assert run["verdict"][0] == "fail"


@pytest.mark.parametrize("run", ["A", "B", "C"])
def test_clean_injections_carry_no_fault_flag(runs, run: str) -> None:
    store, sims, _ = runs
    by_pos = flags_by_position(store, run)
    for inj in sims[run].injections:
        if inj.faults:
            continue
        assert not (by_pos.get(inj.position, set()) & FAULT_CODES), (
            inj.position,
            by_pos.get(inj.position),
        )


def test_run_verdicts(runs) -> None:
    store, _, _ = runs
    verdicts = dict(store.runs().select("run_id", "verdict").iter_rows())
    assert verdicts["A"] == "at risk"  # unreadable files; one QC-M of three failed
    assert verdicts["C"] == "fail"


def test_report_from_the_store(runs) -> None:
    store, _, root = runs
    out = write_report(store, "A", root)
    assert out == Path(root) / "A_report.html"
    text = out.read_text(encoding="utf-8")
    assert "QC_FAIL" in text
    assert "Levey-Jennings QC-M" in text
