"""Monitor settings: one TOML file per instrument, then environment, then command line.

Later sources win: ``settings.toml`` < ``ASNMON_<SECTION>_<KEY>`` environment
variables < command-line options. Every key is checked here and an invalid
one is named with what is wrong, before anything starts.
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
    converted_dir: str | None = _k("convert", None, "where converted mzML files go")
    converters: Mapping[str, Converter] = field(
        default_factory=dict,
        metadata={"section": "convert", "help": "extension -> {command, timeout}"},
    )

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
        return replace(self, **given)


_TYPES = {
    "folder": str,
    "recursive": bool,
    "poll": float,
    "settle": float,
    "max_write": float,
    "retry_every": float,
    "rescan_every": float,
    "stuck_after": float,
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
}
_NON_NEGATIVE = (
    "batch_seconds",
    "share_every",
    "log_max_mb",
    "max_per_hour",
    "retries",
    "log_backups",
    "backup_every",
    "backup_keep",
)
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
        return tuple(value)
    if not isinstance(value, typ) or (typ in (int, float) and isinstance(value, bool)):
        raise SettingsError(f"{where}: must be {typ.__name__}, got {value!r}")
    number = float(value) if isinstance(value, int | float) else 0.0
    if key in ("poll", "settle") and not number >= 0:  # "not >=" also catches nan
        raise SettingsError(f"{where}: must be >= 0 seconds, got {value}")
    if key in ("max_write", "retry_every", "rescan_every", "stuck_after") and not (
        0 < number < float("inf")
    ):
        raise SettingsError(f"{where}: must be > 0 seconds, got {value}")
    if key in ("guide_start", "guide_end"):
        try:
            date.fromisoformat(str(value))
        except ValueError:
            raise SettingsError(f"{where}: must be a date YYYY-MM-DD, got {value!r}") from None
    if key in _CHOICES and value not in _CHOICES[key]:
        raise SettingsError(f"{where}: must be one of {', '.join(_CHOICES[key])}; got {value!r}")
    if key in _NON_NEGATIVE and not number >= 0:
        raise SettingsError(f"{where}: must be >= 0, got {value}")
    if key == "max_request_kb" and not 16 <= number <= 1024 * 1024:
        raise SettingsError(f"{where}: must be 16-1048576 KiB, got {value}")
    if key in ("port", "smtp_port") and not 0 < number < 65536:
        raise SettingsError(f"{where}: must be a TCP port 1-65535, got {value}")
    return value


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
                    or not timeout > 0
                ):
                    raise SettingsError(f"{where}.timeout: must be > 0 seconds")
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
    return Settings(**values)


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
    return replace(settings, **env_overrides(os.environ if environ is None else environ))
