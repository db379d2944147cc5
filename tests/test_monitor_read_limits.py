"""The monitor reads under the [read] limits of its own settings, not the defaults."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

from helpers import Lines, wait_for

from asnmon.monitor import Monitor

HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n<mzML xmlns="http://psi.hupo.org/ms/mzml"><!--'
TAIL = b"--></mzML>\n"


def _errors(monitor: Monitor) -> dict[str, str]:
    rows = (
        monitor.store.reader()
        .execute(
            "SELECT i.file, f.message FROM flags f JOIN injections i USING (injection_id) "
            "WHERE f.code = 'READ_ERROR'"
        )
        .fetchall()
    )
    return {str(f): str(m) for f, m in rows}


def test_a_file_over_the_settings_inflation_limit_is_a_read_error_naming_it(
    tmp_path: Path, make_monitor: Callable[..., tuple[Monitor, Lines]]
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    # 3 MiB inflated from ~3 kB: within the defaults (1,024 MB, and a ratio judged only
    # past 8 MB), over this instrument's max_inflated_mb = 2
    payload = HEAD + b" " * (3 << 20) + TAIL
    (folder / "001_BIG.mzML.gz").write_bytes(gzip.compress(payload, mtime=0))
    monitor, lines = make_monitor(folder, max_inflated_mb=2.0)
    assert wait_for(lambda: "001_BIG.mzML.gz" in _errors(monitor), 30), "\n".join(lines.all())
    assert "max_inflated_mb" in _errors(monitor)["001_BIG.mzML.gz"]
