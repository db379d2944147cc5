"""``asnmon run`` end to end: real observers on real folders, real subprocesses.

Synchronisation is always ``wait_for(condition)`` on what the monitor wrote
(its store, its terminal lines); ``time.sleep`` appears only as a writer's
pacing. The database is queried in-process through the monitor's own store
(DuckDB allows one process), or after a subprocess has exited.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers import Lines, Proc, wait_for

from asnmon.assay import Assay
from asnmon.monitor import Monitor
from asnmon.pipeline import RunIngestor
from asnmon.settings import parse_settings
from asnmon.share import read_share
from asnmon.simulate import SimConfig, SimulatedRun, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("no_thread_leak")]

ROOT = Path(__file__).resolve().parent.parent
HELPERS = Path(__file__).resolve().parent / "helpers_converters"
LINE_TIME = re.compile(r"^\d\d:\d\d:\d\d  ")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulatedRun:
    """One simulated run (30 files: blanks, 8 calibrators, QCs, 4 samples, bracketing set)."""
    return simulate_run(tmp_path_factory.mktemp("sim") / "ASNSIM", SimConfig(n_samples=4))


def by_id(sim: SimulatedRun, sample_id: str) -> Path:
    return next(
        p for p, i in zip(sim.paths, sim.injections, strict=True) if i.sample.sample_id == sample_id
    )


Make = Callable[..., tuple[Monitor, Lines]]


def query(monitor: Monitor, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return monitor.store.reader().execute(sql, params or []).fetchall()


def current_count(monitor: Monitor) -> int:
    return query(monitor, "SELECT count(*) FROM injections WHERE NOT superseded")[0][0]


def versions(monitor: Monitor, file: str) -> list[tuple[int, bool, str | None]]:
    """(version, superseded, active flag codes) of every stored version of a file."""
    return query(
        monitor,
        "SELECT i.version, i.superseded, (SELECT string_agg(f.code, ';' ORDER BY f.code) "
        "FROM flags f WHERE f.injection_id = i.injection_id AND f.active) "
        "FROM injections i WHERE i.file = ? ORDER BY i.version",
        [file],
    )


def write_slowly(path: Path, data: bytes, seconds: float, chunks: int = 6) -> None:
    """An instrument's writer: chunks with pauses shorter than the settle time."""
    step = -(-len(data) // chunks)
    with path.open("wb") as fh:
        for k in range(0, len(data), step):
            fh.write(data[k : k + step])
            fh.flush()
            os.fsync(fh.fileno())
            time.sleep(seconds / chunks)


# ---------------------------------------------------------------- arrival


@pytest.mark.parametrize("poll", [pytest.param(0.0, id="native"), pytest.param(0.1, id="polling")])
def test_progressive_files_ingested_once_when_complete_with_a_live_line(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path, poll: float
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    shutil.copyfile(sim.worklist_path, folder / "worklist.csv")
    monitor, lines = make_monitor(folder, poll=poll)
    names = ["ZERO", *(f"CAL0{k}" for k in range(1, 9)), "QC-M-01", "S0001"]
    chosen = [by_id(sim, s) for s in names]
    for src in chosen:
        write_slowly(folder / src.name, src.read_bytes(), 0.3)
    assert wait_for(lambda: current_count(monitor) == len(chosen), 20)
    for src in chosen:
        rows = query(monitor, "SELECT sha256, version FROM injections WHERE file = ?", [src.name])
        # read once, and only the finished file: the stored hash is the whole file's
        assert rows == [(hashlib.sha256(src.read_bytes()).hexdigest(), 1)]
        (line,) = [x for x in lines.having(src.name) if "skip" not in x]
        sample = next(i.sample for i in sim.injections if i.stem + ".mzML" == src.name)
        assert LINE_TIME.match(line)
        assert sample.sample_id in line
        assert sample.sample_type.value in line
    assert re.search(r"\d µM", lines.having("S0001")[0])  # a concentration, with its unit
    assert not query(monitor, "SELECT * FROM flags WHERE code IN ('INCOMPLETE', 'READ_ERROR')")

    # Duplicate events (a touch, the same bytes rewritten) collapse: nothing new stored.
    again = folder / chosen[0].name
    os.utime(again)
    again.write_bytes(chosen[0].read_bytes())
    assert wait_for(lambda: lines.having("already ingested"), 10)
    assert query(monitor, "SELECT count(*) FROM injections")[0][0] == len(chosen)


def test_changed_file_is_a_new_version_and_the_old_one_is_kept(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor, lines = make_monitor(folder)
    target = folder / "017_S0002.mzML"
    shutil.copyfile(by_id(sim, "S0002"), target)
    assert wait_for(lambda: current_count(monitor) == 1, 10)
    shutil.copyfile(by_id(sim, "S0003"), target)  # re-acquired under the same name
    assert wait_for(lambda: len(versions(monitor, target.name)) == 2, 10)
    (v1, v2) = versions(monitor, target.name)
    assert v1[:2] == (1, True)  # kept, superseded
    assert v2[:2] == (2, False)
    assert "REPLACED" in (v2[2] or "")
    old = query(
        monitor,
        "SELECT r.current FROM results r JOIN injections i USING (injection_id) "
        "WHERE i.file = ? AND i.version = 1",
        [target.name],
    )
    assert old and not any(c for (c,) in old)  # the old result stays, no longer current
    assert any("(v2)" in line for line in lines.having(target.name))


def test_incomplete_then_complete_and_junk_does_not_stop_the_monitor(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor, lines = make_monitor(folder, max_write=0.6)
    data = by_id(sim, "S0001").read_bytes()
    stuck = folder / "016_S0001.mzML"
    stuck.write_bytes(data[: len(data) * 6 // 10])  # the writer stalls mid-file
    assert wait_for(lambda: versions(monitor, stuck.name), 10)
    assert versions(monitor, stuck.name) == [(1, False, "INCOMPLETE")]
    assert wait_for(monitor.idle, 5)  # a file reported INCOMPLETE is not work in hand

    junk = folder / "099_junk.mzML"
    junk.write_bytes(os.urandom(40_000))
    assert wait_for(lambda: versions(monitor, junk.name), 10)
    assert "READ_ERROR" in (versions(monitor, junk.name)[0][2] or "")

    with stuck.open("ab") as fh:  # the writer resumes and finishes
        fh.write(data[len(data) * 6 // 10 :])
    assert wait_for(lambda: len(versions(monitor, stuck.name)) == 2, 10)
    (v1, v2) = versions(monitor, stuck.name)
    assert v1[:2] == (1, True)
    assert v2[:2] == (2, False)
    assert "REPLACED" not in (v2[2] or "")  # completing is not replacing
    assert "INCOMPLETE" not in (v2[2] or "")

    after = folder / "017_S0002.mzML"
    shutil.copyfile(by_id(sim, "S0002"), after)
    assert wait_for(lambda: versions(monitor, after.name), 10)
    assert versions(monitor, after.name)[0][:2] == (1, False)
    assert lines.having("INCOMPLETE")


# ---------------------------------------------------------------- vendor raw files

COPY_CONVERTER = """\
import shutil, sys
from pathlib import Path
src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
tmp = out / (src.stem + ".mzML.partial")
shutil.copyfile({source!r}, tmp)
tmp.replace(out / (src.stem + ".mzML"))
"""


def test_converters_from_settings_ok_fail_and_hang(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    script = tmp_path / "copy_converter.py"
    script.write_text(COPY_CONVERTER.format(source=str(by_id(sim, "S0004"))), encoding="utf-8")
    py = shlex.quote(sys.executable)

    def command(path: Path) -> str:
        return f"{py} {shlex.quote(str(path))} {{input}} {{output_dir}}"

    toml = f"""
[convert]
".raw" = {{command = {command(script)!r}, timeout = 5}}
".wiff" = {{command = {command(HELPERS / "fail_converter.py")!r}, timeout = 5}}
".lcd" = {{command = {command(HELPERS / "hang_converter.py")!r}, timeout = 1}}
"""
    converters = parse_settings(tomllib.loads(toml)).converters
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor, _ = make_monitor(folder, converters=converters)
    for name in ("019_S0004.raw", "020_bad.wiff", "021_stuck.lcd"):
        (folder / name).write_bytes(b"\x01\x00vendor" + bytes(100))
    assert wait_for(lambda: current_count(monitor) == 3, 20)
    results = monitor.store.results()
    converted = results.filter(results["file"] == "019_S0004.mzML").row(0, named=True)
    assert converted["run_id"] == "seq"  # the converted file belongs to the raw file's run
    assert converted["analyte_area"] is not None  # read and integrated (no curve: provisional)
    assert converted["error"] is None
    flags = monitor.store.flags("seq")
    errors = dict(zip(flags["file"], flags["message"], strict=True))
    assert "exited with status 1" in errors["020_bad.wiff"]
    assert "unsupported vendor format" in errors["020_bad.wiff"]  # the end of its stderr
    assert "timed out after 1 s" in errors["021_stuck.lcd"]
    codes = set(flags.filter(flags["file"] != "019_S0004.mzML")["code"])
    assert codes == {"CONVERT_ERROR"}


# ---------------------------------------------------------------- restarts


def test_restart_reconciles_what_arrived_while_down_in_acquisition_order(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    base = time.time() - 1000

    def place(paths: tuple[Path, ...], first: int) -> list[str]:
        """Copy in, with file times in reverse acquisition order: they must not decide."""
        for k, src in enumerate(reversed(paths)):
            dst = folder / src.name
            shutil.copyfile(src, dst)
            os.utime(dst, (base + first + k, base + first + k))
        return [p.name for p in paths]  # the files' own startTimeStamps

    first = place(sim.paths[:6], 0)
    monitor, _ = make_monitor(folder)
    assert wait_for(lambda: current_count(monitor) == 6, 15)
    monitor.stop()

    second = place(sim.paths[6:14], 100)
    monitor, lines = make_monitor(folder)
    assert wait_for(lambda: current_count(monitor) == 14, 15)
    assert wait_for(monitor.idle, 5)
    rows = query(monitor, "SELECT file, count(*) FROM injections GROUP BY file")
    assert {f: n for f, n in rows} == dict.fromkeys(first + second, 1)  # nothing twice
    order = [f for (f,) in query(monitor, "SELECT file FROM injections ORDER BY injection_id")]
    assert order == first + second  # the files' own acquisition order, not their mtimes
    assert len(lines.having("already ingested")) == 6


def test_restart_fits_calibrators_stored_but_not_fitted_before_a_kill(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path, assay: Assay
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    shutil.copyfile(sim.worklist_path, folder / "worklist.csv")
    cals = [p for p, i in zip(sim.paths, sim.injections, strict=True) if i.position <= 11]
    for src in cals:
        shutil.copyfile(src, folder / src.name)
    run = RunInfo("seq", "seq", str(folder), None, assay.name, assay.unit, 1.0, 500.0, None)
    with Store(tmp_path / "monitor.duckdb") as store:  # what the killed worker had committed
        ingestor = RunIngestor(store, assay, run, load_worklist(folder / "worklist.csv"))
        for src in cals:
            ingestor.ingest(folder / src.name)  # no flush(): killed before the idle refit
    monitor, _ = make_monitor(folder)
    shutil.copyfile(by_id(sim, "S0001"), folder / "016_S0001.mzML")
    assert wait_for(lambda: current_count(monitor) == len(cals) + 1, 15)
    assert wait_for(monitor.idle, 5)
    assert monitor.store.calibrations("seq").height >= 1
    assert results(monitor, "seq")["S0001"]["conc"] is not None


@pytest.fixture
def procs(no_thread_leak: None) -> Iterator[Callable[[list[str]], Proc]]:
    started: list[Proc] = []

    def start(argv: list[str]) -> Proc:
        started.append(Proc(argv))
        return started[-1]

    yield start
    for proc in started:
        proc.close()


def run_argv(*args: str) -> list[str]:
    """``python -m asnmon.cli run ...``, as a user types it."""
    return [sys.executable, "-m", "asnmon.cli", "run", *args]


def test_cli_dispatches_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asnmon.cli", "run", "--db", str(tmp_path / "x.duckdb")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "no folder to watch" in done.stderr


def stored(db: Path) -> dict[str, tuple[int, int, int]]:
    """Per file: (injection rows, current injection rows, current results of those)."""
    with Store(db, read_only=True) as store:
        rows = (
            store.reader()
            .execute(
                "SELECT i.file, count(DISTINCT i.injection_id), "
                "count(DISTINCT i.injection_id) FILTER (WHERE NOT i.superseded), "
                "count(r.result_id) FILTER (WHERE r.current AND NOT i.superseded) "
                "FROM injections i LEFT JOIN results r USING (injection_id) GROUP BY i.file"
            )
            .fetchall()
        )
    return {f: (a, b, c) for f, a, b, c in rows}


def test_kill_9_mid_run_loses_nothing_and_sigterm_stops_cleanly(
    procs: Callable[[list[str]], Proc], sim: SimulatedRun, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "run.duckdb"
    shutil.copyfile(sim.worklist_path, folder / "worklist.csv")
    names = [p.name for p in sim.paths]
    argv = run_argv("--watch", str(folder), "--db", str(db), "--no-dashboard", "--settle", "0.2")

    def instrument() -> None:
        for src in sim.paths:
            write_slowly(folder / src.name, src.read_bytes(), 0.1, chunks=3)

    writer = threading.Thread(target=instrument, name="test-instrument")
    first = procs(argv)
    assert wait_for(lambda: first.having("watching"), 30), first.lines
    writer.start()
    try:
        assert wait_for(lambda: len([n for n in names if first.having(n)]) >= 8, 30)
        first.popen.send_signal(signal.SIGKILL)  # mid-run: files keep arriving
        assert first.finish() == -signal.SIGKILL
    finally:
        writer.join(30)
    before = [n for n in names if first.having(n)]

    second = procs(argv)
    assert wait_for(lambda: all(second.having(n) for n in names), 60), second.lines
    second.popen.send_signal(signal.SIGTERM)
    assert second.finish() == 0, second.stderr
    assert second.having("stopped cleanly")

    assert stored(db) == dict.fromkeys(names, (1, 1, 1))  # every file once, with one result
    skipped = {n for n in names if any("already ingested" in x for x in second.having(n))}
    assert set(before) <= skipped  # what the killed process committed was kept, not redone


def test_sigint_stops_cleanly_with_live_lines_on_stdout(
    procs: Callable[[list[str]], Proc], sim: SimulatedRun, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "run.duckdb"
    chosen = [by_id(sim, s) for s in ("CAL02", "QC-L-01", "S0002")]
    for src in chosen:
        shutil.copyfile(src, folder / src.name)
    proc = procs(run_argv("--watch", str(folder), "--db", str(db), "--no-dashboard"))
    assert wait_for(lambda: all(proc.having(p.name) for p in chosen), 30), proc.lines
    proc.popen.send_signal(signal.SIGINT)
    assert proc.finish() == 0, proc.stderr
    assert proc.having("stopped cleanly")
    for src in chosen:
        (line,) = proc.having(src.name)
        assert LINE_TIME.match(line)
    assert "CAL02" in proc.having(chosen[0].name)[0]
    assert stored(db) == {p.name: (1, 1, 1) for p in chosen}


# ---------------------------------------------------------------- folder loss


def test_folder_removed_and_recreated(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor, lines = make_monitor(folder)
    for src in sim.paths[:2]:
        shutil.copyfile(src, folder / src.name)
    assert wait_for(lambda: current_count(monitor) == 2, 10)

    shutil.rmtree(folder)
    assert wait_for(lambda: lines.having("FOLDER LOST"), 10)
    assert wait_for(lambda: monitor.store.status().get("watcher") == "unreachable", 5)
    folder.mkdir()  # written while the monitor still thinks the folder is gone
    for src in sim.paths[2:4]:
        shutil.copyfile(src, folder / src.name)
    assert wait_for(lambda: lines.having("FOLDER BACK"), 10)
    assert wait_for(lambda: monitor.store.status().get("watcher") == "watching", 5)
    for src in sim.paths[4:6]:
        shutil.copyfile(src, folder / src.name)
    assert wait_for(lambda: current_count(monitor) == 6, 10)
    rows = query(monitor, "SELECT file, count(*) FROM injections GROUP BY file")
    assert dict(rows) == {p.name: 1 for p in sim.paths[:6]}


# ---------------------------------------------------------------- run life cycle


def results(monitor: Monitor, run_id: str) -> dict[str, dict[str, Any]]:
    frame = monitor.store.results(run_id)
    return {row["sample_id"]: row for row in frame.iter_rows(named=True)}


def test_run_life_cycle_provisional_then_curve_then_bracketing_then_new_run(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    root = tmp_path / "instrument"
    seq1, seq2 = root / "seq1", root / "seq2"
    seq1.mkdir(parents=True)
    monitor, _ = make_monitor(root, recursive=True)
    run1, run2 = "instrument/seq1", "instrument/seq2"
    shutil.copyfile(sim.worklist_path, seq1 / "worklist.csv")
    pos = {i.sample.sample_id: i.position for i in sim.injections}
    samples = ["S0001", "S0002", "S0003", "S0004"]

    # Samples before any calibrator: stored, provisional.
    for s in samples:
        shutil.copyfile(by_id(sim, s), seq1 / by_id(sim, s).name)
    assert wait_for(lambda: len(results(monitor, run1)) == 4, 15)
    for row in results(monitor, run1).values():
        assert row["conc"] is None
        assert "NO_CALIBRATION" in row["flags"]

    # The first calibrator set: a curve, and the samples re-quantified against it.
    for p in sim.paths[: pos["CAL08"]]:
        shutil.copyfile(p, seq1 / p.name)
    assert wait_for(lambda: monitor.store.calibrations(run1).height >= 1, 15)
    assert wait_for(lambda: all(results(monitor, run1)[s]["conc"] for s in samples), 10)
    assert wait_for(monitor.idle, 5)
    first = monitor.store.calibrations(run1).row(-1, named=True)
    assert first["accepted"]
    for s in samples:
        assert "NO_CALIBRATION" not in results(monitor, run1)[s]["flags"]

    # The bracketing set: a new curve version, the run re-quantified, history kept.
    for p in sim.paths[pos["CAL08"] :]:
        shutil.copyfile(p, seq1 / p.name)
    assert wait_for(lambda: len(results(monitor, run1)) == len(sim.paths), 15)
    assert wait_for(monitor.idle, 5)
    cals = monitor.store.calibrations(run1)
    last = cals.row(-1, named=True)
    assert last["version"] > first["version"]
    assert last["accepted"]
    rows = query(
        monitor,
        "SELECT r.current, r.calibration_id, r.calibration_version, c.version "
        "FROM results r JOIN injections i USING (injection_id) "
        "LEFT JOIN calibrations c USING (calibration_id) WHERE i.run_id = ? AND i.sample_id = ?",
        [run1, "S0001"],
    )
    current = [r for r in rows if r[0]]
    assert len(current) == 1
    assert current[0][1:] == (last["calibration_id"], last["version"], last["version"])
    old = [r for r in rows if not r[0]]
    assert old  # the provisional and the first-curve results stay, not current
    assert {r[2] for r in old if r[1] is not None} <= set(cals["version"])

    # A new sequence sub-folder is a new run: without carry-over its samples wait for a curve.
    seq2.mkdir()
    shutil.copyfile(sim.worklist_path, seq2 / "worklist.csv")
    for s in samples[:2]:
        shutil.copyfile(by_id(sim, s), seq2 / by_id(sim, s).name)
    assert wait_for(lambda: len(results(monitor, run2)) == 2, 15)
    assert all(r["conc"] is None for r in results(monitor, run2).values())
    assert set(monitor.store.runs()["run_id"]) == {run1, run2}


def test_a_forgotten_run_is_restored_when_it_gets_another_file(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the newest runs stay in memory; an older one comes back from the database."""
    monkeypatch.setattr("asnmon.runbook.OPEN_RUNS", 1)
    root = tmp_path / "instrument"
    seq1, seq2 = root / "seq1", root / "seq2"
    seq1.mkdir(parents=True)
    seq2.mkdir()
    for seq in (seq1, seq2):
        shutil.copyfile(sim.worklist_path, seq / "worklist.csv")
    monitor, lines = make_monitor(root, recursive=True)
    for src in sim.paths[:12]:  # blanks and a whole calibrator set: seq1 has a curve
        shutil.copyfile(src, seq1 / src.name)
    assert wait_for(lambda: len(results(monitor, "instrument/seq1")) == 12, 15)
    shutil.copyfile(by_id(sim, "S0001"), seq2 / by_id(sim, "S0001").name)
    assert wait_for(lambda: len(results(monitor, "instrument/seq2")) == 1, 10)
    shutil.copyfile(by_id(sim, "S0002"), seq1 / by_id(sim, "S0002").name)
    assert wait_for(lambda: len(results(monitor, "instrument/seq1")) == 13, 10)
    assert results(monitor, "instrument/seq1")["S0002"]["conc"] is not None  # curve restored
    assert len(lines.having("run instrument/seq1:")) == 2  # opened, forgotten, reopened
    rows = query(monitor, "SELECT count(*), count(DISTINCT file || run_id) FROM injections")
    assert rows == [(14, 14)]


def test_carry_over_gives_a_new_runs_early_samples_the_last_curve(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    root = tmp_path / "instrument"
    seq1, seq2 = root / "seq1", root / "seq2"
    seq1.mkdir(parents=True)
    monitor, _ = make_monitor(root, recursive=True, carry_calibration=True)
    run1, run2 = "instrument/seq1", "instrument/seq2"
    shutil.copyfile(sim.worklist_path, seq1 / "worklist.csv")
    pos = {i.sample.sample_id: i.position for i in sim.injections}
    for p in sim.paths[: pos["CAL08"]]:
        shutil.copyfile(p, seq1 / p.name)
    assert wait_for(lambda: len(results(monitor, run1)) == pos["CAL08"], 15)
    assert wait_for(monitor.idle, 5)
    assert monitor.store.calibrations(run1).row(-1, named=True)["accepted"]

    seq2.mkdir()
    shutil.copyfile(sim.worklist_path, seq2 / "worklist.csv")
    for s in ("S0001", "S0002"):
        shutil.copyfile(by_id(sim, s), seq2 / by_id(sim, s).name)
    assert wait_for(lambda: len(results(monitor, run2)) == 2, 5)
    carried = monitor.store.calibrations(run2).row(0, named=True)
    assert carried["version"] == 0
    assert run1 in (carried["carried_over_from"] or "")
    for row in results(monitor, run2).values():
        assert row["conc"] is not None
        assert row["calibration_id"] == carried["calibration_id"]


# ---------------------------------------------------------------- demo


def test_demo_runs_as_a_subprocess(procs: Callable[[list[str]], Proc]) -> None:
    proc = procs(
        [
            sys.executable,
            "-m",
            "asnmon.cli",
            "demo",
            "--no-dashboard",
            "--exit-when-done",
            "--interval",
            "0.05",
            "--samples",
            "10",
        ]
    )

    def ended() -> bool:
        return proc.popen.poll() is not None or any("Traceback" in x for x in proc.errors)

    # A crashed simulator thread prints its traceback on stderr and the demo hangs:
    # watch for "run demo-run" (the summary) with a bound, then look at stderr.
    # The truncated file is reported INCOMPLETE after the demo's 20 s max_write.
    finished = wait_for(ended, 90)
    if proc.popen.poll() is None:
        proc.popen.kill()
    code = proc.finish()
    assert finished
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert code == 0
    assert proc.having("CAL01")
    assert proc.having("run demo-run")
    assert proc.having("flags:")


# ---------------------------------------------------------------- operations hooks


class _Posts(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


def test_monitor_alerts_shares_and_backs_up(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    """A fail flag reaches a webhook, the run reaches the share, a backup is taken."""
    _Posts.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Posts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        folder = tmp_path / "seq"
        folder.mkdir()
        (tmp_path / "share").mkdir()  # a share is mounted, never created by asnmon
        monitor, _ = make_monitor(
            folder,
            webhook=f"http://127.0.0.1:{server.server_address[1]}/hook",
            webhook_kind="slack",
            batch_seconds=0.2,
            instrument="QQQ-test",
            share_dir=str(tmp_path / "share"),
            share_every=0.0,
            backup_dir=str(tmp_path / "backups"),
            backup_every=0.0003,  # hours: about one a second
            backup_keep=2,
        )
        shutil.copyfile(sim.worklist_path, folder / "worklist.csv")
        (folder / "099_JUNK.mzML").write_bytes(bytes(range(7, 250)) * 50)
        for p in sim.paths[:4]:
            shutil.copyfile(p, folder / p.name)
        assert wait_for(lambda: current_count(monitor) == 5, 15)
        assert wait_for(lambda: any("READ_ERROR" in json.dumps(m) for m in _Posts.received), 15)
        assert all("text" in m for m in _Posts.received)  # Slack's shape
        assert "QQQ-test" in json.dumps(_Posts.received)

        def backed_up() -> bool:
            newest = sorted((tmp_path / "backups").glob("asnmon-*.duckdb"))[-1:]
            if not newest:
                return False
            with Store(newest[0], read_only=True) as copy:
                return copy.results().height == 5

        assert wait_for(backed_up, 15)
        assert len(list((tmp_path / "backups").glob("asnmon-*.duckdb"))) <= 2  # rotated
        assert wait_for(lambda: list((tmp_path / "share").glob("*.parquet")), 10)
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
    monitor.stop()
    shared = read_share(tmp_path / "share")
    assert shared.height == 5


def test_backup_while_the_monitor_runs(
    procs: Callable[[list[str]], Proc], sim: SimulatedRun, tmp_path: Path
) -> None:
    """DuckDB lets no second process open the file: `asnmon backup` asks the monitor."""
    folder = tmp_path / "seq"
    folder.mkdir()
    for p in sim.paths[:5]:
        shutil.copyfile(p, folder / p.name)
    db = tmp_path / "live.duckdb"
    monitor = procs(
        run_argv("--watch", str(folder), "--db", str(db), "--no-dashboard", "--settle", "0.2")
    )
    assert wait_for(lambda: len(monitor.having(".mzML")) >= 5, 30), monitor.stderr
    copy = tmp_path / "copy.duckdb"
    backup = subprocess.run(
        [
            sys.executable,
            "-m",
            "asnmon.cli",
            "backup",
            "--db",
            str(db),
            "--to",
            str(copy),
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert backup.returncode == 0, backup.stderr
    assert "asked it for the backup" in backup.stdout
    assert monitor.having("backup on request")
    with Store(copy, read_only=True) as store:
        assert store.results().height == 5
    monitor.popen.send_signal(signal.SIGTERM)
    assert monitor.finish() == 0
