"""Simulator faults through the real pipeline into a real DuckDB file: each fault's flag.

Three small runs (30 samples each) cover every fault; an injection the
simulator did not touch must carry none of the fault flags.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.report import write_report
from asnmon.simulate import SimConfig, apply_faults, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.users import Actor
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


# ---------------------------------------------------------------- live forecast, in the store


def drift_rows(store: Store, run_id: str) -> pl.DataFrame:
    df = store.flags(run_id, active_only=False)
    return df.filter(pl.col("code") == "IS_DRIFT").sort("created_at", "flag_id")


def test_drift_forecast_kept_current_in_the_store(runs) -> None:
    """is-drift:20:2.5 through the pipeline: one active IS_DRIFT on the alarm injection,
    rewritten at every later injection (its earlier texts kept inactive); the last one
    rests on the whole episode and puts the 50 % crossing within 3 injections of the
    truth (20 + 28 = 48: 0.975^28 = 0.49), at the simulator's 8 min interval."""
    import json

    store, sims, _ = runs
    rows = drift_rows(store, "B")
    active = rows.filter(pl.col("active"))
    assert active.height == 1
    alarm = active["position"][0]
    assert set(rows["position"].to_list()) == {alarm}  # always on the alarm injection
    versions = [json.loads(d) for d in rows["details"].to_list()]
    updated = [v["updated_at"] for v in versions]
    n_injections = len(sims["B"].injections)
    assert len(set(updated)) >= 10  # recomputed as the run went on, not frozen at the alarm
    last = json.loads(active["details"][0])
    assert last["updated_at"] == n_injections
    assert abs(last["crossing_at"] - 48) <= 3
    assert last["rate_low_pct"] <= -2.5 <= last["rate_high_pct"]
    assert last["interval_min"] == pytest.approx(8.0)
    assert active["severity"][0] == "fail"  # escalated: the IS is below 50 % by the end
    assert "It passed 50 %" in active["message"][0]
    first = versions[0]
    assert first["updated_at"] == alarm and first["rate_pct"] != last["rate_pct"]
    severities = rows["severity"].to_list()  # warning, then fail for good: no flip-flop
    assert severities[0] == "warning"
    assert severities == sorted(severities, key=lambda s: s == "fail")
    verdict = store.runs().filter(pl.col("run_id") == "B")["verdict_reason"][0]
    assert f"{last['rate_pct']:+.1f} % per injection" in verdict


def test_first_injections_get_their_is_pct_once_there_is_a_reference(runs) -> None:
    """ZERO and CAL01 arrive before any reference; once three calibrators are in, they are
    given their IS % of that first reference (~100 %), which the later drift cannot move."""
    store, _, _ = runs
    res = store.results("B").sort("position")
    first = res.filter(pl.col("sample_id").is_in(["ZERO", "CAL01"]))
    assert first.height == 2
    for pct in first["is_pct"].to_list():
        assert pct is not None and 88 < pct < 112


def test_update_flag_keeps_its_acknowledgement_until_it_escalates(tmp_path: Path) -> None:
    from asnmon.records import Flag, Outcome, Result, Sample, SampleType, Severity

    store = Store(tmp_path / "db.duckdb")
    store.ensure_run(RunInfo("R", "R"))
    sample = Sample("f1", "S1", SampleType.SAMPLE, position=1)
    inj = store.write_injection(
        "R", Outcome(tmp_path / "f1.mzML", "abc", sample, Result("ok")), position=1
    )
    warn = Flag("IS_DRIFT", Severity.WARNING, "reaches 50 % at about injection 60", "check")
    store.update_flag("R", inj, warn)
    flag_id = int(store.flags("R")["flag_id"][0])
    store.acknowledge(flag_id, Actor("night shift", "analyst"))
    store.update_flag("R", inj, replace(warn, message="reaches 50 % at about injection 58"))
    now = store.flags("R")
    assert now["flag_id"].to_list() == [flag_id]  # same flag, acknowledgement kept
    assert now["message"][0].endswith("injection 58")
    assert int(now["acks"][0]) == 1
    old = store.flags("R", active_only=False).filter(~pl.col("active"))
    assert old["message"].to_list() == ["reaches 50 % at about injection 60"]
    store.update_flag("R", inj, replace(warn, severity=Severity.FAIL, message="within 8"))
    now = store.flags("R")
    assert now.height == 1 and now["flag_id"][0] != flag_id  # escalated: needs a new look
    assert int(now["acks"][0]) == 0
    store.close()


