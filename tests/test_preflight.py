"""Preflight checks on real folders, a real DuckDB file held by another process, a real port."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from asnmon.logs import setup_logging
from asnmon.preflight import (
    format_checklist,
    has_fatal,
    run_checks,
    settings_template,
    write_settings_template,
)
from asnmon.settings import Converter, Settings, parse_settings


def _by_name(checks: list) -> dict:  # type: ignore[type-arg]
    return {c.name: c for c in checks}


def _good(tmp_path: Path, **kw: object) -> Settings:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    return Settings(folder=str(folder), db=str(tmp_path / "lab.duckdb"), **kw)  # type: ignore[arg-type]


def test_a_good_setup_passes(tmp_path: Path) -> None:
    checks = run_checks(_good(tmp_path, dashboard=False))
    assert not has_fatal(checks), format_checklist(checks)
    assert [c.name for c in checks] == ["folder", "assay", "worklist", "database", "dashboard port"]
    assert format_checklist(checks).endswith("ready to run.")


def test_every_problem_is_named_with_a_fix(tmp_path: Path) -> None:
    bad_assay = tmp_path / "assay.toml"
    bad_assay.write_text("[limits]\nis_low_pct = -3\n")
    worklist = tmp_path / "wl.csv"
    worklist.write_text("file,sample_type\nS1,unknown_kind\n")
    settings = Settings(
        folder=str(tmp_path / "missing"),
        assay=str(bad_assay),
        worklist=str(worklist),
        db=str(tmp_path / "no-such-dir" / "lab.duckdb"),
        dashboard=False,
        converters={".raw": Converter("no-such-converter-xyz {input} -o {output_dir}")},
    )
    checks = _by_name(run_checks(settings))
    for name in ("folder", "assay", "worklist", "database", "converter .raw"):
        assert not checks[name].ok, name
        assert checks[name].fatal
        assert checks[name].fix, name
    assert "is_low_pct" in checks["assay"].detail
    assert "no-such-converter-xyz" in checks["converter .raw"].detail
    text = format_checklist(list(checks.values()))
    assert text.count("[FAIL]") == 5
    assert text.count("fix: ") == 5
    assert "5 problem(s) stop the monitor" in text


def test_converter_found_on_path_or_as_a_file(tmp_path: Path) -> None:
    settings = _good(
        tmp_path,
        dashboard=False,
        converters={
            ".raw": Converter(f'"{sys.executable}" conv.py {{input}}'),
            ".d": Converter("python3 conv.py {input}"),
        },
    )
    checks = _by_name(run_checks(settings))
    assert checks["converter .raw"].ok, checks["converter .raw"]
    assert checks["converter .d"].ok == (__import__("shutil").which("python3") is not None), checks[
        "converter .d"
    ]


def test_database_held_by_another_process_is_explained(tmp_path: Path) -> None:
    settings = _good(tmp_path, dashboard=False)
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print('open', flush=True); sys.stdin.read()",
            settings.db,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        try:
            assert holder.stdout.readline().strip() == "open"
            check = _by_name(run_checks(settings))["database"]
        finally:
            holder.stdin.close()
            holder.wait(20)
    assert not check.ok
    assert "another process" in check.detail
    assert "Stop the other asnmon" in check.fix
    assert _by_name(run_checks(settings))["database"].ok, "free again once the holder exits"


def test_port_in_use_is_fatal_and_can_be_skipped(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        settings = _good(tmp_path, port=port)
        check = _by_name(run_checks(settings))["dashboard port"]
        assert not check.ok
        assert str(port) in check.detail
        assert "dashboard port" not in _by_name(run_checks(settings, check_port=False))
    assert _by_name(run_checks(settings))["dashboard port"].ok


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_folder(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads every folder: permission checks cannot fail here")
    settings = _good(tmp_path, dashboard=False)
    Path(settings.folder or "").chmod(0)
    try:
        check = _by_name(run_checks(settings))["folder"]
    finally:
        Path(settings.folder or "").chmod(0o755)
    assert not check.ok
    assert "permission" in check.fix


def test_network_share_without_polling_is_a_warning(tmp_path: Path) -> None:
    settings = Settings(folder="//labserver/instruments/QQQ1", dashboard=False)
    check = _by_name(run_checks(settings))["folder"]
    assert not check.ok  # unreachable here: fatal, and the fix speaks of shares
    assert "share" in check.fix


# ---------------------------------------------------------------- asnmon init


def test_template_parses_and_names_every_setting() -> None:
    text = settings_template()
    parsed = parse_settings(tomllib.loads(text), "template")
    assert parsed.folder == "CHANGE_ME"
    sections = {}
    current = None
    for line in text.splitlines():
        head = re.match(r"^#?\s*\[(\w+)\]\s*$", line)
        if head:
            current = head.group(1)
            continue
        key = re.match(r"^#?\s*([a-z_]+) = ", line)
        if key and current:
            sections.setdefault(current, set()).add(key.group(1))
    for f in fields(Settings):
        if f.name == "converters":
            continue
        assert f.name in sections.get(f.metadata["section"], set()), (
            f"[{f.metadata['section']}] {f.name} missing from the template"
        )
    assert {"webhook", "webhook_kind", "smtp_host", "mail_to", "max_per_hour"} <= sections["alerts"]
    assert {"share_dir", "share_every"} <= sections["share"]
    assert {"log_file", "log_level", "log_max_mb", "log_backups"} <= sections["logs"]


def test_write_template_fills_in_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "qqq1" / "settings.toml"
    written = write_settings_template(target, folder=r"D:\Data\QQQ1", db="C:/asnmon/qqq1.duckdb")
    assert written == target
    parsed = parse_settings(tomllib.loads(target.read_text("utf-8")))
    assert parsed.folder == r"D:\Data\QQQ1"
    assert parsed.db == "C:/asnmon/qqq1.duckdb"
    target.write_text("# mine\n")
    with pytest.raises(FileExistsError, match="not overwritten"):
        write_settings_template(target)
    assert target.read_text() == "# mine\n"


# ---------------------------------------------------------------- logs


def test_log_file_rotates_by_size(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "asnmon.log"
    logger = setup_logging(log_file, "INFO", max_mb=0.002, backups=2, console=False)
    try:
        for i in range(200):
            logging.getLogger("asnmon.test").info("line %d %s", i, "x" * 40)
        logging.getLogger("asnmon.test").debug("not at INFO")
        for h in logger.handlers:
            h.flush()
        files = sorted(p.name for p in log_file.parent.iterdir())
        assert files == ["asnmon.log", "asnmon.log.1", "asnmon.log.2"]
        assert all(p.stat().st_size <= 2200 for p in log_file.parent.iterdir())
        assert "line 199" in log_file.read_text()
        assert "not at INFO" not in log_file.read_text()
        setup_logging(log_file, "DEBUG", console=False)  # again: handlers replaced, not added
        assert len(logger.handlers) == 1
        with pytest.raises(ValueError, match="unknown log level"):
            setup_logging(None, "LOUD")
    finally:
        setup_logging(None, "WARNING", console=False)
