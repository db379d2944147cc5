"""What several test modules need alike: waiting on conditions, a monitor's printed
lines, a real ``asnmon`` process, a watcher's events, a small full filesystem, a
database held by another process, and headless Chromium."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from asnmon.watch import WatchEvent

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NO_BROWSER = (
    "headless browser tests need chromium and chromedriver on PATH "
    "(Debian: apt-get install chromium chromium-driver)"
)
# A browser test module's ``pytestmark``: skipped without Chromium; dash -> requests ->
# urllib3, and selenium, warn about their own deprecations on import.
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=NO_BROWSER),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:urllib3.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:selenium.*"),
]


class Lines:
    """A monitor's ``out`` callback: keeps every line, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[str] = []

    def __call__(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def all(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def having(self, text: str) -> list[str]:
        return [line for line in self.all() if text in line]


MONITOR_SETTLE = 0.2  # s, the settle time of the monitors the tests start


def wait_for(predicate: Callable[[], object], timeout: float) -> bool:
    """Poll every 20 ms; True as soon as ``predicate()`` is truthy, False at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


@contextmanager
def chromium(width: int, height: int) -> Iterator[Any]:
    """Headless Chromium as CI runs it: as root, on a machine with no outside network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for arg in (
        "--no-sandbox",  # CI runs Chromium as root
        "--headless",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_on(driver: Any, condition: Any, timeout: float) -> Any:
    """WebDriverWait that treats a re-rendered (stale) element as "not yet"."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
    ).until(condition)


def page_text(driver: Any, css: str) -> str:
    """The text of every element ``css`` selects on the page, joined by spaces."""
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))


class Proc:
    """A real ``asnmon`` process whose stdout and stderr lines are collected as they come."""

    def __init__(self, argv: list[str], *, merged: bool = False) -> None:
        """``merged``: stderr goes into ``lines`` too, in the order the process wrote it."""
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merged else subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="backslashreplace",  # a file name that is not UTF-8 must not kill the reader
        )
        self._readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.popen.stdout, self.lines), (self.popen.stderr, self.errors))
            if stream is not None
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.errors)

    def having(self, text: str) -> list[str]:
        return [line for line in list(self.lines) if text in line]

    def finish(self, timeout: float = 30) -> int:
        code = self.popen.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def said(self, *texts: str) -> bool:
        """Every one of ``texts`` is in some line so far."""
        lines = list(self.lines)
        return all(any(text in line for line in lines) for text in texts)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a service manager stops it; its exit code once it has ended."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        code = self.finish(timeout)
        self._close_streams()
        return code

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.finish()
        self._close_streams()

    def _close_streams(self) -> None:
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


def asnmon_run(folder: Path, db: Path, *more: str) -> list[str]:
    """The argv of ``asnmon run`` watching ``folder`` into ``db``."""
    return [
        sys.executable,
        "-m",
        "asnmon.cli",
        "run",
        "--watch",
        str(folder),
        "--db",
        str(db),
        *more,
    ]


def stored_once(db: Path) -> dict[str, int]:
    """How many injections each file has in the database at ``db`` (read-only)."""
    from asnmon.store import Store

    with Store(db, read_only=True) as store:
        rows = store.reader().execute("SELECT file, count(*) FROM injections GROUP BY file")
        return {f: n for f, n in rows.fetchall()}


def ingest_short_run(store: Any, tmp: Path, assay: Any) -> int:
    """A small real run "run" whose last injection is short (IS_LOW: flags to acknowledge),
    simulated under ``tmp`` and ingested into ``store``; its number of injections."""
    from dataclasses import replace

    from asnmon.pipeline import RunIngestor, ingest_paths
    from asnmon.simulate import Faults, SimConfig, plan_run, simulate_run
    from asnmon.store import RunInfo
    from asnmon.worklist import load_worklist

    n = len(plan_run(SimConfig(n_samples=2)))
    sim = simulate_run(
        tmp / "run", replace(SimConfig(n_samples=2), faults=Faults(short_injection=n))
    )
    ingestor = RunIngestor(
        store,
        assay,
        RunInfo("run", "run", folder=str(sim.out_dir), planned=n),
        worklist=load_worklist(sim.worklist_path),
    )
    ingest_paths(ingestor, sim.paths)
    ingestor.flush()
    return n


# ---------------------------------------------------------------- the watch stage


class Events:
    """A watcher's ``on_event`` callback: keeps every event, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[WatchEvent] = []

    def __call__(self, event: WatchEvent) -> None:
        with self._lock:
            self._events.append(event)

    def of(self, kind: str, path: Path | None = None) -> list[WatchEvent]:
        with self._lock:
            return [e for e in self._events if e.kind == kind and (path is None or e.path == path)]

    def paths(self, kind: str) -> list[Path]:
        return [e.path for e in self.of(kind)]

    def names(self, kind: str) -> list[str]:
        return [e.path.name for e in self.of(kind)]

    def order(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(e.kind, e.path.name) for e in self._events]


# ---------------------------------------------------------------- the database's surroundings


@contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` (needs root and mount rights; skipped otherwise)."""
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: disk-full needs a real small filesystem")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here ({done.stderr.strip() or done.returncode}): "
            "the disk-full test needs root and mount rights"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(folder: Path) -> Path:
    """Write until the filesystem says ENOSPC, down to its last byte; the filler frees it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    full: list[int] = []
    try:
        for chunk in (1 << 20, 1 << 12, 1 << 9, 1):
            while True:
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError as exc:
                    full.append(exc.errno or 0)
                    break
    finally:
        os.close(fd)
    assert full == [errno.ENOSPC] * 4
    return filler


@contextmanager
def database_held(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another real process with the file open, as a forgotten ``asnmon dashboard --db``;
    it lets go when its stdin is closed (at the latest on leaving the block)."""
    code = (
        "import sys, duckdb\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "print('holding', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield holder
    finally:
        if holder.stdin is not None and not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()


def simulated_realistic(
    tmp: Path, scenarios: tuple[str, ...], seed: int, sample_id: str
) -> tuple[Path, Any, float]:
    """One realistic simulated file of ``sample_id``: (path, its planned injection, true ratio)."""
    from asnmon.simulate import SimConfig, plan_run, true_signal, write_injection

    config = SimConfig(mode="realistic", scenarios=scenarios, seed=seed, n_samples=1)
    inj = next(p for p in plan_run(config) if p.sample.sample_id == sample_id)
    path = write_injection(inj, tmp / f"{'_'.join(scenarios)}_{seed}_{sample_id}.mzML", config)
    truth = true_signal(inj, config).area_ratio
    assert truth is not None
    return path, inj, truth
