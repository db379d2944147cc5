"""`asnmon demo`, the first thing a newcomer runs, as a real subprocess.

SIGTERM is how systemd, ``docker stop``, CI and ``kill`` stop a program: the demo
must stop as cleanly as on Ctrl-C, print its summary, and keep the database it
names (a newcomer's next command is ``asnmon report`` on it).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def _collect(stream: object, into: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.append(line.rstrip("\n"))


def _wait(pred: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_demo_stops_cleanly_on_sigterm_and_keeps_its_database(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asnmon.cli",
            "demo",
            "--no-dashboard",
            "--no-browser",
            "--interval",
            "0.3",
            "--samples",
            "20",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
    )
    lines: list[str] = []
    reader = threading.Thread(target=_collect, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        # a few injections in, mid-run: the monitor is busy when the signal comes
        assert _wait(lambda: sum("CAL0" in x for x in lines) >= 2, 90), "\n".join(lines)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    reader.join(5)
    if proc.stdout is not None:
        proc.stdout.close()
    out = "\n".join(lines)
    assert code == 0, out
    assert "Traceback" not in out
    assert "stopped cleanly" in out
    assert "run demo-run:" in out  # the closing summary
    named = re.search(r"asnmon report demo-run --db (\S+)", out)
    assert named, out
    db = Path(named.group(1))
    try:
        assert db.is_file(), f"the demo names {db}, which is gone"
        con = duckdb.connect(str(db), read_only=True)
        try:
            stored = con.execute("SELECT count(*) FROM injections").fetchone()
        finally:
            con.close()
        assert stored is not None and stored[0] >= 2
        report = subprocess.run(
            [sys.executable, "-m", "asnmon.cli", "report", "demo-run", "--db", str(db)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert report.returncode == 0, report.stderr
    finally:
        for f in db.parent.glob("*"):
            f.unlink()
        db.parent.rmdir()
