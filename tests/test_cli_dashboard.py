"""`asnmon dashboard` as a user starts it: a real process serving a real page."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.share import write_share
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small run in a database, and the same run exported to a share folder."""
    from asnmon.assay import load_assay

    tmp = tmp_path_factory.mktemp("cli-dash")
    sim = simulate_run(tmp / "run", SimConfig(n_samples=3, seed=4, qc_every=3))
    share = tmp / "share"
    share.mkdir()
    with Store(tmp / "lab.duckdb") as store:
        ingestor = RunIngestor(
            store, load_assay(), RunInfo("run", "run"), load_worklist(sim.worklist_path)
        )
        ingest_paths(ingestor, sim.paths)
        assert write_share(store, share, "QQQ-1")
    return tmp / "lab.duckdb", share


def _serve_and_get(args: list[str], path: str) -> tuple[int, str]:
    argv = [sys.executable, "-m", "asnmon.cli", "dashboard", *args, "--port", "0"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # printed once the server listens
            match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            assert match, line
            deadline = time.monotonic() + 10
            while True:
                try:
                    with urllib.request.urlopen(match.group(1) + path, timeout=5) as resp:
                        return resp.status, resp.read().decode()
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(10)


def test_dashboard_db_serves_a_read_only_review(filled: tuple[Path, Path]) -> None:
    db, _ = filled
    status, body = _serve_and_get(["--db", str(db)], "healthz")
    assert status == 200
    assert '"database"' in body


def test_dashboard_parquet_serves_every_instrument(filled: tuple[Path, Path]) -> None:
    _, share = filled
    status, body = _serve_and_get(["--parquet", str(share)], "")
    assert status == 200
    assert "<html" in body.lower()


def test_dashboard_needs_exactly_one_source(filled: tuple[Path, Path]) -> None:
    db, share = filled
    both = subprocess.run(
        [sys.executable, "-m", "asnmon.cli", "dashboard", "--db", str(db), "--parquet", str(share)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
