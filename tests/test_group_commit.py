"""Group commits (``Store.group``, ``ingest_paths``): several files per transaction,
and still every committed result kept once, a failed group stored file by file."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for
from test_monitor_faults import fill, small_filesystem

from asnmon.assay import Assay
from asnmon.errors import StoreError
from asnmon.mzml import file_sha256
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.pipeline.process import process_file
from asnmon.records import Flag, Result, Severity
from asnmon.simulate import SimConfig, SimulatedRun, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.store._sql import INJECTION_COLUMNS, RESULT_COLUMNS
from asnmon.store.queries import _held_qc_rows
from asnmon.worklist import load_worklist, resolve_sample

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulatedRun:
    return simulate_run(tmp_path_factory.mktemp("sim") / "GRPSIM", SimConfig(n_samples=8))


def _mzml(sim: SimulatedRun) -> list[Path]:
    return [p for p in sim.paths if p.suffix == ".mzML"]


def _ingestor(store: Store, sim: SimulatedRun, assay: Assay) -> RunIngestor:
    name = sim.out_dir.name
    worklist = load_worklist(sim.worklist_path)
    return RunIngestor(store, assay, RunInfo(name, name, str(sim.out_dir)), worklist)


def _stored(db: Path) -> dict[str, tuple[object, ...]]:
    """file -> what a reader sees of it: result, flags, IS %, peaks, traces, change rows."""
    with Store(db, read_only=True) as store:
        rows = (
            store.reader()
            .execute(
                """
            SELECT i.file, r.status, round(r.conc, 9), round(i.is_pct, 6),
                   (SELECT string_agg(f.code, ' ' ORDER BY f.code) FROM flags f
                    WHERE f.injection_id = i.injection_id AND f.active),
                   (SELECT count(*) FROM peaks p WHERE p.injection_id = i.injection_id),
                   (SELECT count(*) FROM traces t WHERE t.injection_id = i.injection_id),
                   (SELECT count(*) FROM results x WHERE x.injection_id = i.injection_id
                    AND x.current),
                   (SELECT count(*) FROM changes c WHERE c.injection_id = i.injection_id
                    AND c.kind = 'injection')
            FROM injections i JOIN results r ON r.injection_id = i.injection_id AND r.current
            """
            )
            .fetchall()
        )
        verdict = store.reader().execute("SELECT verdict, verdict_reason FROM runs").fetchall()
    out: dict[str, tuple[object, ...]] = {str(r[0]): tuple(r[1:]) for r in rows}
    out["(run)"] = tuple(verdict)
    return out


def test_groups_store_exactly_what_one_by_one_stores(
    sim: SimulatedRun, assay: Assay, tmp_path: Path
) -> None:
    """Reads inside a group see its own writes (Westgard, IS %, the curve's refits)."""
    files = _mzml(sim)
    for name, group in (("single", 1), ("grouped", 7)):
        with Store(tmp_path / f"{name}.duckdb") as store:
            reports = ingest_paths(_ingestor(store, sim, assay), files, group=group)
        assert all(r.stored for r in reports), [r.message for r in reports if not r.stored]
    single, grouped = _stored(tmp_path / "single.duckdb"), _stored(tmp_path / "grouped.duckdb")
    assert len(single) == len(files) + 1
    assert grouped == single
    assert all(v[-2:] == (1, 1) for k, v in grouped.items() if k != "(run)")


def test_an_error_inside_a_group_rolls_all_of_it_back(
    sim: SimulatedRun, assay: Assay, tmp_path: Path
) -> None:
    """DuckDB has no savepoints: one refused row (an INTEGER overflow) and the group is
    gone whole, even the injections written before it, and the store writes on after."""
    worklist = load_worklist(sim.worklist_path)
    paths = _mzml(sim)[:3]
    outcomes = [
        process_file(p, file_sha256(p), resolve_sample(p, worklist, assay), assay, None)
        for p in paths
    ]
    bad_peaks = {k: replace(v, points=2**40) if v else v for k, v in outcomes[2].peaks.items()}
    bad = replace(outcomes[2], peaks=bad_peaks)
    db = tmp_path / "g.duckdb"
    with Store(db) as store:
        store.ensure_run(RunInfo("r", "r"))
        seen_inside: list[object] = []

        def write_group() -> None:
            with store.group():
                store.write_injection("r", outcomes[0], position=None)
                store.write_injection("r", outcomes[1], position=None)
                seen_inside.append(
                    store.reader().execute("SELECT count(*) FROM injections").fetchone()
                )
                store.write_injection("r", bad, position=None)

        with pytest.raises(StoreError, match="nothing of it was stored"):
            write_group()
        assert seen_inside == [(2,)]  # the writer saw its own uncommitted rows
        assert store.reader().execute("SELECT count(*) FROM injections").fetchone() == (0,)
        with store.group():
            store.write_injection("r", outcomes[0], position=None)
    assert set(_stored(db)) == {paths[0].name, "(run)"}


def test_a_full_disk_mid_group_loses_no_file_silently(
    sim: SimulatedRun, assay: Assay, tmp_path: Path
) -> None:
    """Every file is reported stored (and is in the database) or not stored with why;
    once the disk has room, ingesting again stores each of the rest once."""
    files = _mzml(sim)
    with small_filesystem(tmp_path / "small", "24m") as small:
        db = small / "run.duckdb"
        with Store(db) as store:
            ingest_paths(_ingestor(store, sim, assay), files[:4], group=4)
        filler = fill(small)
        try:
            with Store(db) as store:
                reports = ingest_paths(_ingestor(store, sim, assay), files[4:], group=5)
        except StoreError:
            reports = []  # the database could not even be opened on the full disk
        os.unlink(filler)
        in_db = set(_stored(db)) - {"(run)"}
        said_stored = {r.path.name for r in reports if r.stored}
        assert said_stored <= in_db
        for r in reports:
            if not r.stored:
                assert r.message, r
                assert r.path.name not in in_db
        assert len(reports) in (0, len(files) - 4)
        with Store(db) as store:
            ingest_paths(_ingestor(store, sim, assay), files)
        with Store(db, read_only=True) as store:
            counts = dict(
                store.reader()
                .execute("SELECT file, count(*) FROM injections GROUP BY file")
                .fetchall()
            )
    assert counts == dict.fromkeys((p.name for p in files), 1)


def test_kill_9_mid_batch_keeps_every_committed_group_and_a_rerun_the_rest(
    sim: SimulatedRun, assay: Assay, tmp_path: Path
) -> None:
    """``asnmon ingest --group 4`` killed with SIGKILL after its first groups: what is in
    the database is whole (every injection with its result, peaks and change row), and
    running it again gives exactly the database of an uninterrupted run."""
    files = _mzml(sim)
    folder = tmp_path / sim.out_dir.name
    shutil.copytree(sim.out_dir, folder)
    db = tmp_path / "killed.duckdb"
    argv = [sys.executable, "-m", "asnmon.cli", "ingest", str(folder), "--db", str(db)]
    argv += ["--worklist", str(folder / sim.worklist_path.name), "--group", "4"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = bytearray()

    def read() -> None:
        assert proc.stderr is not None
        while chunk := os.read(proc.stderr.fileno(), 4096):
            seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert wait_for(
            lambda: max([int(m) for m in re.findall(rb"(\d+)/\d+ \[", bytes(seen))] or [0]) >= 4,
            120,
        ), bytes(seen)[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
        reader.join(10)
        if proc.stderr is not None:
            proc.stderr.close()
    done = [int(m) for m in re.findall(rb"(\d+)/\d+ \[", bytes(seen))]
    killed = _stored(db)
    stored = {k: v for k, v in killed.items() if k != "(run)"}
    assert 4 <= len(stored) < len(files), (len(stored), max(done))
    assert all(v[-2:] == (1, 1) for v in stored.values()), stored

    def ingest_folder(store: Store) -> None:
        run = RunInfo(folder.name, folder.name, str(folder))
        worklist = load_worklist(folder / sim.worklist_path.name)
        ingest_paths(RunIngestor(store, assay, run, worklist), sorted(folder.glob("*.mzML")))

    with Store(db) as store:  # the restart: what was not committed is ingested again
        ingest_folder(store)
    clean = tmp_path / "clean.duckdb"
    with Store(clean) as store:
        ingest_folder(store)
    again, expected = _stored(db), _stored(clean)
    assert set(again) == set(expected)
    for name in expected:
        if name == "(run)":
            continue
        assert again[name][:2] == expected[name][:2], name  # status and concentration
        assert again[name][-4:] == expected[name][-4:], name  # peaks, traces, one result


def test_a_monitor_started_on_a_full_folder_stores_its_backlog_in_groups(
    make_monitor: Callable[..., tuple[Any, Any]],
    sim: SimulatedRun,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The restart's reconciliation scan is a backlog: grouped, each file once and whole,
    one line each; a file arriving alone afterwards is committed on its own."""
    caplog.set_level(logging.INFO, logger="asnmon.monitor")
    files = _mzml(sim)
    folder = tmp_path / "seq"
    folder.mkdir()
    for src in files[:-1]:
        shutil.copyfile(src, folder / src.name)
    monitor, lines = make_monitor(folder)
    assert wait_for(lambda: monitor.idle() and _count(monitor) == len(files) - 1, 120)
    grouped = [r for r in caplog.records if "stored in one transaction" in r.getMessage()]
    assert grouped, "the backlog was stored file by file"
    shutil.copyfile(files[-1], folder / files[-1].name)
    assert wait_for(lambda: _count(monitor) == len(files), 30)
    monitor.stop()
    stored = _stored(Path(monitor.store.path))
    assert set(stored) - {"(run)"} == {p.name for p in files}
    assert all(v[-2:] == (1, 1) for k, v in stored.items() if k != "(run)")
    for p in files:
        assert len(lines.having(p.name)) == 1, (p.name, lines.having(p.name))


def _count(monitor: Any) -> int:
    rows = monitor.store.reader().execute("SELECT count(*) FROM injections").fetchall()
    return int(rows[0][0])


def test_reads_inside_a_group_see_held_rows_as_the_database_would(
    sim: SimulatedRun, assay: Assay, tmp_path: Path
) -> None:
    """``qc_values`` reads QC rows still held back (not yet INSERTed) in Python; the
    Westgard rules must get exactly what the database gives once they are written."""
    with Store(tmp_path / "q.duckdb") as store:
        ingestor = _ingestor(store, sim, assay)
        with store.group():
            for path in _mzml(sim):
                ingestor.ingest(path)
            held = _held_qc_rows(*store._pending.held(INJECTION_COLUMNS, RESULT_COLUMNS))
            inside = store.qc_values()
            store.reader()  # writes every held row
            written = store.qc_values()
            # a write that changes results: the database's part is read again
            qc = (
                store.reader()
                .execute("SELECT injection_id FROM injections WHERE sample_type = 'qc' LIMIT 1")
                .fetchone()
            )
            curve = store.latest_calibration(run_id="GRPSIM", accepted=False)
            assert qc is not None and curve is not None
            store.write_calibration(
                "GRPSIM", curve, [], {qc[0]: (Result("ok", accuracy_pct=-1.0), [])}
            )
            moved = store.qc_values()
        assert held, "no QC result was held back: the test no longer reads held rows"
        assert inside == written
        assert moved == store.qc_values() and -1.0 in [v[3] for v in moved]


def _replace_flags(store: Store, steps: range) -> None:
    """Flag replacements and verdicts of a run, on held and on stored rows alike."""

    def f(code: str, n: int, sev: Severity = Severity.WARNING) -> Flag:
        return Flag(code, sev, f"{code} #{n}", value=float(n))

    warn, fail = Severity.WARNING, Severity.FAIL
    writes: list[Callable[[], None]] = [
        lambda: store.replace_run_flags("R", {"A", "B"}, [f("A", 1), f("B", 1)]),
        lambda: store.replace_run_flags("R", {"A", "B"}, [f("A", 2)], injection_id=5),
        lambda: store.update_flag("R", 5, f("D", 0)),  # none anywhere: a new row
        lambda: store.update_flag("R", 5, f("D", 1)),  # held, same severity: new text
        # a second group, over the rows of the first
        lambda: store.set_verdict("R", "pass", "r1", replace_codes={"A", "C"}, flags=[f("C", 1)]),
        lambda: store.replace_run_flags("R", {"B"}, [f("B", 2), f("A", 3)]),
        lambda: store.update_flag("R", 5, f("A", 4)),  # stored, same severity
        lambda: store.replace_run_flags("R", {"D"}, [], injection_id=5),
        lambda: store.update_flag("R", 5, f("D", 2)),  # stored but replaced: a new row
        lambda: store.set_verdict("R", "fail", "r2", replace_codes={"A", "B", "C"}),
        lambda: store.replace_run_flags("R", {"A"}, [f("A", 5, fail)], injection_id=5),
        lambda: store.update_flag("R", 5, f("A", 6, fail)),  # held, same severity
        lambda: store.update_flag("R", 5, f("A", 7, warn)),  # held, another severity
        lambda: store.update_flag("R", 5, f("D", 3, fail)),
        lambda: store.replace_run_flags("R", {"A", "B"}, [f("B", 3)], injection_id=5),
        lambda: store.set_verdict("R", "warn", "r3"),
    ]
    for k in steps:
        writes[k]()


def test_flags_replaced_inside_a_group_are_those_one_transaction_each_stores(
    tmp_path: Path,
) -> None:
    """A group holds flag replacements and verdicts back to one UPDATE each at its
    commit (``Pending.deactivate``); every flag row, id, state and verdict must be
    what a transaction per write gives, each replaced when the same write did (the
    rows a replacement inserts share its time)."""
    stored = []
    for name, grouped in (("each", False), ("held", True)):
        with Store(tmp_path / f"{name}.duckdb") as store:
            store.ensure_run(RunInfo("R", "R"))
            for steps in (range(4), range(4, 16)):
                with store.group() if grouped else contextlib.nullcontext():
                    _replace_flags(store, steps)
            stored.append(
                store.reader()
                .execute(
                    "SELECT f.flag_id, f.injection_id, f.code, f.severity, f.message, f.value, "
                    "f.active, f.deactivated_at IS NULL, (SELECT list(n.flag_id ORDER BY "
                    "n.flag_id) FROM flags n WHERE n.created_at = f.deactivated_at) "
                    "FROM flags f ORDER BY f.flag_id"
                )
                .fetchall()
                + store.reader().execute("SELECT verdict, verdict_reason FROM runs").fetchall()
            )
    assert stored[1] == stored[0]
    assert sum(1 for r in stored[0] if len(r) > 2 and r[6]) == 2  # B #3 and D #3
