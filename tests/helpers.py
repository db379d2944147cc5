"""What several test modules need alike: waiting on conditions, a monitor's printed
lines, a real ``asnmon`` process, and headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NO_BROWSER = (
    "headless browser tests need chromium and chromedriver on PATH "
    "(Debian: apt-get install chromium chromium-driver)"
)


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


class Proc:
    """A real ``asnmon`` process whose stdout and stderr lines are collected as they come."""

    def __init__(self, argv: list[str]) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="backslashreplace",  # a file name that is not UTF-8 must not kill the reader
        )
        self._readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.popen.stdout, self.lines), (self.popen.stderr, self.errors))
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

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.finish()
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
