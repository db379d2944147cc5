"""A file's result is its current content; copies are recorded; any name the OS gives is stored.

Real simulated mzML files, real DuckDB files, and the monitor as a real
subprocess where a restart or the terminal matters.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import Proc, wait_for

from asnmon.assay import Assay
from asnmon.names import from_db
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.simulate import SimConfig, SimulatedRun, simulate_run, write_injection
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

CONFIG = SimConfig(n_samples=4, seed=17)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulatedRun:
    return simulate_run(tmp_path_factory.mktemp("sim") / "IDSIM", CONFIG)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def named(sim: SimulatedRun, stem: str) -> Path:
    return next(p for p in sim.paths if p.stem == stem)


def rows(store: Store, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return store.reader().execute(sql, params or []).fetchall()


def copy_run(sim: SimulatedRun, folder: Path) -> list[Path]:
    folder.mkdir()
    shutil.copyfile(sim.worklist_path, folder / "worklist.csv")
    return [Path(shutil.copyfile(p, folder / p.name)) for p in sim.paths]


# ---------------------------------------------------------------- A -> B -> A


def test_a_file_rewritten_a_b_a_has_a_as_its_current_result(
    sim: SimulatedRun, tmp_path: Path, assay: Assay
) -> None:
    folder = tmp_path / "run"
    paths = copy_run(sim, folder)
    target = folder / "016_S0001.mzML"
    content_a = target.read_bytes()
    with Store(tmp_path / "a.duckdb") as store:
        ingestor = RunIngestor(
            store, assay, RunInfo("run", "run"), load_worklist(folder / "worklist.csv")
        )
        ingest_paths(ingestor, paths)
        (ratio_a,) = store.results("run").filter(file=target.name)["area_ratio"].to_list()

        planned = next(i for i in sim.injections if i.stem == target.stem)
        write_injection(replace(planned, true_conc_vial=planned.true_conc_vial * 3), target, CONFIG)
        b = ingestor.ingest(target)
        assert b.stored and b.version == 2
        (ratio_b,) = store.results("run").filter(file=target.name)["area_ratio"].to_list()
        assert ratio_b > 2 * ratio_a  # B really is other content

        target.write_bytes(content_a)  # back to A: today "already ingested", B stays current
        again = ingestor.ingest(target)
        assert again.stored and again.version == 3, again.message
        current = store.results("run").filter(file=target.name)
        assert current["area_ratio"].to_list() == [ratio_a]
        assert "REPLACED" in current["flags"][0]
        history = rows(
            store,
            "SELECT version, superseded, sha256 FROM injections WHERE file = ? ORDER BY version",
            [target.name],
        )
        digest_a = hashlib.sha256(content_a).hexdigest()
        assert [(v, s) for v, s, _ in history] == [(1, True), (2, True), (3, False)]
        assert history[0][2] == history[2][2] == digest_a != history[1][2]
        # unchanged content is still not stored twice
        assert not ingestor.ingest(target).stored


# ---------------------------------------------------------------- copies


def test_same_content_under_a_second_name_is_recorded_as_a_duplicate(
    sim: SimulatedRun, tmp_path: Path, assay: Assay
) -> None:
    """A copy of CAL03 named like CAL05: kept and shown, never a point of the curve."""
    folder = tmp_path / "run"
    paths = copy_run(sim, folder)
    db = tmp_path / "d.duckdb"
    with Store(db) as store:
        ingestor = RunIngestor(
            store, assay, RunInfo("run", "run"), load_worklist(folder / "worklist.csv")
        )
        ingest_paths(ingestor, paths)
        fitted_before = store.fitted_calibrators("run")
        versions_before = store.calibration_versions("run")
        copy = Path(shutil.copyfile(folder / "006_CAL03.mzML", folder / "099_CAL05.mzML"))
        report = ingestor.ingest(copy)
        ingestor.flush()
        assert report.stored and report.injection_id is not None, report.message
        flags = store.flags("run").filter(injection_id=report.injection_id)
        dup = flags.filter(code="DUPLICATE").row(0, named=True)
        assert dup["severity"] == "warning"
        assert "same content, byte for byte, as 006_CAL03.mzML" in dup["message"]
        assert "not used for the curve" in dup["message"] and dup["action"]
        assert store.calibration_versions("run") == versions_before
        assert store.fitted_calibrators("run") == fitted_before
        ids = ingestor.calibration_points()[1]
        assert report.injection_id not in ids
        assert report.injection_id not in {h.injection_id for h in ingestor.history}
        # the original is untouched: no flag on it, still current
        original = store.results("run").filter(file="006_CAL03.mzML")
        assert original.height == 1 and "DUPLICATE" not in original["flags"][0]

        # a renamed file (the original gone from the folder) says so
        moved = folder / "098_S0001-renamed.mzML"
        os.replace(folder / "016_S0001.mzML", moved)
        renamed = ingestor.ingest(moved)
        assert renamed.outcome is not None
        (message,) = [f.message for f in renamed.outcome.flags if f.code == "DUPLICATE"]
        assert "016_S0001.mzML, which is no longer in the folder (renamed?)" in message

    # a restart remembers which rows are copies, and judges alike
    with Store(db) as store:
        restored = RunIngestor(
            store, assay, RunInfo("run", "run"), load_worklist(folder / "worklist.csv")
        )
        assert restored.calibration_points()[1] == ids
        assert report.injection_id not in {h.injection_id for h in restored.history}
        assert not restored.ingest(copy).stored  # same name, same content: already in


# ---------------------------------------------------------------- the monitor, killed


@pytest.fixture
def procs() -> Iterator[Any]:
    started: list[Proc] = []

    def start(folder: Path, db: Path) -> Proc:
        argv = [sys.executable, "-m", "asnmon.cli", "run", "--watch", str(folder)]
        argv += ["--db", str(db), "--no-dashboard", "--settle", "0.2"]
        started.append(Proc(argv))
        return started[-1]

    yield start
    for proc in started:
        proc.close()


@pytest.mark.timeout(180)
def test_a_b_a_across_a_kill_9_gives_a_new_version_a(
    procs: Any, sim: SimulatedRun, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "m.duckdb"
    others = [named(sim, s) for s in ("002_DBLANK", "012_BLANK", "017_S0002")]
    content_a = named(sim, "016_S0001").read_bytes()
    content_b = named(sim, "018_S0003").read_bytes()
    target = folder / "016_S0001.mzML"

    first = procs(folder, db)
    assert wait_for(lambda: first.having("watching"), 60), first.lines
    for p in others:
        shutil.copyfile(p, folder / p.name)
    target.write_bytes(content_a)
    assert wait_for(lambda: all(first.having(p.name) for p in [*others, target]), 60)
    target.write_bytes(content_b)
    assert wait_for(lambda: first.having(f"{target.name}") and first.having("(v2)"), 60)
    first.popen.send_signal(signal.SIGKILL)
    assert first.finish() == -signal.SIGKILL

    target.write_bytes(content_a)  # back to A while the monitor is down
    second = procs(folder, db)
    assert wait_for(lambda: second.having("(v3)"), 60), second.lines
    assert wait_for(lambda: all(second.having(p.name) for p in others), 60)
    second.popen.send_signal(signal.SIGTERM)
    assert second.finish() == 0, second.stderr

    with Store(db, read_only=True) as store:
        got = rows(
            store,
            "SELECT file, version, superseded, sha256 FROM injections ORDER BY file, version",
        )
    digest_a = hashlib.sha256(content_a).hexdigest()
    digest_b = hashlib.sha256(content_b).hexdigest()
    assert [g for g in got if g[0] == target.name] == [
        (target.name, 1, True, digest_a),
        (target.name, 2, True, digest_b),
        (target.name, 3, False, digest_a),
    ]
    # nothing else was stored twice across the kill
    assert sorted(g[0] for g in got if g[0] != target.name) == sorted(p.name for p in others)


# ---------------------------------------------------------------- names


@pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes only on Linux")
@pytest.mark.timeout(120)
def test_any_name_the_os_gives_is_stored_and_shown_safely(
    procs: Any, sim: SimulatedRun, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "n.duckdb"
    latin1 = b"Probe_M\xfcller.mzML"  # Latin-1 bytes from a Windows export: not UTF-8
    escape = "\x1b[2J\x1b[31mS0002\u202e.mzML"  # clears the screen; a right-to-left override
    monitor = procs(folder, db)
    assert wait_for(lambda: monitor.having("watching"), 60), monitor.lines
    with open(os.path.join(os.fsencode(folder), latin1), "wb") as fh:
        fh.write(named(sim, "016_S0001").read_bytes())
    (folder / escape).write_bytes(named(sim, "017_S0002").read_bytes())
    assert wait_for(lambda: monitor.having("Probe_M\\xfcller.mzML"), 60), monitor.lines
    assert wait_for(lambda: monitor.having("\\x1b[2J\\x1b[31mS0002\\u202e.mzML"), 60)
    monitor.popen.send_signal(signal.SIGTERM)
    assert monitor.finish() == 0, monitor.stderr
    for line in list(monitor.lines):  # nothing reached the terminal that it would act on
        assert line.isprintable(), repr(line)

    with Store(db, read_only=True) as store:
        got = rows(store, "SELECT file, path, sample_id FROM injections ORDER BY file")
        flags = rows(store, "SELECT message FROM flags WHERE injection_id IS NOT NULL")
    assert {g[0] for g in got} == {"Probe_M\\xfcller.mzML", "\\x1b[2J\\x1b[31mS0002\\u202e.mzML"}
    for file, path, sample_id in got:
        assert file.isprintable() and path.isprintable() and sample_id.isprintable()
        assert Path(from_db(path)).name == from_db(file)
    by_bytes = {os.fsencode(from_db(g[0])) for g in got}
    assert by_bytes == {latin1, os.fsencode(escape)}  # the original names, recoverable
    assert all(m.isprintable() for (m,) in flags if m)


# ---------------------------------------------------------------- worklist cells


def _with_positions(src: Path, dest: Path, bad: dict[str, str]) -> None:
    with src.open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    out = io.StringIO()
    writer = csv.DictWriter(out, [*table[0].keys(), "position"], lineterminator="\n")
    writer.writeheader()
    for n, row in enumerate(table, start=1):
        writer.writerow({**row, "position": bad.get(row["file"], str(n))})
    dest.write_text(out.getvalue(), "utf-8")


@pytest.mark.parametrize("cell", ["\u00b2", "3000000000"])
def test_one_bad_worklist_cell_holds_its_file_only(
    cell: str, sim: SimulatedRun, tmp_path: Path, assay: Assay
) -> None:
    folder = tmp_path / "run"
    paths = copy_run(sim, folder)
    _with_positions(sim.worklist_path, folder / "worklist.csv", {"017_S0002": cell})
    with Store(tmp_path / "w.duckdb") as store:
        ingestor = RunIngestor(
            store, assay, RunInfo("run", "run"), load_worklist(folder / "worklist.csv")
        )
        reports = {r.path.name: r for r in ingest_paths(ingestor, paths)}
        held = reports.pop("017_S0002.mzML")
        assert not held.stored and held.waiting
        assert "row 18, column 'position'" in held.message and cell in held.message
        assert all(r.stored for r in reports.values())
        stored = store.results("run")
        assert stored.height == len(paths) - 1
        assert stored.filter(file="018_S0003.mzML")["position"].to_list() == [18]

        # fixed: the held file is ingested, with its position
        _with_positions(sim.worklist_path, folder / "worklist.csv", {})
        ingestor.worklist = load_worklist(folder / "worklist.csv")
        fixed = ingestor.ingest(folder / "017_S0002.mzML")
        assert fixed.stored and fixed.outcome is not None
        assert fixed.outcome.sample.in_worklist and fixed.outcome.sample.position == 17
