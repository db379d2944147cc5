"""`asnmon backup` never writes over the database's own files, even while the monitor runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_for

from asnmon.errors import StoreError
from asnmon.simulate import SimConfig, SimulatedRun, simulate_run
from asnmon.store import Store, backup_refusal

ROOT = Path(__file__).resolve().parent.parent
N = 15


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulatedRun:
    return simulate_run(tmp_path_factory.mktemp("sim") / "BKSIM", SimConfig(n_samples=4, seed=8))


def backup(db: Path, to: Path | str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "asnmon.cli", "backup", "--db", str(db), "--to", str(to)]
    return subprocess.run(
        [*argv, "--timeout", "30"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def current_injections(db: Path) -> list[tuple[str, int]]:
    with Store(db, read_only=True) as store:
        rows = (
            store.reader()
            .execute(
                "SELECT i.file, count(r.result_id) FROM injections i LEFT JOIN results r "
                "ON r.injection_id = i.injection_id AND r.current WHERE NOT i.superseded "
                "GROUP BY i.file ORDER BY i.file"
            )
            .fetchall()
        )
    return [(str(f), int(n)) for f, n in rows]


@pytest.fixture
def monitor(tmp_path: Path, sim: SimulatedRun) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    folder = tmp_path / "seq"
    folder.mkdir()
    for p in sim.paths[:N]:
        shutil.copyfile(p, folder / p.name)
    db = tmp_path / "live.duckdb"
    argv = [sys.executable, "-m", "asnmon.cli", "run", "--watch", str(folder), "--db", str(db)]
    proc = subprocess.Popen(
        [*argv, "--no-dashboard", "--settle", "0.2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        lines.extend(line.rstrip("\n") for line in proc.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert wait_for(lambda: len([x for x in list(lines) if ".mzML" in x]) >= N, 60), lines
    yield proc, db
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)
    reader.join(30)
    assert proc.stdout is not None
    proc.stdout.close()


@pytest.mark.timeout(240)
def test_backup_onto_the_databases_own_files_is_refused_and_a_kill_loses_nothing(
    monitor: tuple[subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    proc, db = monitor
    good = tmp_path / "good.duckdb"
    done = backup(db, good)  # the monitor answers a real backup
    assert done.returncode == 0, done.stderr
    (tmp_path / "link.duckdb").symlink_to(db)
    own = [
        db,
        f"{db}.wal",
        db.with_name(db.name + "-wal"),
        db.with_name(db.name + ".tmp"),
        db.parent / "." / ".." / db.parent.name / (db.name + ".wal"),
        tmp_path / "link.duckdb",
    ]
    for dest in own:
        refused = backup(db, dest)
        assert refused.returncode == 2, (dest, refused.stdout, refused.stderr)
        assert "asnmon backup: refused:" in refused.stderr
        assert "the database's own" in refused.stderr and "choose another file" in refused.stderr
        assert "asked it for the backup" not in refused.stdout  # refused before asking

    proc.send_signal(signal.SIGKILL)  # no clean close: the write-ahead log must be intact
    assert proc.wait(30) == -signal.SIGKILL
    after = current_injections(db)
    assert len(after) == N and all(n == 1 for _, n in after), after
    assert current_injections(good) == after


def test_the_store_refuses_its_own_files_itself(tmp_path: Path) -> None:
    """The monitor's side too: a request that reached it is checked again."""
    db = tmp_path / "x.duckdb"
    with Store(db) as store:
        for dest in (db, Path(f"{db}.wal"), Path(f"{db}-wal"), Path(f"{db}.tmp") / "inside"):
            with pytest.raises(StoreError, match="the database's own"):
                store.backup(dest)
        with pytest.raises(StoreError, match="is a folder"):
            store.backup(tmp_path)
        hard = tmp_path / "hard.duckdb"
        os.link(db, hard)
        assert backup_refusal(db, hard) is not None  # the same file by another name
        assert backup_refusal(db, tmp_path / "x.duckdb.bak") is None
        assert store.backup(tmp_path / "x.duckdb.bak").is_file()
