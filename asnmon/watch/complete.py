"""Is the document whole? The closing tag (or a valid gzip stream) decides, not events."""

from __future__ import annotations

import gzip
import logging
import os
import stat
import zlib
from pathlib import Path
from typing import IO

from asnmon.fileread import (
    DEFAULT_LIMITS,
    MB,
    RATIO_GRACE_MB,
    ReadLimits,
    tail_before_whitespace,
)

log = logging.getLogger("asnmon.watch")

_CLOSING_TAGS = (b"</indexedmzML>", b"</mzML>")
_HEAD_BYTES = 2048  # the root element is always within the first lines
_TAIL_BYTES = 8192  # an indexedmzML index footer is far shorter than this
_MAX_TRAILING_SPACE = 64 << 20  # bytes of trailing whitespace scanned back through
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_CHUNK = 1 << 20


def is_complete(path: Path, limits: ReadLimits = DEFAULT_LIMITS) -> bool:
    """Whether a reader will find the whole document.

    mzML: the root's closing tag ends the file, trailing whitespace aside (an
    indexedmzML must end with ``</indexedmzML>``, because its ``</mzML>`` comes
    before the index). gzip (by magic bytes, whatever the name): the stream
    decompresses to its end with a valid CRC and the contents end with the closing
    tag. Anything else (vendor raw files, raw folders) is complete once settled,
    which the caller checks. Unreadable or empty files are not complete.

    Nothing here can block or run away: only regular files are opened (non-blocking,
    after a stat), and a FIFO, device or socket, a file over ``max_file_mb`` or a gzip
    stream past the inflation limits counts as complete at once, so that the reader
    refuses it with a READ_ERROR that says why instead of the settle thread waiting.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limits.max_file_bytes:
            return True  # a folder (raw data) is settled; the rest the reader refuses
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())  # swapped for a FIFO between stat and open?
            if not stat.S_ISREG(st.st_mode):
                return True
            head = fh.read(_HEAD_BYTES)
            if not head:
                return False
            if head.startswith(_GZIP_MAGIC):
                fh.seek(0)
                return _gzip_complete(fh, limits)
            if not _looks_like_mzml(path, head):
                return True
            tail = tail_before_whitespace(fh, st.st_size, _TAIL_BYTES, _MAX_TRAILING_SPACE)
            return tail is None or _ends_closed(head, tail)
    except OSError as exc:
        log.debug("cannot check %s for completeness: %s", path, exc)
        return False


def _looks_like_mzml(path: Path, head: bytes) -> bool:
    """An XML document that should end in a closing tag; junk under an .mzML name is not.

    Bytes that do not even start like XML will never "complete": they are handed on
    once settled, so the reader can store them as READ_ERROR instead of waiting
    ``max_write`` for a closing tag that cannot come.
    """
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start and not start.startswith(b"<"):
        return False
    return path.name.lower().endswith(".mzml") or b"<mzML" in head or b"<indexedmzML" in head


def _ends_closed(head: bytes, tail: bytes) -> bool:
    end = tail.rstrip(b" \t\r\n")
    if b"<indexedmzML" in head:
        return end.endswith(b"</indexedmzML>")
    return end.endswith(_CLOSING_TAGS)


def _gzip_complete(fh: IO[bytes], limits: ReadLimits = DEFAULT_LIMITS) -> bool:
    """Decompress in chunks to EOF; gzip checks each member's CRC and length.

    Bounded like the reader: past ``max_inflated_mb``, or past the grace size at
    more than ``max_ratio`` times the compressed bytes read, the stream is handed
    on as it is (the reader refuses it plainly) instead of inflating a bomb here.
    """
    head = b""
    tail = b""
    produced = 0
    try:
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            while chunk := gz.read(_GZIP_CHUNK):
                produced += len(chunk)
                ratio = produced / max(1, fh.tell())
                if produced > limits.max_inflated_bytes or (
                    produced > RATIO_GRACE_MB * MB and ratio > limits.max_ratio
                ):
                    log.debug("gzip stream past the [read] limits: handed on to be refused")
                    return True
                if len(head) < _HEAD_BYTES:
                    head += chunk[: _HEAD_BYTES - len(head)]
                content = chunk.rstrip(b" \t\r\n")  # the tail is content, not padding
                if content:
                    tail = (tail + content)[-_TAIL_BYTES:]
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        log.debug("gzip stream not complete: %s", exc)
        return False
    return bool(head) and _ends_closed(head, tail)