# ---------------------------------------------------------------- the run called early


def test_run_fail_as_soon_as_the_worklist_cannot_rescue_it(tmp_path: Path, assay: Assay) -> None:
    """Every QC-M reads +25 %: three QC-M in the worklist. After the first (0 of 1, two
    left) the run is at risk, not failed: two passes would give 2 of 3. After the second
    (0 of 2, one left: at most 1 of 3) it is lost -- RUN_FAIL before the last QC-M is
    injected, with the arithmetic, and it stays failed."""
    cfg = apply_faults(SimConfig(n_samples=20, qc_every=10, seed=3), ["biased-qc:QC-M:25:all"])
    sim = simulate_run(tmp_path / "run", cfg)
    qc_m = [p.position for p in sim.injections if p.sample.level == "QC-M"]
    assert len(qc_m) == 3
    store = Store(tmp_path / "db.duckdb")
    ing = RunIngestor(store, assay, RunInfo("D", "D"), worklist=load_worklist(sim.worklist_path))
    verdicts: dict[int, tuple[str, str]] = {}
    for inj, path in zip(sim.injections, sim.paths, strict=True):
        ing.ingest(path)
        ing.flush()
        verdicts[inj.position] = store.run_verdicts()["D"]
    assert verdicts[qc_m[0]][0] == "at risk", verdicts[qc_m[0]]
    assert "QC-M: 1 of 1 QC-M QCs failed; all 2 left must pass" in verdicts[qc_m[0]][1]
    assert verdicts[qc_m[1]][0] == "fail", verdicts[qc_m[1]]
    run_fail = store.flags("D", active_only=False).filter(pl.col("code") == "RUN_FAIL")
    assert (
        "2 of 2 QC-M QCs failed; with 1 left, at most 1 of 3 can pass"
        in (
            run_fail["message"][0]  # the first RUN_FAIL: the early call, with its arithmetic
        )
    )
    assert store.flags("D").filter(pl.col("code") == "RUN_FAIL").height == 1
    assert all(verdicts[p][0] == "fail" for p in verdicts if p >= qc_m[1])
    store.close()


def test_rt_trend_raised_before_rt_shift_and_kept_current(tmp_path: Path, assay: Assay) -> None:
    """Real mzML files whose peaks move +0.004 min per injection from injection 20 (the
    simulator's plan, each injection's rt_shift set): RT_TREND is raised once, before the
    first RT_SHIFT, on one injection, and its forecast is rewritten as the run goes on;
    once the RT is out of tolerance its text says the trend no longer applies."""
    import json

    from asnmon.simulate import plan_run as plan
    from asnmon.simulate import write_injection, write_worklist

    cfg = SimConfig(n_samples=30, qc_every=10, seed=5)
    planned = [replace(p, rt_shift=0.004 * max(p.position - 20, 0)) for p in plan(cfg)]
    folder = tmp_path / "run"
    folder.mkdir()
    worklist = write_worklist(planned, folder / "worklist.csv")
    paths = [write_injection(p, folder / f"{p.stem}.mzML", cfg) for p in planned]
    store = Store(tmp_path / "db.duckdb")
    ing = RunIngestor(store, assay, RunInfo("RT", "RT"), worklist=load_worklist(worklist))
    ingest_paths(ing, paths)
    every = store.flags("RT", active_only=False)
    trend = every.filter(pl.col("code") == "RT_TREND").sort("created_at", "flag_id")
    shift = store.flags("RT").filter(pl.col("code") == "RT_SHIFT")["position"].to_list()
    assert trend.height >= 3 and shift
    assert set(trend["position"].to_list()) == {trend["position"][0]}  # one injection
    assert trend["position"][0] < min(shift)
    versions = [json.loads(d) for d in trend["details"].to_list()]
    assert len({v["updated_at"] for v in versions}) >= 3
    # truth: 0.004 x (N - 20) > 0.1 min from N = 46; noise moves the first RT_SHIFT earlier
    forecasts = [v["crossing_at"] for v in versions]
    assert abs(forecasts[0] - 46) <= 8
    assert abs(sorted(forecasts)[len(forecasts) // 2] - 46) <= 3
    assert trend.filter(pl.col("active")).height == 1
    # once the RT left the tolerance, the forecast was withdrawn, not left to go stale
    assert any("no longer heads for the tolerance" in m for m in trend["message"].to_list())
    store.close()
