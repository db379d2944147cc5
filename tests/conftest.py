"""Shared fixtures: where the real mzML corpus lives, the shipped assay, monitors."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from asnmon.assay import Assay, load_assay

# Timings never decide a test (the machine may be loaded): no per-example deadline
# for any hypothesis test, not only the ones that remember to say so.
settings.register_profile("asnmon", deadline=None)
settings.load_profile("asnmon")

ROOT = Path(__file__).resolve().parent.parent


def realdata_dir() -> Path | None:
    """``ASNMON_REALDATA`` or ``../shared/realdata`` beside the project; None if absent."""
    env = os.environ.get("ASNMON_REALDATA")
    candidates = [Path(env)] if env else [ROOT.parent / "shared" / "realdata"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def realdata() -> Path:
    path = realdata_dir()
    if path is None:
        pytest.skip(
            "real mzML corpus not found: set ASNMON_REALDATA or place it at "
            "../shared/realdata (public files, not shipped with asnmon)"
        )
    return path


@pytest.fixture(scope="session")
def assay() -> Assay:
    return load_assay()


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    """Fail the test if a thread it started is still running after teardown."""
    from helpers import wait_for

    before = set(threading.enumerate())
    yield

    def leaked() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in before and t.is_alive()]

    if not wait_for(lambda: not leaked(), 3.0):
        pytest.fail(f"threads leaked past stop(): {leaked()}")


@pytest.fixture
def make_monitor(
    no_thread_leak: None, tmp_path: Path, assay: Assay
) -> Iterator[Callable[..., tuple[Any, Any]]]:
    """Start in-process monitors on real folders; every one is stopped at teardown."""
    from helpers import MONITOR_SETTLE, Lines

    from asnmon.monitor import Monitor
    from asnmon.settings import Settings

    made: list[Monitor] = []

    def make(folder: Path, **options: Any) -> tuple[Monitor, Lines]:
        values: dict[str, Any] = {
            "folder": str(folder),
            "db": str(tmp_path / "monitor.duckdb"),
            "settle": MONITOR_SETTLE,
            "retry_every": 0.2,
            "dashboard": False,
            **options,
        }
        lines = Lines()
        monitor = Monitor(Settings(**values), assay, out=lines)
        made.append(monitor)
        monitor.start()
        return monitor, lines

    yield make
    for monitor in made:
        monitor.stop()
