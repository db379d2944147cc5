"""Vendor raw files to mzML: the converter a lab already uses, run safely.

A converter command per extension (ProteoWizard msconvert, ThermoRawFileParser,
...) with ``{input}`` and ``{output_dir}`` placeholders; asnmon runs it in its
own process group with a timeout, so a hung converter is killed with all its
children, and turns any failure into a ConvertError carrying the end of its
output. The watcher (``asnmon.watch``) decides *when* a raw file or folder has
settled; this module only converts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from asnmon.errors import ConvertError, SettingsError

__all__ = ["ConverterSpec", "run_converter"]

log = logging.getLogger("asnmon.convert")

_NEW_GROUP_FLAG: int = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)  # Windows only
_JOIN_TIMEOUT = 5.0

_STDERR_LINES = 20
_STDERR_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ConverterSpec:
    """How to turn one vendor format into mzML.

    ``command`` holds ``{input}`` and ``{output_dir}`` placeholders; a string is
    split like a shell would but never run through one, so paths with spaces
    are safe. The output is looked up in ``output_dir`` as input stem +
    ``output_ext`` (``sample.d`` -> ``sample.mzML``), which is what msconvert
    and ThermoRawFileParser write.
    """

    command: str | Sequence[str]
    timeout: float
    output_ext: str = ".mzML"

    def __post_init__(self) -> None:
        if not isinstance(self.command, str):
            object.__setattr__(self, "command", tuple(self.command))
        parts = [self.command] if isinstance(self.command, str) else list(self.command)
        if not any(p.strip() for p in parts):
            raise SettingsError("converter command is empty")
        if not any("{input}" in p for p in parts):
            raise SettingsError(
                f"converter command {self.command!r} has no {{input}} placeholder, "
                "so it could not know which file to convert"
            )
        if not self.timeout > 0:
            raise SettingsError(f"converter timeout must be positive, got {self.timeout!r}")


# ---------------------------------------------------------------- converting


def run_converter(spec: ConverterSpec, input_path: Path, output_dir: Path) -> Path:
    """Run the converter on one raw file or folder; return the mzML it wrote.

    Raises ConvertError when the command cannot start, exits non-zero, runs
    past ``spec.timeout`` (its whole process group is killed) or writes no new
    output; the message carries the last lines of its stderr.
    """
    return _run_converter(spec, input_path, output_dir, cancel=None)


def _run_converter(
    spec: ConverterSpec, input_path: Path, output_dir: Path, cancel: threading.Event | None
) -> Path:
    argv = _command_argv(spec, input_path, output_dir)
    expected = input_path.stem + spec.output_ext
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        before = _outputs(output_dir, expected)
    except OSError as exc:
        raise ConvertError(f"cannot use the converter output folder {output_dir}: {exc}") from exc
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            # Own process group (session on POSIX), so a timeout kills the converter's children too.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=os.name != "nt",
                creationflags=_NEW_GROUP_FLAG,
            )
        except OSError as exc:
            raise ConvertError(
                f"cannot start the converter {argv[0]!r} for {input_path.name}: {exc}"
            ) from exc
        code = _wait(proc, spec.timeout, cancel)
        if code is None:
            _kill_group(proc)
            why = (
                "was stopped because the watcher is stopping"
                if cancel is not None and cancel.is_set()
                else f"timed out after {spec.timeout:g} s and was killed"
            )
            raise ConvertError(f"converter {why} on {input_path.name}{_output_tail(err, out)}")
        if code != 0:
            raise ConvertError(
                f"converter exited with status {code} on {input_path.name}{_output_tail(err, out)}"
            )
        try:
            after = _outputs(output_dir, expected)
        except OSError as exc:
            raise ConvertError(
                f"cannot list the converter output folder {output_dir}: {exc}"
            ) from exc
        written = sorted(p for p, sig in after.items() if before.get(p) != sig)
        if not written:
            raise ConvertError(
                f"converter exited normally on {input_path.name} but wrote no new {expected} "
                f"into {output_dir}{_output_tail(err, out)}"
            )
        return written[0]


def _command_argv(spec: ConverterSpec, input_path: Path, output_dir: Path) -> list[str]:
    """Placeholders are filled per argument after splitting, so spaces stay inside one."""
    if isinstance(spec.command, str):
        parts = shlex.split(spec.command, posix=os.name != "nt")
    else:
        parts = list(spec.command)
    return [
        p.replace("{input}", str(input_path)).replace("{output_dir}", str(output_dir))
        for p in parts
    ]


def _outputs(output_dir: Path, expected: str) -> dict[Path, tuple[int, int, int]]:
    """Files named like the expected output, with what tells a rewrite from a leftover."""
    found: dict[Path, tuple[int, int, int]] = {}
    with os.scandir(output_dir) as it:
        for entry in it:
            if entry.name.lower() == expected.lower() and entry.is_file():
                st = entry.stat()
                found[Path(entry.path)] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def _wait(
    proc: subprocess.Popen[bytes], timeout: float, cancel: threading.Event | None
) -> int | None:
    """Exit status, or None on timeout or cancel (the process is then still running)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (cancel is not None and cancel.is_set()):
            return None
        try:
            return proc.wait(timeout=min(0.1, remaining))
        except subprocess.TimeoutExpired:
            continue


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if os.name == "nt":
        subprocess.run(
            ["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, check=False
        )
        with contextlib.suppress(OSError):
            proc.kill()
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=_JOIN_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.error("converter process %d did not exit after being killed", proc.pid)


def _output_tail(err: IO[bytes], out: IO[bytes]) -> str:
    """The last lines of stderr (stdout if stderr is empty), for the message."""
    for stream, name in ((err, "stderr"), (out, "stdout")):
        size = stream.seek(0, os.SEEK_END)
        stream.seek(max(0, size - _STDERR_BYTES))
        text = stream.read().decode("utf-8", errors="replace")
        lines = [line.rstrip() for line in text.splitlines() if line.strip()]
        if lines:
            return f"; last lines of its {name}:\n" + "\n".join(lines[-_STDERR_LINES:])
    return "; it wrote nothing to stderr or stdout"
