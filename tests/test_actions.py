"""The run-level ``[actions] on_fail`` hook: RUN_FAIL called early runs a real script.

A real monitor on a real folder; the simulator writes a run in which every QC-M reads
+25 %, and the writer holds after the second QC-M: 0 of 2 QC-M passed with one left,
so the run is lost before it ends (``asnmon.qc.run``). The hook is a real script
(tests/helpers_actions/pause_sequence.py) that reads the status file it is pointed at.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Lines, wait_for

from asnmon.monitor import Monitor
from asnmon.simulate import SimConfig, apply_faults, plan_run, simulate_run

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("no_thread_leak")]

PAUSE = Path(__file__).resolve().parent / "helpers_actions" / "pause_sequence.py"
Make = Callable[..., tuple[Monitor, Lines]]
CONFIG = apply_faults(SimConfig(n_samples=20, qc_every=10, seed=3), ["biased-qc:QC-M:25:all"])
QC_M = [p.position for p in plan_run(CONFIG) if p.sample.level == "QC-M"]
N = len(plan_run(CONFIG))


def hook(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(PAUSE), str(out), "{event}", "{run}", "{code}", *extra]


def records(out: Path, event: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(out.glob("paused-*.json")):
        try:
            record = json.loads(path.read_text("utf-8"))
        except ValueError:  # being written
            continue
        if record["args"][0] == event:
            found.append(record)
    return found


def writer(folder: Path, hold_after: int | None) -> tuple[threading.Thread, threading.Event]:
    """The instrument: writes the run, holding after injection ``hold_after`` until released."""
    go = threading.Event()

    def on_written(path: Path) -> None:
        if hold_after is not None and path.name.startswith(f"{hold_after:03d}_"):
            go.wait(120)

    thread = threading.Thread(
        target=simulate_run, args=(folder, CONFIG), kwargs={"on_written": on_written}
    )
    return thread, go


def start(
    make_monitor: Make, folder: Path, command: list[str], **options: Any
) -> tuple[Monitor, Lines]:
    folder.mkdir()
    monitor, lines = make_monitor(folder, on_fail=command, heartbeat_every=1.0, **options)
    assert wait_for(monitor.idle, 10)
    assert wait_for(lambda: monitor._feed is not None, 10)  # flags from now on are new alerts
    return monitor, lines


def test_run_fail_called_early_runs_the_hook_once_with_the_verdict(
    make_monitor: Make, tmp_path: Path
) -> None:
    assert len(QC_M) == 3
    folder, out = tmp_path / "seq", tmp_path / "paused"
    _, lines = start(make_monitor, folder, hook(out, "--status"))
    thread, go = writer(folder, hold_after=QC_M[1])
    thread.start()
    try:
        assert wait_for(lambda: records(out, "run_fail"), 90), lines.all()[-5:]
        [record] = records(out, "run_fail")
        env = record["env"]
        assert (env["ASNMON_EVENT"], env["ASNMON_RUN"], env["ASNMON_CODE"]) == (
            "run_fail",
            "seq",
            "RUN_FAIL",
        )
        assert env["ASNMON_POSITION"] == "" and env["ASNMON_FILE"] == ""  # the run, no file
        # The verdict JSON as the hook read it: FAIL, with the arithmetic, while the
        # instrument still has injections to go (called early, not at the end).
        [run] = record["status"]["runs"]
        assert run["run_id"] == "seq" and run["verdict"] == "fail"
        assert (
            "2 of 2 QC-M QCs failed; with 1 left, at most 1 of 3 can pass"
            in (run["verdict_reason"])
        )
        assert run["injections_in"] == QC_M[1] < N
        assert "RUN_FAIL" in run["run_flags"]
    finally:
        go.set()
        thread.join(120)
    # The rest of the run comes in: the run stays failed and the hook is not run again.
    assert wait_for(lambda: lines.having("RUN FINISHED"), 60), lines.all()[-5:]
    assert wait_for(lambda: len(records(out, "injection_fail")) >= 3, 30)
    assert len(records(out, "run_fail")) == 1


def test_a_hanging_then_failing_run_fail_hook_never_blocks_ingestion(
    make_monitor: Make, tmp_path: Path
) -> None:
    folder, out, gate = tmp_path / "seq", tmp_path / "paused", tmp_path / "gate"
    monitor, lines = start(
        make_monitor, folder, hook(out, "--gate", str(gate), "--exit", "3"), on_fail_timeout=120
    )
    thread, _ = writer(folder, hold_after=None)
    thread.start()
    try:
        # The first hook run hangs (the instrument software does not answer) ...
        assert wait_for(lambda: lines.having("RUN FINISHED"), 90), lines.all()[-5:]
        thread.join(60)
        # ... yet every injection was ingested and the run judged FAIL meanwhile, and no
        # hook run has finished: none of this waited for one.
        assert f"all {N} worklist injections are in" in lines.having("RUN FINISHED")[0]
        assert monitor.store.run_verdicts()["seq"][0] == "fail"
        assert monitor.store.status()["action_runs"] == 0
        assert not list(out.glob("paused-*.json"))
    finally:
        gate.touch()

    # Let go, the hook exits 3 each time: the run_fail run is alerted as a failure, with
    # what it means for the queue, and stored for the banner and the status file.
    def failed() -> list[str]:
        return [x for x in lines.having("ON_FAIL HOOK FAILED") if "(run_fail, run seq)" in x]

    assert wait_for(failed, 120), lines.all()[-5:]
    assert "failed (exit code 3)" in failed()[0] and "may NOT have been paused" in failed()[0]
    assert len(records(out, "run_fail")) == 1  # it did run, once, with the gate open
    assert monitor.beacon.actions.wait_idle(60)
    assert wait_for(lambda: monitor.store.status()["action_failures"] >= 1, 10)
