"""Preflight: everything ``asnmon run`` needs, checked before it starts, each with a fix.

A monitor that starts and then fails at 2 a.m. because the share is not
mounted, the database is held by a forgotten process or the port is taken
is worse than one that refuses to start with a sentence saying what to do.
``run_checks`` never raises: every problem becomes a ``Check`` so the
checklist names them all at once. ``fatal`` problems stop ``asnmon run``;
the others are warnings.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sys
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from asnmon.errors import AsnmonError, NotADatabaseError, StoreError
from asnmon.settings import Settings

TEMPLATE = "settings_template.toml"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    fatal: bool = True  # when not ok: stops ``asnmon run`` (False: a warning)
    detail: str = ""
    fix: str = ""


def _ok(name: str, detail: str) -> Check:
    return Check(name, True, detail=detail)


def _bad(name: str, detail: str, fix: str, *, fatal: bool = True) -> Check:
    return Check(name, False, fatal=fatal, detail=detail, fix=fix)


# ---------------------------------------------------------------- the checks


def check_assay(settings: Settings) -> Check:
    from asnmon.assay import load_assay

    try:
        assay = load_assay(settings.assay)
    except AsnmonError as exc:
        return _bad(
            "assay",
            str(exc),
            "Run `asnmon check-assay FILE` for every problem by key, or remove [run] assay "
            "to use the built-in asparagine assay.",
        )
    return _ok("assay", f"{assay.name} ({settings.assay or 'built-in'})")


def check_worklist(settings: Settings) -> Check:
    if not settings.worklist:
        return _ok("worklist", "none configured: worklist*.csv in each run folder, else file names")
    from asnmon.worklist import load_worklist

    try:
        worklist = load_worklist(settings.worklist)
    except AsnmonError as exc:
        return _bad(
            "worklist",
            str(exc),
            "Fix the row and column named, or remove [run] worklist to use worklist*.csv in "
            "the run folder.",
        )
    if worklist.problems:  # the good rows work; the files of the bad ones wait for a fix
        return _bad(
            "worklist",
            worklist.describe_problems(),
            "Fix the row and column named: the files of those rows wait until it is saved.",
        )
    return _ok("worklist", f"{settings.worklist}: {len(worklist)} injections")


def check_folder(settings: Settings) -> Check:
    if not settings.folder:
        return _bad(
            "folder",
            "no folder to watch",
            "Set [watch] folder in the settings file, ASNMON_WATCH_FOLDER, or --watch DIR.",
        )
    folder = Path(settings.folder)
    try:
        if not folder.exists():
            return _bad(
                "folder",
                f"{folder} does not exist or is not reachable",
                "Check the path; for a network share check it is mounted (Linux) or reachable "
                "by the account the monitor runs as (Windows services do not see mapped drive "
                r"letters: use the \\server\share path).",
            )
        if not folder.is_dir():
            return _bad("folder", f"{folder} is not a folder", "Point [watch] folder at a folder.")
        entries = sum(1 for _ in folder.iterdir())
    except OSError as exc:
        return _bad(
            "folder",
            f"{folder} cannot be read ({exc.strerror or exc})",
            "Give the monitor's account read permission on the folder (and the share).",
        )
    how = f"polling every {settings.poll:g} s" if settings.poll else "native events"
    detail = f"{folder}: readable, {entries} entries, {how}"
    if not settings.poll and _looks_like_network(folder):
        return Check(
            "folder",
            False,
            fatal=False,
            detail=detail + "; looks like a network share",
            fix="Set [watch] poll = 5: native file events do not arrive from SMB/NFS shares.",
        )
    return _ok("folder", detail)


def _looks_like_network(folder: Path) -> bool:
    text = str(folder)
    if text.startswith(("\\\\", "//")):
        return True
    if sys.platform.startswith("linux"):
        try:
            mounts = Path("/proc/mounts").read_text().splitlines()
        except OSError:
            return False
        resolved = str(folder.resolve())
        best = ("", "")
        for line in mounts:
            parts = line.split()
            if len(parts) > 2 and resolved.startswith(parts[1]) and len(parts[1]) > len(best[0]):
                best = (parts[1], parts[2])
        return best[1] in {"cifs", "smb3", "smbfs", "nfs", "nfs4", "fuse.sshfs", "9p"}
    return False


def check_database(settings: Settings) -> Check:
    import duckdb

    db = Path(settings.db)
    parent = db.parent if str(db.parent) else Path(".")
    if not parent.is_dir():
        return _bad(
            "database",
            f"{parent} (folder of {db.name}) does not exist",
            "Create the folder, or point [database] db at a local disk folder.",
        )
    probe = parent / f".asnmon-write-test-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return _bad(
            "database",
            f"cannot write in {parent} ({exc.strerror or exc})",
            "Give the monitor's account write permission there, or move [database] db.",
        )
    from asnmon.store.connection import examine

    try:
        state = examine(db)
    except NotADatabaseError as exc:
        return _bad(
            "database",
            str(exc),
            "Point [database] db (--db) at the monitor's database, or at a new file name.",
        )
    except StoreError as exc:
        return _bad("database", str(exc), "Check the file's permissions and the disk.")
    if state == "absent":
        return _ok("database", f"{db}: will be created")
    if state == "empty":
        return _ok("database", f"{db}: empty (0 bytes, a failed creation): will be made anew")
    try:
        con = duckdb.connect(str(db))
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            return _bad(
                "database",
                f"{db} is open in another process (DuckDB allows one writer): {text}. "
                "`asnmon run` waits for it, retrying with back-off, and says so",
                "Stop the other asnmon (service, scheduled task, or an open `asnmon dashboard "
                "--db`) or give this monitor its own [database] db.",
                fatal=False,
            )
        return _bad(
            "database",
            f"{db} cannot be opened: {text}",
            "Restore it from a backup (asnmon backup) or move it aside to start a new one.",
        )
    con.close()
    return _ok("database", f"{db}: writable, not in use")


def check_dashboard_port(settings: Settings) -> Check:
    if not settings.dashboard:
        return _ok("dashboard port", "dashboard off")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if os.name != "nt":  # what a server restarting on the port does; on Windows it would lie
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((settings.host, settings.port))
        except OSError as exc:
            return _bad(
                "dashboard port",
                f"{settings.host}:{settings.port} is not free ({exc.strerror or exc})",
                "Stop what uses it (another asnmon?) or set [dashboard] port to a free one.",
            )
    return _ok("dashboard port", f"{settings.host}:{settings.port} free")


def check_converters(settings: Settings) -> list[Check]:
    out: list[Check] = []
    for ext, conv in sorted(settings.converters.items()):
        name = f"converter {ext}"
        try:
            words = shlex.split(conv.command, posix=os.name != "nt")
        except ValueError as exc:
            out.append(_bad(name, f"command cannot be split: {exc}", "Fix the quoting."))
            continue
        exe = words[0].strip('"') if words else ""
        found = shutil.which(exe) or (exe if exe and Path(exe).is_file() else None)
        if found:
            out.append(_ok(name, f"{exe} -> {found}"))
        else:
            out.append(
                _bad(
                    name,
                    f"'{exe}' is not on PATH and is not a file",
                    "Install the converter (e.g. ProteoWizard msconvert) or give its full path "
                    "in the command.",
                )
            )
    if settings.converters and settings.converted_dir:
        target = Path(settings.converted_dir)
        if not (target.is_dir() or target.parent.is_dir()):
            out.append(
                _bad(
                    "converted folder",
                    f"{target} cannot be created (its parent does not exist)",
                    "Create it, or set [convert] converted_dir to a local folder.",
                )
            )
    return out


def run_checks(settings: Settings, *, check_port: bool = True) -> list[Check]:
    """Every check, in the order a person would fix them; never raises for a bad setup."""
    checks = [
        check_folder(settings),
        check_assay(settings),
        check_worklist(settings),
        check_database(settings),
    ]
    if check_port:
        checks.append(check_dashboard_port(settings))
    checks += check_converters(settings)
    return checks


def format_checklist(checks: list[Check]) -> str:
    """A checklist for the terminal: OK / WARN / FAIL per line, the fix under each problem."""
    lines = []
    for c in checks:
        mark = "OK  " if c.ok else ("FAIL" if c.fatal else "WARN")
        lines.append(f"[{mark}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"       fix: {c.fix}")
    fatal = sum(not c.ok and c.fatal for c in checks)
    warn = sum(not c.ok and not c.fatal for c in checks)
    if fatal:
        lines.append(f"{fatal} problem(s) stop the monitor from starting; {warn} warning(s).")
    else:
        lines.append("ready to run" + (f" ({warn} warning(s))" if warn else "") + ".")
    return "\n".join(lines)


def has_fatal(checks: list[Check]) -> bool:
    return any(not c.ok and c.fatal for c in checks)


# ---------------------------------------------------------------- asnmon init


def settings_template() -> str:
    return resources.files("asnmon.data").joinpath(TEMPLATE).read_text("utf-8")


def write_settings_template(
    path: str | Path, *, folder: str | None = None, db: str | None = None
) -> Path:
    """Write the commented settings file for a new instrument; never overwrites one."""
    target = Path(path)
    text = settings_template()
    if folder is not None:
        text = text.replace('folder = "CHANGE_ME"', f"folder = {_toml_string(folder)}", 1)
    if db is not None:
        text = text.replace('db = "asnmon.duckdb"', f"db = {_toml_string(db)}", 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("x", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    except FileExistsError:
        raise FileExistsError(
            f"{target} already exists: not overwritten (edit it, or choose another name)"
        ) from None
    return target


def _toml_string(value: str) -> str:
    """A TOML literal string when possible: Windows paths keep their backslashes."""
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
