"""Monitor settings: one TOML file per instrument, then environment, then command line.

Later sources win: ``settings.toml`` < ``ASNMON_<SECTION>_<KEY>`` environment
variables < command-line options. Every key is checked here and an invalid
one is named with what is wrong, before anything starts: its type, and for a
number a range that can work (``_RANGES``, each with its reason), so that
``settle = inf`` or ``poll = 1e-300`` stop at start-up instead of stalling the
watcher or spinning a core.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from asnmon.errors import SettingsError
from asnmon.fileread import DEFAULT_LIMITS, ReadLimits


@dataclass(frozen=True, slots=True)
class Converter:
    command: str
    timeout: float = 600.0


def _k(section: str, default: Any, help: str) -> Any:
    return field(default=default, metadata={"section": section, "help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    folder: str | None = _k("watch", None, "folder the instrument (or converter) writes into")
    recursive: bool = _k("watch", False, "also watch sub-folders (one run per sub-folder)")
    poll: float = _k("watch", 0.0, "poll every N s instead of native events (network shares)")
    settle: float = _k("watch", 0.5, "s a file must stay unchanged (and closed) before reading")
    max_write: float = _k("watch", 7200.0, "s after which a still-growing file is INCOMPLETE")
    one_writer: bool = _k(
        "watch",
        True,
        "the instrument writes one injection at a time, so an open file older than a "
        "complete one was abandoned (INCOMPLETE at once); false for multiplexed LC writing "
        "several files at once",
    )
    retry_every: float = _k("watch", 3.0, "s between checks for a lost folder")
    rescan_every: float = _k(
        "watch", 300.0, "s between full rescans that catch file events the system lost"
    )
    patterns: tuple[str, ...] = _k("watch", ("*.mzML", "*.mzml", "*.mzML.gz"), "file patterns")
    assay: str | None = _k("run", None, "assay TOML (default: the built-in asparagine assay)")
    worklist: str | None = _k("run", None, "worklist CSV (default: worklist*.csv in the folder)")
    carry_calibration: bool = _k("run", False, "start a new run with the last accepted curve")
    stuck_after: float = _k(
        "run", 300.0, "s without progress before the ingestion worker is reported stuck"
    )
    heartbeat_every: float = _k(
        "run", 10.0, "s between status writes; a status 3 beats old = monitor not running"
    )
    stall_factor: float = _k(
        "run",
        3.0,
        "INSTRUMENT STALLED when no file came for this many median injection intervals",
    )
    on_fail: tuple[str, ...] = _k(
        "actions",
        (),
        'command run (no shell) when an injection or the run turns FAIL, e.g. ["pause.cmd", '
        '"{run}"]; placeholders {run} {file} {position} {code} {event} {status_file}',
    )
    on_fail_timeout: float = _k("actions", 30.0, "s before the on_fail command is killed")
    status_file: str | None = _k(
        "actions", None, "JSON verdict file (default: <db name>.status.json beside the database)"
    )
    db: str = _k("database", "asnmon.duckdb", "DuckDB file")
    backup_dir: str | None = _k("database", None, "folder for the monitor's own backups")
    backup_every: float = _k("database", 24.0, "hours between backups")
    backup_keep: int = _k("database", 14, "backups kept")
    dashboard: bool = _k("dashboard", True, "serve the dashboard from the monitor")
    host: str = _k("dashboard", "127.0.0.1", "address to bind; others need a password")
    port: int = _k("dashboard", 8050, "port")
    password: str | None = _k("dashboard", None, "HTTP basic-auth password (user 'asnmon')")
    insecure: bool = _k(
        "dashboard",
        False,
        "allow another address without a password "
        "(anyone on the network can see results and acknowledge flags)",
    )
    allowed_hosts: tuple[str, ...] = _k(
        "dashboard",
        (),
        "more host names the dashboard is reached by (a lab DNS name); others get HTTP 400",
    )
    max_request_kb: int = _k(
        "dashboard", 1024, "largest request body accepted, KiB (bigger: HTTP 413)"
    )
    guide_runs: tuple[str, ...] = _k(
        "qc", (), "runs forming the Westgard guide set (default: every other run in the database)"
    )
    guide_start: str | None = _k("qc", None, "or: guide set from this date (YYYY-MM-DD)")
    guide_end: str | None = _k("qc", None, "... to this date (YYYY-MM-DD, inclusive)")
    instrument: str | None = _k(
        "run", None, "name in alerts and shared files (default: computer name)"
    )
    webhook: str | None = _k(
        "alerts", None, "webhook URL (Slack, Teams Workflows, any JSON endpoint)"
    )
    webhook_kind: str = _k("alerts", "generic", "slack | teams | generic")
    smtp_host: str | None = _k("alerts", None, "SMTP server for e-mail alerts")
    smtp_port: int = _k("alerts", 587, "SMTP port")
    smtp_security: str = _k("alerts", "starttls", "starttls | ssl | none")
    smtp_user: str | None = _k("alerts", None, "SMTP login")
    smtp_password: str | None = _k(
        "alerts", None, "SMTP password (prefer ASNMON_ALERTS_SMTP_PASSWORD)"
    )
    smtp_cafile: str | None = _k("alerts", None, "PEM of an internal CA for the mail server")
    mail_from: str | None = _k("alerts", None, "sender address")
    mail_to: tuple[str, ...] = _k("alerts", (), "recipients")
    batch_seconds: float = _k("alerts", 60.0, "s to collect events into one message")
    max_per_hour: int = _k("alerts", 6, "messages per hour at most; the rest are summarised")
    retries: int = _k("alerts", 4, "retries of a failed send, with back-off")
    share_dir: str | None = _k("share", None, "shared folder for Parquet exports")
    share_every: float = _k("share", 10.0, "minutes between exports")
    log_file: str | None = _k("logs", None, "rotating log file (default: console only)")
    log_level: str = _k("logs", "INFO", "DEBUG | INFO | WARNING | ERROR")
    log_max_mb: float = _k("logs", 10.0, "MB per log file")
    log_backups: int = _k("logs", 5, "old log files kept")
    max_file_mb: float = _k(
        "read", DEFAULT_LIMITS.max_file_mb, "MB an mzML file may have on disk (.gz: compressed)"
    )
    max_inflated_mb: float = _k(
        "read",
        DEFAULT_LIMITS.max_inflated_mb,
        "MB one file may inflate to (a .gz document and its zlib arrays together)",
    )
    max_ratio: float = _k(
        "read",
        DEFAULT_LIMITS.max_ratio,
        "inflated : compressed size allowed past 8 MB of output (decompression bombs)",
    )
    approver_not_reviewer: bool = _k(
        "review",
        True,
        "the approver of a run must not be the person who reviewed it (four-eyes "
        "principle: a second person checks what the first signed)",
    )
    idle_minutes: float = _k(
        "review",
        30.0,
        "dashboard log-in ends after N minutes without a request (NIST SP 800-63B §4.2.3: "
        "re-authenticate after at most 30 minutes of inactivity)",
    )
    converted_dir: str | None = _k("convert", None, "where converted mzML files go")
    converters: Mapping[str, Converter] = field(
        default_factory=dict,
        metadata={"section": "convert", "help": "extension -> {command, timeout}"},
    )

    @property
    def read_limits(self) -> ReadLimits:
        """The ``[read]`` limits, for ``read_injection``, ``file_sha256`` and ``is_complete``."""
        return ReadLimits(self.max_file_mb, self.max_inflated_mb, self.max_ratio)

    def with_overrides(self, **values: Any) -> Settings:
        """Command-line values win; ``None`` means "not given".

        They are checked like the file's, so ``--settle -1`` is named as the
        culprit instead of failing later deep inside the watcher.
        """
        given = {k: v for k, v in values.items() if v is not None}
        for key, value in given.items():
            if key not in _TYPES:
                raise SettingsError(f"command line: unknown setting {key!r}")
            where = f"command line --{key.replace('_', '-')}"
            given[key] = _check(key, list(value) if isinstance(value, tuple) else value, where)
        return _check_together(replace(self, **given), "command line")


_TYPES = {
    "folder": str,
    "recursive": bool,
    "one_writer": bool,
    "poll": float,
    "settle": float,
    "max_write": float,
    "retry_every": float,
    "rescan_every": float,
    "stuck_after": float,
    "heartbeat_every": float,
    "stall_factor": float,
    "on_fail": tuple,
    "on_fail_timeout": float,
    "status_file": str,
    "patterns": tuple,
    "assay": str,
    "worklist": str,
    "carry_calibration": bool,
    "db": str,
    "dashboard": bool,
    "host": str,
    "port": int,
    "password": str,
    "insecure": bool,
    "allowed_hosts": tuple,
    "max_request_kb": int,
    "converted_dir": str,
    "approver_not_reviewer": bool,
    "idle_minutes": float,
    "instrument": str,
    "guide_runs": tuple,
    "guide_start": str,
    "guide_end": str,
    "webhook": str,
    "webhook_kind": str,
    "smtp_host": str,
    "smtp_port": int,
    "smtp_security": str,
    "smtp_user": str,
    "smtp_password": str,
    "smtp_cafile": str,
    "mail_from": str,
    "mail_to": tuple,
    "batch_seconds": float,
    "max_per_hour": int,
    "retries": int,
    "share_dir": str,
    "share_every": float,
    "log_file": str,
    "log_level": str,
    "log_max_mb": float,
    "log_backups": int,
    "backup_dir": str,
    "backup_every": float,
    "backup_keep": int,
    "max_file_mb": float,
    "max_inflated_mb": float,
    "max_ratio": float,
}
# (lowest, highest, unit, why): a number outside cannot work. NaN and infinity are
# outside every range. Keys in _ZERO_MEANS also take 0, with that meaning.
_RANGES: dict[str, tuple[float, float, str, str]] = {
    "poll": (0.1, 3600.0, " s", "polling more than 10 times a second only loads the share and "
             "a core; more than an hour between polls leaves results waiting"),
    "settle": (0.0, 3600.0, " s", "a file unchanged for an hour is finished; waiting longer "
               "only delays every result"),
    "max_write": (1.0, 7 * 86400.0, " s", "an injection file is written in minutes to hours, "
                  "never for more than a week"),
    "retry_every": (0.1, 3600.0, " s", "faster only spins on a lost share; slower than an "
                    "hour leaves a returned folder unwatched"),
    "backup_every": (1 / 60, 8760.0, " hours", "a backup more often than once a minute "
                     "competes with ingestion; less than once a year is none"),
    "backup_keep": (0.0, 10000.0, "", "0 keeps the newest only"),
    "batch_seconds": (0.0, 86400.0, " s", "an alert held for more than a day is no alert"),
    "max_per_hour": (1.0, 3600.0, "", "0 would silence every alert (leave webhook and "
                     "smtp_host unset to turn alerts off)"),
    "retries": (0.0, 20.0, "", "more retries only delay the next message"),
    "share_every": (0.0, 1440.0, " minutes", "other instruments would see results a day late"),
    "log_max_mb": (0.1, 10240.0, " MB", "a smaller log file rotates its history away within "
                   "minutes; a larger one fills the disk"),
    "log_backups": (0.0, 1000.0, "", "more old logs only fill the disk"),
    "max_file_mb": (1.0, 1048576.0, " MB", "a genuine run is 0.2 MB to a few hundred MB; the "
                    "reader holds a file in memory, so a terabyte can never be read"),
    "max_inflated_mb": (1.0, 1048576.0, " MB", "the same: inflated bytes are held in memory"),
    "max_ratio": (10.0, 1032.0, ":1", "genuine .mzML.gz files reach 22:1; deflate cannot "
                  "exceed 1,032:1, so a larger value would be no limit"),
    "max_request_kb": (16.0, 1048576.0, " KiB", "smaller refuses the dashboard's own requests; "
                       "larger lets one request fill memory"),
    "rescan_every": (1.0, 86400.0, " s", "more often than every second only loads the disk; "
                     "less than daily leaves a lost file event unnoticed for a day"),
    "idle_minutes": (1.0, 720.0, " minutes", "a log-in that ends within a minute cannot "
                     "be used; NIST SP 800-63B §4.2.3 re-authenticates at least every 12 hours"),
    "stuck_after": (1.0, 86400.0, " s", "an injection is read in seconds; a worker silent for "
                    "a day is stuck"),
    "heartbeat_every": (1.0, 300.0, " s", "faster only writes the database; slower than 5 min "
                        "and a dead monitor looks alive for a quarter of an hour"),
    # 3 by default: one injection the worklist does not show (an extra blank, a long
    # re-equilibration) is one extra interval without a file; three intervals means at
    # least two injections did not happen, which no method's jitter explains.
    "stall_factor": (1.5, 50.0, " intervals", "below 1.5 a normal slow injection alarms; "
                     "above 50 a stopped instrument goes unnoticed all night"),
    "on_fail_timeout": (1.0, 600.0, " s", "a pause command that has not answered in 10 min "
                        "will not; less than a second cannot start a program"),
}  # fmt: skip
_ZERO_MEANS = {"poll": "native file events", "backup_every": "no backups"}
# a file is written there, so a folder cannot work (with an example of a name for one)
_PATH_IS_FILE = {
    "log_file": "asnmon.log",
    "db": "asnmon.duckdb",
    "status_file": "asnmon.status.json",
}
_CHOICES = {
    "webhook_kind": ("slack", "teams", "generic"),
    "smtp_security": ("starttls", "ssl", "none"),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
}


def _check(key: str, value: Any, where: str) -> Any:
    typ = _TYPES[key]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"{where}: must be a list of strings, got {value!r}")
        if key == "patterns" and (not value or not all(v.strip() for v in value)):
            raise SettingsError(
                f'{where}: must name at least one file pattern (e.g. ["*.mzML", "*.mzML.gz"]); '
                f"got {value!r}, so no file would ever be read"
            )
        if key == "on_fail" and value and not value[0].strip():
            raise SettingsError(
                f'{where}: the first item must be the program to run (e.g. ["pause.cmd", '
                f'"{{run}}"]); got {value!r}'
            )
        return tuple(value)
    if not isinstance(value, typ) or (typ in (int, float) and isinstance(value, bool)):
        raise SettingsError(f"{where}: must be {typ.__name__}, got {value!r}")
    number = float(value) if isinstance(value, int | float) else 0.0
    if key in _RANGES and not (key in _ZERO_MEANS and number == 0):
        lo, hi, unit, why = _RANGES[key]
        if not lo <= number <= hi:  # NaN compares false: refused too
            zero = f"0 ({_ZERO_MEANS[key]}) or " if key in _ZERO_MEANS else ""
            raise SettingsError(
                f"{where}: must be {zero}between {lo:g} and {hi:g}{unit} ({why}); got {value}"
            )
    if key in _PATH_IS_FILE and isinstance(value, str):
        _check_file_path(key, value, where)
    if key in ("guide_start", "guide_end"):
        try:
            date.fromisoformat(str(value))
        except ValueError:
            raise SettingsError(f"{where}: must be a date YYYY-MM-DD, got {value!r}") from None
    if key in _CHOICES and value not in _CHOICES[key]:
        raise SettingsError(f"{where}: must be one of {', '.join(_CHOICES[key])}; got {value!r}")
    if key in ("port", "smtp_port") and not 0 < number < 65536:
        raise SettingsError(f"{where}: must be a TCP port 1-65535, got {value}")
    return value


def _check_file_path(key: str, value: str, where: str) -> None:
    """A file is written at this path: an existing folder there (or a file above it) cannot work."""
    path = Path(value).expanduser()
    if path.is_dir():
        example = path / _PATH_IS_FILE[key]
        raise SettingsError(f"{where}: {value!r} is a folder; name a file in it, e.g. {example}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SettingsError(f"{where}: {str(parent)!r} is a file, so {value!r} cannot be")
            break


def _check_together(settings: Settings, source: str) -> Settings:
    """Keys that work alone but not with each other."""
    if settings.settle >= settings.max_write:
        raise SettingsError(
            f"{source}: watch.settle ({settings.settle:g} s) must be shorter than "
            f"watch.max_write ({settings.max_write:g} s), or every file is flagged INCOMPLETE "
            "before it can settle"
        )
    return settings


def parse_settings(data: Mapping[str, Any], source: str = "settings") -> Settings:
    sections: dict[str, list[str]] = {}
    for f in fields(Settings):
        sections.setdefault(f.metadata["section"], []).append(f.name)
    values: dict[str, Any] = {}
    for section, table in data.items():
        if section not in sections:
            raise SettingsError(
                f"{source}: unknown section [{section}] (known: {', '.join(sections)})"
            )
        if not isinstance(table, dict):
            raise SettingsError(f"{source}: [{section}] must be a table")
        for key, value in table.items():
            where = f"{source}: {section}.{key}"
            if section == "convert" and key.startswith("."):
                if not isinstance(value, dict) or "command" not in value:
                    raise SettingsError(
                        f"{where}: must be a table with 'command' (and optionally 'timeout')"
                    )
                if "{input}" not in str(value["command"]):
                    raise SettingsError(f"{where}.command: has no {{input}} placeholder")
                timeout = value.get("timeout", 600.0)
                if (
                    not isinstance(timeout, int | float)
                    or isinstance(timeout, bool)
                    or not 0 < timeout <= 86400
                ):
                    raise SettingsError(
                        f"{where}.timeout: must be > 0 and at most 86400 seconds (a conversion "
                        f"that takes a day has hung); got {timeout!r}"
                    )
                values.setdefault("converters", {})[key.lower()] = Converter(
                    str(value["command"]), float(timeout)
                )
                continue
            if key not in sections[section] or key == "converters":
                raise SettingsError(
                    f"{where}: unknown key (known in [{section}]: "
                    f"{', '.join(k for k in sections[section] if k != 'converters')})"
                )
            values[key] = _check(key, value, where)
    return _check_together(Settings(**values), source)


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``ASNMON_WATCH_FOLDER=...`` style variables, typed like the TOML keys."""
    out: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "converters":
            continue
        name = f"ASNMON_{f.metadata['section'].upper()}_{f.name.upper()}"
        if name not in environ:
            continue
        raw = environ[name]
        typ = _TYPES[f.name]
        try:
            if typ is bool:
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(raw)
                value: Any = raw.lower() in ("1", "true", "yes")
            elif typ is tuple:
                value = tuple(p.strip() for p in raw.split(",") if p.strip())
            else:
                value = typ(raw)
        except ValueError:
            raise SettingsError(f"environment {name}={raw!r}: not a valid {typ.__name__}") from None
        # The same range checks as the file's: an environment value is no less a setting.
        out[f.name] = _check(f.name, list(value) if typ is tuple else value, f"environment {name}")
    return out


def load_settings(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings file (optional), then the environment."""
    settings = Settings()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text("utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"{p}: no such settings file") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{p}: not valid TOML ({exc})") from exc
        settings = parse_settings(data, str(p))
    merged = replace(settings, **env_overrides(os.environ if environ is None else environ))
    return _check_together(merged, "settings and environment")
