"""Sharing, backup, archive and prune on real DuckDB files built from simulated runs."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from asnmon.assay import Assay
from asnmon.errors import StoreError
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.records import Flag, Severity
from asnmon.share import ShareExporter, archive, read_share, read_share_runs, write_share
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Path:
    """Two ingested runs (R1, and R2 with a '/' as recursive watching names them)."""
    folder = tmp_path_factory.mktemp("sim") / "seq"
    sim = simulate_run(folder, SimConfig(n_samples=4, seed=3, qc_every=4))
    db = tmp_path_factory.mktemp("db") / "template.duckdb"
    worklist = load_worklist(sim.worklist_path)
    with Store(db) as store:
        for run_id in ("R1", "day2/R2"):
            ingestor = RunIngestor(store, assay, RunInfo(run_id=run_id, name=run_id), worklist)
            ingest_paths(ingestor, sim.paths)
            ingestor.flush()
    return db


@pytest.fixture
def db(template_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "lab.duckdb"
    shutil.copy(template_db, copy)
    return copy


# ---------------------------------------------------------------- share


def test_two_instruments_share_one_folder(db: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    other = tmp_path / "other.duckdb"
    shutil.copy(db, other)
    with Store(db) as a, Store(other) as b:
        written_a = write_share(a, share, "QQQ-1")
        written_b = write_share(b, share, "QQQ 2", run_id="R1")
        n_a = a.results().height
        n_b = b.results("R1").height
    names = sorted(p.name for p in written_a)
    assert names[:2] == ["QQQ-1__R1.parquet", "QQQ-1__day2_R2-1b829f93.parquet"]  # '/' made safe
    assert names[2] == "QQQ-1__runs.parquet"
    assert all(p.parent == share for p in written_b)
    assert not [p for p in share.iterdir() if p.name.startswith(".")], "temp files left over"

    frame = read_share(share)
    assert frame.height == n_a + n_b
    counts = dict(frame.group_by("instrument").len().iter_rows())
    assert counts == {"QQQ-1": n_a, "QQQ 2": n_b}
    assert {"run_id", "conc", "flags", "instrument"} <= set(frame.columns)
    runs = read_share_runs(share)
    assert sorted(runs["instrument"].to_list()) == ["QQQ 2", "QQQ 2", "QQQ-1", "QQQ-1"]


def test_rewrite_replaces_the_run_file(db: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    with Store(db) as store:
        write_share(store, share, "QQQ-1", run_id="R1")
        first = pl.read_parquet(share / "QQQ-1__R1.parquet").height
        write_share(store, share, "QQQ-1", run_id="R1")
    assert pl.read_parquet(share / "QQQ-1__R1.parquet").height == first
    assert len(list(share.glob("QQQ-1__R1*"))) == 1


def test_missing_share_is_a_clear_error(db: Path, tmp_path: Path) -> None:
    with Store(db) as store, pytest.raises(StoreError, match="not reachable"):
        write_share(store, tmp_path / "gone", "QQQ-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_exporter_writes_at_most_every_n_minutes_and_only_changed_runs(
    db: Path, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    clock = Clock()
    with Store(db) as store:
        exporter = ShareExporter(store, share, "QQQ-1", every_minutes=10, clock=clock)
        first = exporter.maybe_export()
        assert {p.name for p in first} >= {"QQQ-1__R1.parquet", "QQQ-1__runs.parquet"}
        assert len(first) == 3
        store.replace_run_flags("R1", ["RUN_FAIL"], [Flag("RUN_FAIL", Severity.FAIL, "x")])
        clock.now += 60
        assert exporter.maybe_export() == [], "too soon"
        clock.now += 10 * 60
        second = exporter.maybe_export()
        assert sorted(p.name for p in second) == ["QQQ-1__R1.parquet", "QQQ-1__runs.parquet"]
        clock.now += 10 * 60
        assert exporter.maybe_export() == [], "nothing changed"

        shutil.rmtree(share)  # the share drops: logged, kept, retried, never raised
        store.replace_run_flags("R1", ["RUN_FAIL"], [])
        clock.now += 10 * 60
        assert exporter.maybe_export() == []
        assert exporter.last_error is not None
        share.mkdir()
        clock.now += 10 * 60
        assert exporter.maybe_export()[0].name == "QQQ-1__R1.parquet"
        assert exporter.last_error is None


# ---------------------------------------------------------------- backup


def test_backup_while_another_thread_writes_is_a_consistent_copy(db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup.duckdb"
    stop = threading.Event()
    writes = [0]
    with Store(db) as store:
        before = store.results()
        store.ensure_run(RunInfo(run_id="busy", name="busy"))

        def writer() -> None:
            # each write: a flag and its change row in one transaction
            while not stop.is_set() and writes[0] < 5000:
                store.replace_run_flags("busy", ["X"], [Flag("X", Severity.INFO, "tick")])
                writes[0] += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            assert _wait(lambda: writes[0] >= 20)
            store.backup(dest)
            at_backup = writes[0]
            assert _wait(lambda: writes[0] >= at_backup + 20), "the writer was blocked"
        finally:
            stop.set()
            thread.join(10)
        with pytest.raises(StoreError, match="overwrite the database"):
            store.backup(db)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with Store(dest, read_only=True) as copy:
        assert copy.results().drop("ingested_at").equals(before.drop("ingested_at"))
        flags = copy.flags("busy", active_only=False).height
        changes = copy.changes_since(0).filter(pl.col("run_id") == "busy").height - 1
        assert 20 <= flags <= writes[0]
        assert flags == changes, "a write was half in the copy"
        assert copy.schema_version() >= 1
    with Store(dest) as reopened:  # a restored backup is a working database
        reopened.ensure_run(RunInfo(run_id="after-restore", name="x"))
    with Store(db, read_only=True) as stopped:  # `asnmon backup` on a stopped monitor's file
        again = stopped.backup(tmp_path / "again.duckdb")
    with Store(again, read_only=True) as copy:
        assert copy.results().drop("ingested_at").equals(before.drop("ingested_at"))


def _wait(predicate: object, timeout: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# ---------------------------------------------------------------- archive and prune


def test_archive_then_prune_removes_only_archived_runs(db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "archive"
    with Store(db) as store:
        r1_rows = store.results("R1").height
        r2_rows = store.results("day2/R2").height
        with pytest.raises(StoreError, match="not archived"):
            store.prune_runs(["R1"], dest)
        report = archive(store, dest, run_ids=["R1"])
        folder = report.folders[0]
        assert folder.name == "R1"
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["rows"]["injections"] == r1_rows
        assert pl.read_parquet(folder / "injections.parquet").height == r1_rows
        assert pl.read_parquet(folder / "traces.parquet").height > 0
        assert set(pl.read_parquet(folder / "flags.parquet")["run_id"]) == {"R1"}

        store.replace_run_flags("R1", ["LATE"], [Flag("LATE", Severity.INFO, "after archive")])
        with pytest.raises(StoreError, match="archive it again"):
            store.prune_runs(["R1"], dest)
        with pytest.raises(StoreError, match="day2/R2: not archived"):
            store.prune_runs(["R1", "day2/R2"], dest)
        assert store.results("R1").height == r1_rows, "a refused prune deleted nothing"

        report = archive(store, dest, run_ids=["R1"], prune=True)
        assert report.deleted is not None
        assert report.deleted["injections"] == r1_rows
        assert store.results("R1").height == 0
        assert "R1" not in store.runs()["run_id"].to_list()
        assert store.results("day2/R2").height == r2_rows
        assert len(list(dest.iterdir())) == 1, "re-archiving replaced the folder"
    with Store(db, read_only=True) as reopened:
        assert reopened.results().height == r2_rows


def test_archive_before_a_date_and_unknown_runs(db: Path, tmp_path: Path) -> None:
    with Store(db) as store:
        tomorrow = date.today() + timedelta(days=2)
        report = archive(store, tmp_path / "a", before=date(2000, 1, 1))
        assert report.run_ids == ()
        report = archive(store, tmp_path / "b", before=tomorrow)
        assert set(report.run_ids) == {"R1", "day2/R2"}
        with pytest.raises(StoreError, match="no such run"):
            store.archive_runs(["nope"], tmp_path / "c")
