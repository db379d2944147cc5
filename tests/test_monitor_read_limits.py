"""The monitor reads under the [read] limits of its own settings, not the defaults."""

from __future__ import annotations

import gzip
from pathlib import Path

from helpers import wait_for

from asnmon.assay import Assay
from asnmon.monitor import Monitor
from asnmon.settings import Settings

HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n<mzML xmlns="http://psi.hupo.org/ms/mzml"><!--'
TAIL = b"--></mzML>\n"


class _Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


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
    tmp_path: Path, assay: Assay, no_thread_leak: None
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    # 3 MiB inflated from ~3 kB: within the defaults (1,024 MB, and a ratio judged only
    # past 8 MB), over this instrument's max_inflated_mb = 2
    payload = HEAD + b" " * (3 << 20) + TAIL
    (folder / "001_BIG.mzML.gz").write_bytes(gzip.compress(payload, mtime=0))
    lines = _Lines()
    settings = Settings(
        folder=str(folder),
        db=str(tmp_path / "m.duckdb"),
        settle=0.2,
        dashboard=False,
        max_inflated_mb=2.0,
    )
    monitor = Monitor(settings, assay, out=lines)
    monitor.start()
    try:
        assert wait_for(lambda: "001_BIG.mzML.gz" in _errors(monitor), 30), "\n".join(lines)
        assert "max_inflated_mb" in _errors(monitor)["001_BIG.mzML.gz"]
    finally:
        monitor.stop()
