"""When an injection was acquired, by the file's own word, for acquisition order.

File-system time stamps are not acquisition times: a copy, a restore from
backup or a wrong clock on the instrument PC gives 1999 or 2031, and the run's
IS trend and drift flags follow ingestion order. So files are ordered by the
mzML ``<run startTimeStamp="...">`` the instrument wrote, then by worklist
position, and only as a last resort by modification time and name.

Reading it is cheap: the ``<run>`` element comes after the header sections,
within the first few kilobytes, so at most ``HEAD_LIMIT`` bytes are read (of
the inflated stream for ``.gz``), and only from regular files.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HEAD_LIMIT = 256 * 1024  # bytes read at most: far past <run> in any mzML seen
_CHUNK = 16 * 1024
_RUN = re.compile(rb"<run\b[^>]*?\bstartTimeStamp\s*=\s*[\"']([^\"']{1,64})[\"']")
_GZIP_MAGIC = b"\x1f\x8b"

OrderKey = tuple[float, int, float, str]
UNKNOWN_POSITION = 10**9


def read_start_time(path: Path) -> datetime | None:
    """The mzML run's ``startTimeStamp`` (UTC if it names no zone), or None."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a FIFO or a device would block or never end
        with open(path, "rb") as fh:
            magic = fh.read(2)
            fh.seek(0)
            if magic == _GZIP_MAGIC:
                with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                    return _find(gz.read)
            return _find(fh.read)
    except (OSError, EOFError, zlib.error, ValueError):
        return None


def _find(read: Callable[[int], bytes]) -> datetime | None:
    head = b""
    while len(head) < HEAD_LIMIT:
        chunk = read(_CHUNK)
        if not chunk:
            break
        head += chunk
        found = _RUN.search(head)
        if found:
            return parse_stamp(found.group(1).decode("ascii", "replace"))
        if b"<spectrumList" in head or b"<chromatogramList" in head:
            break  # past where <run ...> opens: it has no time stamp
    return None


def parse_stamp(text: str) -> datetime | None:
    """ISO 8601 (``Z`` or an offset; none means UTC) -> an aware datetime, else None."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def acquisition_key(path: Path, position: int | None = None) -> OrderKey:
    """Sort key: own start time, then worklist position, then mtime, then name."""
    started = read_start_time(path)
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = 0.0
    return (
        started.timestamp() if started is not None else float("inf"),
        position if position is not None else UNKNOWN_POSITION,
        mtime,
        path.name,
    )
