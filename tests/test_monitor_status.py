"""The monitor's heartbeat, stall / resumed / finished alerts, status file and on_fail hook.

Real monitors on real folders; the run is written by the simulator in real
time (its startTimeStamps are the wall clock), paused mid-run as a stalled
instrument would be.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import Lines, wait_for

from asnmon.actions import STATUS_SCHEMA, STATUS_VERSION, status_file_path
from asnmon.heartbeat import monitor_seen
from asnmon.monitor import Monitor
from asnmon.monitor_chores import CHECKPOINT_IDLE_BYTES
from asnmon.simulate import SimConfig, simulate_run, write_injection

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("no_thread_leak")]

PAUSE = Path(__file__).resolve().parent / "helpers_actions" / "pause_sequence.py"
Make = Callable[..., tuple[Monitor, Lines]]


def status_file(monitor: Monitor) -> dict[str, Any]:
    try:
        return json.loads(monitor.beacon.status_file.read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def test_stalled_resumed_and_finished_on_a_run_delivered_in_real_time(
    make_monitor: Make, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    monitor, lines = make_monitor(folder, heartbeat_every=0.5, stall_factor=3.0)
    hold = threading.Event()
    go = threading.Event()

    def on_written(path: Path) -> None:
        if path.name.startswith("012_"):  # the instrument stops after injection 12
            hold.set()
            go.wait(60)

    writer = threading.Thread(
        target=simulate_run,
        args=(folder, SimConfig(n_samples=2)),
        kwargs={"interval": 1.0, "on_written": on_written},
    )
    writer.start()
    try:
        assert wait_for(hold.is_set, 60)
        # No file for 3 x the median interval (1 s from the start stamps): stalled.
        assert wait_for(lambda: lines.having("INSTRUMENT STALLED"), 20), lines.all()[-5:]
        [line] = lines.having("INSTRUMENT STALLED")
        assert "3 x the run's median injection interval (1 s)" in line
        assert "12 of 28 worklist injections are in" in line
        assert wait_for(lambda: monitor.store.status()["instrument"] == "stalled", 5)
        status = monitor.store.status()
        assert status["median_interval"] == 1.0
        assert status["in_worklist"] == 12 and status["planned"] == 28
        assert any("INSTRUMENT STALLED" in p for p in monitor.health()["problems"])
        assert wait_for(
            lambda: status_file(monitor).get("monitor", {}).get("instrument") == "stalled", 5
        )
        # Said once, not at every heartbeat.
        time.sleep(1.5)
        assert len(lines.having("INSTRUMENT STALLED")) == 1
    finally:
        go.set()
        writer.join(120)
    assert wait_for(lambda: lines.having("INSTRUMENT RESUMED"), 20)
    assert "files come again" in lines.having("INSTRUMENT RESUMED")[0]
    assert wait_for(lambda: lines.having("RUN FINISHED"), 30), lines.all()[-5:]
    [done] = lines.having("RUN FINISHED")
    assert "all 28 worklist injections are in" in done and "Verdict" in done
    assert "open FAIL flag(s)" in done
    assert not any("INSTRUMENT STALLED" in p for p in monitor.health()["problems"])
    assert wait_for(lambda: monitor.store.status().get("instrument") == "finished", 10)
    assert wait_for(lambda: status_file(monitor)["monitor"]["instrument"] == "finished", 10)
    doc = status_file(monitor)
    assert (doc["schema"], doc["version"]) == (STATUS_SCHEMA, STATUS_VERSION)
    [run] = doc["runs"]
    assert run["run_id"] == "seq" and run["injections_in"] == 28
    assert [i["position"] for i in run["injections"]] == list(range(1, 29))
    assert {i["verdict"] for i in run["injections"]} <= {"pass", "warning", "fail"}
    assert run["verdict"] == monitor.store.run_verdicts()["seq"][0]
    # A restart does not send the summary again.
    monitor.stop()
    assert monitor.beacon.status_file.exists()
    stopped = json.loads(monitor.beacon.status_file.read_text("utf-8"))["monitor"]
    assert monitor_seen(stopped, time.time())[1].startswith("monitor stopped")
    again, lines2 = make_monitor(folder, heartbeat_every=0.5)
    assert wait_for(lambda: again.store.status().get("instrument") == "finished", 15)
    assert not lines2.having("RUN FINISHED")


def test_the_status_file_is_beside_the_database_and_beats_on_a_timer(
    make_monitor: Make, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor, _ = make_monitor(folder, heartbeat_every=1.0)
    path = status_file_path(monitor.store.path)
    assert monitor.beacon.status_file == path == tmp_path / "monitor.status.json"
    assert wait_for(path.exists, 10)
    first = json.loads(path.read_text("utf-8"))["written_epoch"]
    # Nothing happens in the folder, yet the heartbeat comes again.
    assert wait_for(lambda: json.loads(path.read_text("utf-8"))["written_epoch"] > first, 10)
    status = monitor.store.status()
    assert status["heartbeat_every"] == 1.0 and status["instrument"] == "waiting"
    assert monitor_seen(status, time.time())[0]
    assert not list(tmp_path.glob(".monitor.status.json.*"))  # no temp file left behind


def test_a_long_catch_up_beats_says_its_backlog_and_checkpoints_once_dry(
    make_monitor: Make, tmp_path: Path
) -> None:
    """The soak's catch-up of 1,645 files left the status file > 15 min old: only the
    idle path wrote it, and a queue that never runs dry is never idle. Its write-ahead
    log grew to 36 MB: DuckDB's own checkpoint never came."""
    import shutil

    sim = simulate_run(tmp_path / "sim", SimConfig(n_samples=4))
    folder = tmp_path / "seq"
    for k in range(3):  # three runs already on disk: one long reconciliation
        run = folder / f"run{k}"
        run.mkdir(parents=True)
        for src in sim.paths:
            shutil.copyfile(src, run / src.name)
    total = 3 * len(sim.paths)
    monitor, _ = make_monitor(folder, heartbeat_every=0.5, recursive=True)
    path = monitor.beacon.status_file
    busy: dict[float, int] = {}  # written_epoch -> backlog, for beats written while behind
    stored = wal = 0
    deadline = time.monotonic() + 120
    while stored < total and time.monotonic() < deadline:
        wal = max(wal, monitor.store.wal_bytes())
        doc = status_file(monitor).get("monitor", {})
        if doc.get("backlog"):
            busy[doc["updated"]] = doc["backlog"]
        rows = monitor.store.reader().execute("SELECT count(*) FROM injections").fetchone()
        stored = int(rows[0]) if rows else 0
        time.sleep(0.05)
    assert stored == total
    assert len(busy) >= 3, busy  # several beats while files were still waiting
    assert max(busy.values()) <= total
    assert list(busy.values()) == sorted(busy.values(), reverse=True)  # the backlog shrinks
    assert wait_for(monitor.idle, 30)
    assert wait_for(lambda: status_file(monitor)["monitor"]["backlog"] == 0, 10)
    assert path.exists()
    assert wal >= CHECKPOINT_IDLE_BYTES  # enough for the queue-dry checkpoint
    assert wait_for(lambda: monitor.store.wal_bytes() < CHECKPOINT_IDLE_BYTES, 10)
    print(f"write-ahead log: {wal / 2**20:.1f} MB at most, {monitor.store.wal_bytes():,} B dry")


