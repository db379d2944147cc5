"""The soak's moving parts: monitor processes, the status sampler, a lock holder, a small disk.

Split out of ``benchmarks/soak_faults.py`` (which decides what happens when and
judges the outcome); these only start, watch and stop real processes and
filesystems.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent


class Monitor:
    """One ``asnmon run`` process; every instance's output is kept in one list."""

    # A file ingested (and printed) by a monitor that a later fault killed is not
    # printed again by its successor, which skips it.
    all_lines: ClassVar[list[str]] = []
    started: ClassVar[int] = 0

    def __init__(self, watch: Path, db: Path, settle: float) -> None:
        argv = [sys.executable, "-m", "asnmon.cli", "run", "--watch", str(watch), "--db", str(db)]
        argv += ["--no-dashboard", "--settle", str(settle), "--recursive"]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        Monitor.started += 1
        self.started_at = time.time()
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout or ():
            self.lines.append(line)
            Monitor.all_lines.append(line)

    def wait_watching(self, timeout: float = 120.0) -> None:
        """Until this monitor watches (its observer and database are up)."""
        deadline = time.monotonic() + timeout
        while not any("watching" in x for x in list(self.lines)):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the monitor did not start: {self.lines[-5:]}")
            time.sleep(0.1)

    @staticmethod
    def seen(text: str) -> bool:
        return any(text in line for line in list(Monitor.all_lines))

    def end(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
        code = self.proc.wait(120)
        self.reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


class StatusWatch:
    """Samples the JSON status file and the write-ahead log twice a second.

    The status file's age counts from the later of its ``written_epoch`` and the
    current monitor's start: a monitor just started has had no chance to write.
    """

    def __init__(self, db: Path, monitor: Callable[[], Monitor]) -> None:
        self.status = db.with_name(f"{db.stem}.status.json")
        self.wal = db.with_name(db.name + ".wal")
        self._monitor = monitor
        self.worst: tuple[float, int | None] = (0.0, None)
        self.wal_max = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(OSError):
                self.wal_max = max(self.wal_max, self.wal.stat().st_size)
            mon = self._monitor()
            if mon.proc.poll() is not None:
                continue
            try:
                doc = json.loads(self.status.read_text("utf-8"))
                written = float(doc["written_epoch"])
                pending = doc["monitor"].get("pending")
            except (OSError, ValueError, KeyError, TypeError):
                written, pending = 0.0, None
            age = time.time() - max(written, mon.started_at)
            if age > self.worst[0]:
                self.worst = (age, pending if isinstance(pending, int) else None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class LockHolder:
    """Another process holding the database file, as an open ``asnmon dashboard --db`` does.

    It lets go ``seconds`` after the new monitor said the file is locked (or after
    ``most`` s if it never says so: the soak then fails on what was not said).
    """

    def __init__(self, db: Path, seconds: float, most: float = 120.0) -> None:
        code = (
            "import sys, duckdb\n"
            "con = duckdb.connect(sys.argv[1], read_only=True)\n"
            "print('holding', flush=True)\n"
            "sys.stdin.readline()\n"
            "con.close()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        first = self.proc.stdout.readline() if self.proc.stdout else ""
        if first.strip() != "holding":
            raise RuntimeError(f"the lock holder did not take the database: {first!r}")
        self.said = f"locked by process {self.proc.pid}"
        self._release = threading.Thread(target=self._let_go, args=(seconds, most), daemon=True)
        self._release.start()

    def _let_go(self, seconds: float, most: float) -> None:
        deadline = time.monotonic() + most
        while not Monitor.seen(self.said) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(seconds)
        if self.proc.stdin is not None:
            self.proc.stdin.write("\n")
            self.proc.stdin.close()

    def done(self) -> None:
        self._release.join()
        self.proc.wait(120)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size``; RuntimeError where mounting is not allowed."""
    where.mkdir(exist_ok=True)  # --work: the mount point of an earlier soak
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(folder: Path) -> Path:
    """Write until ENOSPC, in ever smaller pieces, so not even a page is left."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 20, 1 << 12, 1 << 9):
            while True:
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler
