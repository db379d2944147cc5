"""Shared fixtures: where the real mzML corpus lives, the shipped assay."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from asnmon.assay import Assay, load_assay

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
