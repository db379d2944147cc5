"""A reduced soak: every fault once through a real monitor process, nothing lost or doubled.

The same code as ``benchmarks/soak_faults.py`` (2,000 injections, the
documented benchmark), on about 50 injections with each fault once: a real
small filesystem filled for 3 s, ``kill -9``, the file held by another process
across a restart, a FIFO and a link to ``/dev/zero``, a decompression bomb, an
inotify overflow. Not timed; it asserts only outcomes.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)


def _soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "soak_faults", ROOT / "benchmarks" / "soak_faults.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_faults"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _can_mount(where: Path) -> str | None:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return done.stderr.strip() or f"mount exited {done.returncode}"
    subprocess.run(["umount", str(where)], check=False, capture_output=True)
    return None


def test_reduced_soak_every_fault_once_exactly_once_and_equal_to_a_clean_batch(
    tmp_path: Path,
) -> None:
    why = _can_mount(tmp_path / "probe")
    if why is not None:
        pytest.skip(f"the soak's disk-full fault needs a real small filesystem (tmpfs): {why}")
    soak = _soak_module()
    cfg = soak.SoakConfig(
        injections=50,
        faults=len(soak.KINDS),  # each kind once, at random moments
        seed=3,
        disk_full_seconds=3.0,
        lock_seconds=3.0,
        rate=10.0,
        per_run=10,
        bomb_mb=64,  # past the ratio limit (100:1 after 8 MB) like a 2 GiB one, but quick
        fs_size="256m",
        settle=0.2,
    )
    work = tmp_path / "work"
    work.mkdir()
    result = soak.soak(cfg, work)
    print(result)
    assert sorted(result.faults) == sorted(soak.KINDS)
    assert result.missing == 0, result.examples
    assert result.stored_twice == 0, result.examples
    assert result.results_differ_from_clean_batch == 0, result.examples
    assert result.bomb_rows == [1]  # one READ_ERROR row, not zero, not two
    assert result.not_files_stored == 0
    assert result.said and all(result.said.values()), result.said
    assert result.exit_code == 0
    assert result.passed
