"""What several test modules need alike: waiting on conditions, a monitor's printed
lines, and headless Chromium."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
