"""A run delivered in real time to a real ``asnmon run`` subprocess (issue 12's done-when).

``asnmon simulate --interval`` writes one injection at a time, progressively,
into a folder that ``asnmon run`` watches; one file is cut mid-run (the
instrument aborted it). It must appear as INCOMPLETE before the next two
injections are in, not ``max_write`` (2 h) later.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import wait_for

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 2.0  # s between injection starts: the settle time plus a generous margin
WRITE = 0.6  # s each file takes to write, progressively
CUT = 16  # the aborted injection (016_S0001)


class Lines:
    """A subprocess's stdout, one line at a time as it comes, with its arrival time."""

    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        assert popen.stdout is not None
        self._thread = threading.Thread(target=self._read, args=(popen.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def first(self, text: str) -> int | None:
        return next((i for i, (_, line) in enumerate(list(self.lines)) if text in line), None)


def asnmon(*args: str) -> list[str]:
    return [sys.executable, "-m", "asnmon.cli", *args]


def test_a_file_cut_mid_run_is_incomplete_before_the_next_two_injections(tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor = subprocess.Popen(
        asnmon(
            "run", "--watch", str(folder), "--db", str(tmp_path / "live.duckdb"),
            "--no-dashboard", "--settle", "0.5",
        ),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
    )  # fmt: skip
    out = Lines(monitor)
    simulator: subprocess.Popen[bytes] | None = None
    try:
        assert wait_for(lambda: out.first("watching") is not None, 60), out.lines
        simulator = subprocess.Popen(
            asnmon(
                "simulate", str(folder), "--samples", "4", "--mode", "clean",
                "--interval", str(INTERVAL), "--write-seconds", str(WRITE),
                "--fault", f"truncated:{CUT}",
            ),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        cut = f"{CUT:03d}_S0001.mzML"
        assert wait_for(lambda: out.first(f"{cut}: INCOMPLETE") is not None, 120), out.lines
        at = out.first(f"{cut}: INCOMPLETE")
        assert at is not None
        before = [line for _, line in out.lines[:at]]
        # The next injection may be in already (it is what shows the instrument moved
        # on); the one after it must not be.
        assert not any("018_S0003" in line for line in before), before[-5:]
        line = out.lines[at][1]
        assert "moved on" in line and "017_S0002.mzML" in line
        # ... and the run goes on: the later injections are ingested as they come.
        assert wait_for(lambda: out.first("019_S0004") is not None, 60), out.lines[-5:]
        assert simulator.wait(120) == 0
    finally:
        if simulator is not None and simulator.poll() is None:
            simulator.kill()
            simulator.wait()
        monitor.terminate()
        try:
            monitor.wait(30)
        except subprocess.TimeoutExpired:
            monitor.kill()
            monitor.wait()
        for stream in (monitor.stdout, monitor.stderr):
            if stream is not None:
                stream.close()
        if simulator is not None and simulator.stderr is not None:
            simulator.stderr.close()
    assert monitor.returncode == 0
