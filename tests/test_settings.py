"""Settings: TOML < ``ASNMON_<SECTION>_<KEY>`` environment < command line.

An invalid value from any of the three sources must name its key (or variable,
or option) and what is wrong with it, before anything starts watching.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import wait_for

from asnmon import cli
from asnmon.errors import SettingsError
from asnmon.settings import Converter, Settings, env_overrides, load_settings

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent


def cli_overrides(argv: list[str]) -> dict[str, object]:
    """What ``cmd_run`` hands to ``with_overrides``, from real parsed arguments."""
    a = cli.build_parser().parse_args(["run", *argv])
    return {
        "folder": a.watch,
        "assay": a.assay,
        "worklist": a.worklist,
        "db": a.db,
        "poll": a.poll,
        "settle": a.settle,
        "max_write": a.max_write,
        "recursive": a.recursive,
        "host": a.host,
        "port": a.port,
        "dashboard": False if a.no_dashboard else None,
    }


TOML = """
[watch]
folder = "from-toml"
settle = 2
poll = 5.0
patterns = ["*.mzML"]
[run]
worklist = "toml-worklist.csv"
carry_calibration = true
[database]
db = "toml.duckdb"
[dashboard]
port = 8100
[convert]
".RAW" = {command = "msconvert {input} -o {output_dir}", timeout = 30}
".d" = {command = "conv {input}"}
"""


def test_toml_then_environment_then_command_line(tmp_path: Path) -> None:
    path = tmp_path / "qqq1.toml"
    path.write_text(TOML, encoding="utf-8")
    env = {"ASNMON_WATCH_SETTLE": "0.7", "ASNMON_DATABASE_DB": "env.duckdb", "HOME": "/x"}
    settings = load_settings(path, env)
    # file values, typed (an int where a float is meant is accepted)
    assert settings.poll == 5.0
    assert settings.worklist == "toml-worklist.csv"
    assert settings.carry_calibration is True
    assert settings.patterns == ("*.mzML",)
    assert settings.converters == {
        ".raw": Converter("msconvert {input} -o {output_dir}", 30.0),
        ".d": Converter("conv {input}", 600.0),
    }
    # environment over file
    assert settings.settle == 0.7
    assert settings.db == "env.duckdb"
    # command line over both; options not given leave the rest alone
    final = settings.with_overrides(
        **cli_overrides(["--watch", "cli-dir", "--settle", "0.3", "--no-dashboard"])
    )
    assert (final.folder, final.settle, final.db, final.dashboard) == (
        "cli-dir",
        0.3,
        "env.duckdb",
        False,
    )
    assert final.port == 8100
    assert final.worklist == "toml-worklist.csv"


def test_defaults_without_any_source() -> None:
    settings = load_settings(None, {})
    assert settings == Settings()
    assert settings.settle == 0.5
    assert settings.max_write == 7200.0
    assert settings.with_overrides(**cli_overrides([])) == settings


def test_environment_types() -> None:
    out = env_overrides(
        {
            "ASNMON_WATCH_RECURSIVE": "yes",
            "ASNMON_WATCH_PATTERNS": "*.mzML, *.mzML.gz",
            "ASNMON_DASHBOARD_PORT": "8123",
            "ASNMON_RUN_CARRY_CALIBRATION": "0",
            "UNRELATED": "x",
        }
    )
    assert out == {
        "recursive": True,
        "patterns": ("*.mzML", "*.mzML.gz"),
        "port": 8123,
        "carry_calibration": False,
    }


INVALID_TOML = [
    ("[watch]\nsettle = -1", ["watch.settle", "between 0 and 3600 s", "got -1"]),
    ("[watch]\nsettle = nan", ["watch.settle", "between 0 and 3600 s", "got nan"]),
    ("[watch]\nsettle = inf", ["watch.settle", "between 0 and 3600 s", "got inf"]),
    ("[watch]\nmax_write = 0", ["watch.max_write", "between 1 and 604800 s"]),
    ("[watch]\npoll = 1e-300", ["watch.poll", "0 (native file events) or between 0.1 and 3600"]),
    ("[watch]\npoll = -inf", ["watch.poll", "got -inf"]),
    ("[watch]\npatterns = []", ["watch.patterns", "at least one file pattern"]),
    ("[watch]\npatterns = ['  ']", ["watch.patterns", "at least one file pattern"]),
    ("[watch]\nretry_every = 1e-300", ["watch.retry_every", "between 0.1 and 3600 s"]),
    ("[watch]\nsettle = 30\nmax_write = 20", ["watch.settle (30 s) must be shorter"]),
    ("[database]\nbackup_every = 1e-9", ["database.backup_every", "0 (no backups) or"]),
    ("[database]\nbackup_keep = -1", ["database.backup_keep", "between 0 and 10000"]),
    ("[alerts]\nmax_per_hour = 0", ["alerts.max_per_hour", "silence every alert"]),
    ("[alerts]\nbatch_seconds = inf", ["alerts.batch_seconds", "no alert"]),
    ("[alerts]\nretries = 1000", ["alerts.retries", "between 0 and 20"]),
    ("[share]\nshare_every = nan", ["share.share_every", "between 0 and 1440 minutes"]),
    ("[logs]\nlog_max_mb = 0", ["logs.log_max_mb", "between 0.1 and 10240 MB"]),
    ("[logs]\nlog_backups = 100000", ["logs.log_backups", "between 0 and 1000"]),
    ("[read]\nmax_file_mb = 0", ["read.max_file_mb", "between 1 and 1.04858e+06 MB"]),
    ("[read]\nmax_inflated_mb = inf", ["read.max_inflated_mb", "got inf"]),
    ("[read]\nmax_ratio = 5", ["read.max_ratio", "between 10 and 1032:1", "22:1"]),
    ("[read]\nmax_ratio = nan", ["read.max_ratio", "got nan"]),
    ("[read]\nmax_bytes = 5", ["read.max_bytes", "unknown key", "max_file_mb"]),
    ("[watch]\npoll = 'fast'", ["watch.poll", "must be float", "'fast'"]),
    ("[watch]\nrecursive = 'yes'", ["watch.recursive", "must be bool"]),
    ("[watch]\npatterns = '*.mzML'", ["watch.patterns", "list of strings"]),
    ("[watch]\nfolderr = 'x'", ["watch.folderr", "unknown key", "folder"]),
    ("[dashboard]\nport = 70000", ["dashboard.port", "1-65535", "70000"]),
    ("[dashboard]\nport = true", ["dashboard.port", "must be int"]),
    ("[watcher]\nfolder = 'x'", ["unknown section [watcher]", "watch"]),
    ("watch = 3", ["[watch] must be a table"]),
    ("[convert]\n'.raw' = 'msconvert {input}'", ["convert..raw", "table with 'command'"]),
    ("[convert]\n'.raw' = {command = 'msconvert'}", ["convert..raw.command", "{input}"]),
    (
        "[convert]\n'.raw' = {command = 'c {input}', timeout = 0}",
        ["convert..raw.timeout", "> 0 and at most 86400 seconds"],
    ),
    (
        "[convert]\n'.raw' = {command = 'c {input}', timeout = true}",
        ["convert..raw.timeout", "> 0 and at most 86400 seconds"],
    ),
    (
        "[convert]\n'.raw' = {command = 'c {input}', timeout = inf}",
        ["convert..raw.timeout", "got inf"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), INVALID_TOML)
def test_invalid_file_value_names_key_and_problem(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as err:
        load_settings(path, {})
    message = str(err.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_unreadable_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such settings file"):
        load_settings(tmp_path / "missing.toml", {})
    broken = tmp_path / "broken.toml"
    broken.write_text("[watch\nsettle = 1", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(broken, {})


INVALID_ENV = [
    ("ASNMON_WATCH_SETTLE", "soon", "not a valid float"),
    ("ASNMON_WATCH_SETTLE", "-2", "must be between 0 and 3600 s"),
    ("ASNMON_WATCH_SETTLE", "inf", "got inf"),
    ("ASNMON_WATCH_POLL", "1e-300", "between 0.1 and 3600 s"),
    ("ASNMON_WATCH_PATTERNS", " , ", "at least one file pattern"),
    ("ASNMON_WATCH_RETRY_EVERY", "0", "must be between 0.1 and 3600 s"),
    ("ASNMON_READ_MAX_RATIO", "nan", "got nan"),
    ("ASNMON_WATCH_RECURSIVE", "maybe", "not a valid bool"),
    ("ASNMON_DASHBOARD_PORT", "99999", "TCP port 1-65535"),
    ("ASNMON_DASHBOARD_PORT", "80.5", "not a valid int"),
]


@pytest.mark.parametrize(("name", "raw", "problem"), INVALID_ENV)
def test_invalid_environment_value_names_variable_and_problem(
    name: str, raw: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(None, {name: raw})
    assert name in str(err.value)
    assert problem in str(err.value)


@pytest.mark.parametrize(
    ("argv", "option", "problem"),
    [
        (["--settle", "-1"], "--settle", "between 0 and 3600 s"),
        (["--settle", "inf"], "--settle", "got inf"),
        (["--poll", "1e-300"], "--poll", "0 (native file events) or between 0.1"),
        (["--max-write", "0"], "--max-write", "between 1 and 604800 s"),
        (["--settle", "100", "--max-write", "50"], "command line", "must be shorter"),
        (["--port", "0"], "--port", "TCP port"),
    ],
)
def test_invalid_command_line_value_names_option(
    argv: list[str], option: str, problem: str
) -> None:
    with pytest.raises(SettingsError) as err:
        Settings().with_overrides(**cli_overrides(argv))
    assert option in str(err.value)
    assert problem in str(err.value)


# ---------------------------------------------------------------- through a real process


def run_argv(*args: str) -> list[str]:
    """``python -m asnmon.cli run ...``, as a user types it."""
    return [sys.executable, "-m", "asnmon.cli", "run", *args]


def test_precedence_in_a_real_asnmon_run(tmp_path: Path) -> None:
    """The settle the monitor announces comes from the command line, over env and file."""
    folder = tmp_path / "seq"
    folder.mkdir()
    toml = tmp_path / "s.toml"
    toml.write_text(
        f'[watch]\nfolder = "{folder.as_posix()}"\nsettle = 0.9\n'
        f'[database]\ndb = "{(tmp_path / "toml.duckdb").as_posix()}"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "ASNMON_WATCH_SETTLE": "0.7", "ASNMON_WATCH_POLL": "0.4"}
    with subprocess.Popen(
        run_argv("--settings", str(toml), "--settle", "0.3", "--no-dashboard"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
        reader.start()
        try:
            assert wait_for(lambda: any("watching" in line for line in lines), 30), lines
            watching = next(line for line in lines if "watching" in line)
            assert "settle 0.3 s" in watching  # command line over env (0.7) over file (0.9)
            assert "polling every 0.4 s" in watching  # env over the default
            assert "toml.duckdb" in watching  # the file over the default
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            reader.join(10)


def test_invalid_setting_stops_asnmon_run_before_it_starts(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text("[watch]\nsettle = -1\n", encoding="utf-8")
    proc = subprocess.run(
        run_argv("--settings", str(toml), "--watch", str(tmp_path), "--no-dashboard"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "watch.settle" in proc.stderr
    assert "must be between 0 and 3600 s" in proc.stderr
    assert "watching" not in proc.stdout


# ---------------------------------------------------------------- paths and [read]


@pytest.mark.parametrize("key", ["log_file", "db"])
def test_a_file_setting_naming_a_folder_is_refused(tmp_path: Path, key: str) -> None:
    section = "logs" if key == "log_file" else "database"
    path = tmp_path / "s.toml"
    path.write_text(f'[{section}]\n{key} = "{tmp_path.as_posix()}"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=rf"{section}.{key}: .* is a folder; name a file"):
        load_settings(path, {})
    (tmp_path / "plain").write_text("x")
    below = (tmp_path / "plain" / "asnmon.log").as_posix()
    path.write_text(f'[{section}]\n{key} = "{below}"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"plain' is a file, so"):
        load_settings(path, {})
    with pytest.raises(SettingsError, match=rf"ASNMON_{section.upper()}_{key.upper()}"):
        load_settings(None, {f"ASNMON_{section.upper()}_{key.upper()}": str(tmp_path)})


def test_a_log_file_in_a_folder_still_to_be_made_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    target = (tmp_path / "new" / "logs" / "asnmon.log").as_posix()
    path.write_text(f'[logs]\nlog_file = "{target}"\n', encoding="utf-8")
    assert load_settings(path, {}).log_file == target


def test_read_limits_come_from_the_read_section(tmp_path: Path) -> None:
    from asnmon.fileread import DEFAULT_LIMITS, ReadLimits

    assert Settings().read_limits == DEFAULT_LIMITS
    path = tmp_path / "s.toml"
    path.write_text("[read]\nmax_file_mb = 64\nmax_inflated_mb = 256\nmax_ratio = 500\n")
    settings = load_settings(path, {"ASNMON_READ_MAX_RATIO": "200"})
    assert settings.read_limits == ReadLimits(max_file_mb=64, max_inflated_mb=256, max_ratio=200)


def test_every_numeric_key_has_a_range() -> None:
    """A new number without bounds fails here: NaN and infinity must never pass."""
    from asnmon.settings import _RANGES, _TYPES

    numeric = {k for k, t in _TYPES.items() if t in (int, float)} - {"port", "smtp_port"}
    assert numeric == set(_RANGES)
    for key in numeric:
        for bad in (float("nan"), float("inf"), -float("inf")):
            with pytest.raises(SettingsError, match=key.replace("_", "-")):
                Settings().with_overrides(**{key: bad})