def hook(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(PAUSE), str(out), "{event}", "{run}", "{file}", *extra]


def write_junk(folder: Path, name: str) -> None:
    (folder / name).write_bytes(b"\x00junk" * 5000)  # READ_ERROR: a FAIL flag


def test_on_fail_hook_pauses_the_sequence_once_per_failed_injection(
    make_monitor: Make, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    out = tmp_path / "paused"
    monitor, lines = make_monitor(folder, on_fail=hook(out))
    assert wait_for(monitor.idle, 10)
    time.sleep(0.5)  # the alert feed starts at the first idle moment: later flags are new
    write_junk(folder, "005_S0001.mzML")
    assert wait_for(lambda: list(out.glob("paused-*.json")), 30), lines.all()[-5:]
    [record] = [json.loads(p.read_text("utf-8")) for p in out.glob("paused-*.json")]
    assert record["args"] == ["injection_fail", "seq", "005_S0001.mzML"]
    assert record["env"]["ASNMON_STATUS_FILE"] == str(monitor.beacon.status_file)
    assert record["env"]["ASNMON_CODE"] == "READ_ERROR"
    assert wait_for(lambda: lines.having("on_fail hook"), 10)
    assert monitor.beacon.actions.wait_idle(10)
    # The status file the hook is told about already shows the failed injection.
    doc = status_file(monitor)
    [inj] = [i for i in doc["runs"][0]["injections"] if i["file"] == "005_S0001.mzML"]
    assert inj["verdict"] == "fail" and "READ_ERROR" in inj["flags"]
    assert wait_for(lambda: monitor.store.status()["action_runs"] == 1, 10)
    assert monitor.store.status()["action_last"]["ok"] is True
    write_junk(folder, "006_S0002.mzML")  # another injection fails: the hook runs again
    assert wait_for(lambda: len(list(out.glob("paused-*.json"))) == 2, 30)
    assert monitor.beacon.actions.wait_idle(10)
    time.sleep(1.0)  # ... and only for it: each failed injection once
    assert len(list(out.glob("paused-*.json"))) == 2


@pytest.mark.parametrize(
    ("extra", "timeout", "said"),
    [
        (("--exit", "3"), 30.0, "failed (exit code 3)"),
        (("--sleep", "30"), 1.0, "did not finish within 1 s"),
    ],
    ids=["exit-code", "timeout"],
)
def test_a_failing_hook_is_alerted_and_the_monitor_goes_on(
    make_monitor: Make, tmp_path: Path, extra: tuple[str, ...], timeout: float, said: str
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor, lines = make_monitor(
        folder, on_fail=hook(tmp_path / "paused", *extra), on_fail_timeout=timeout
    )
    assert wait_for(monitor.idle, 10)
    time.sleep(0.5)
    write_junk(folder, "005_S0001.mzML")
    assert wait_for(lambda: lines.having("ON_FAIL HOOK FAILED"), 40), lines.all()[-5:]
    line = lines.having("ON_FAIL HOOK FAILED")[0]
    assert said in line and "may NOT have been paused" in line
    assert said in (monitor.health()["last_error"] or "")
    write_junk(folder, "006_S0002.mzML")  # the monitor still ingests
    assert wait_for(lambda: lines.having("006_S0002"), 20)


def test_a_hook_that_cannot_start_is_reported(make_monitor: Make, tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor, lines = make_monitor(folder, on_fail=[str(tmp_path / "no-such-program")])
    assert wait_for(monitor.idle, 10)
    time.sleep(0.5)
    write_junk(folder, "005_S0001.mzML")
    assert wait_for(lambda: lines.having("could not start"), 30), lines.all()[-5:]


def test_status_file_links_a_reinjection_and_counts_agree(
    make_monitor: Make, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    config = SimConfig(n_samples=2)
    sim = simulate_run(folder, config)
    planned = next(i for i in sim.injections if i.sample.sample_id == "S0001")
    write_injection(planned, folder / "099_S0001_R.mzML", replace(config, seed=config.seed + 1))
    monitor, lines = make_monitor(folder, heartbeat_every=0.5)
    assert wait_for(lambda: lines.having("RUN FINISHED"), 120), lines.all()[-5:]
    assert "+ 1 not in the worklist (re-injections)" in lines.having("RUN FINISHED")[0]

    def run() -> dict[str, Any]:
        runs = status_file(monitor).get("runs") or [{}]
        return runs[0]

    assert wait_for(lambda: run().get("injections_in") == 29, 20)
    doc = run()
    assert (doc["in_worklist"], doc["not_in_worklist"]) == (28, 1)
    [extra] = [i for i in doc["injections"] if not i["in_worklist"]]
    assert extra["file"] == "099_S0001_R.mzML"
    assert extra["reinjection_of"] == planned.position
    status = monitor.store.status()
    assert (status["injections"], status["in_worklist"], status["not_in_worklist"]) == (29, 28, 1)
