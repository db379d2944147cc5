"""Which paths are candidates, in what order, and their size/mtime signature."""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from asnmon.watch.support import not_a_file

log = logging.getLogger("asnmon.watch")

_TEMP_PREFIXES = (".", "~$", "~")
_TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".swp", "~")


def is_temporary(name: str) -> bool:
    """Names that writers use before renaming into place, and hidden files."""
    lower = name.lower()
    return lower.startswith(_TEMP_PREFIXES) or lower.endswith(_TEMP_SUFFIXES)


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Case-insensitive: acquisition PCs run Windows, where .RAW and .raw are one file."""
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p.lower()) for p in patterns)


def scan_folder(folder: Path, patterns: Sequence[str], recursive: bool) -> list[Path]:
    """Candidate files in acquisition order (mtime, then name), temporary names skipped.

    A directory whose name matches a pattern (``*.d``: an Agilent or Waters raw
    folder) is itself a candidate and is not descended into. Raises OSError
    when ``folder`` itself cannot be listed; unreadable subfolders are skipped
    with a warning.
    """
    found: list[tuple[int, str, str, Path]] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError as exc:
            if current == folder:
                raise
            log.warning("skipping unreadable folder %s: %s", current, exc)
            continue
        for entry in entries:
            if is_temporary(entry.name):
                continue
            try:
                is_dir = entry.is_dir()
                mtime = entry.stat().st_mtime_ns
            except OSError:  # vanished between listing and stat
                continue
            if matches(entry.name, patterns):
                found.append((mtime, entry.name, entry.path, Path(entry.path)))
            elif is_dir and recursive:
                stack.append(Path(entry.path))
    found.sort(key=lambda item: item[:3])
    return [item[3] for item in found]


Signature = tuple[bool, int, int, int]  # is_dir, size, newest mtime_ns, entries


class NotAFile(Exception):
    """The path is a FIFO, a device or a socket: opening or reading it could block forever."""


def signature(path: Path) -> Signature:
    """Size and mtime of a file; for a raw folder, totals over everything inside.

    Raises ``NotAFile`` for anything but a regular file or a folder (the target of a
    symlink counts): ``stat`` never opens it, so this is where it is caught.
    """
    st = path.stat()
    what = not_a_file(st.st_mode)
    if what is not None:
        raise NotAFile(what)
    if not stat.S_ISDIR(st.st_mode):
        return (False, st.st_size, st.st_mtime_ns, 1)
    size, newest, count = 0, st.st_mtime_ns, 1
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                entries = list(it)
        except FileNotFoundError:  # a subfolder removed mid-walk: its parent's mtime moved
            continue
        for entry in entries:
            try:
                est = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            count += 1
            size += est.st_size
            newest = max(newest, est.st_mtime_ns)
            if stat.S_ISDIR(est.st_mode):
                stack.append(entry.path)
    return (True, size, newest, count)
