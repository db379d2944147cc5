"""Bytes from disk under limits: regular files only, a bounded size, bounded inflation.

Why: a monitor reads whatever lands in a folder. A FIFO named ``*.mzML`` blocks
``open()`` for ever, a symlink to ``/dev/zero`` never ends, and a 2 MB ``.mzML.gz``
can inflate to 12 GB (MemoryError). So a path is stat'ed before it is opened (a
device can act on open), opened non-blocking and checked again by its descriptor,
read up to ``max_file_mb`` at most, and inflated incrementally
(``zlib.decompressobj`` with ``max_length``), stopping as soon as the output passes
``max_inflated_mb`` or grows more than ``max_ratio`` times the input consumed.
Sizes in MB are MiB (1,048,576 bytes), as for ``log_max_mb``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from asnmon.errors import (
    CorruptDataError,
    NotRegularFileError,
    ReadError,
    TooLargeError,
    TruncatedFileError,
)

__all__ = [
    "DEFAULT_LIMITS",
    "RATIO_GRACE_MB",
    "Inflation",
    "ReadLimits",
    "gunzip",
    "read_regular",
    "regular_sha256",
    "tail_before_whitespace",
]

MB = 1 << 20
_CHUNK = 1 << 20  # read and inflate 1 MiB at a time
_GZIP_MAGIC = b"\x1f\x8b"
_WHITESPACE = b" \t\r\n"
# The ratio is judged only past this much output: genuine small zlib arrays reach
# 931:1 (a 13C-tracer TIC of mostly zeros, 216 KB, in the public corpus), and below a
# few MB the size limit alone keeps memory small. Apache POI waits for 100 KB; our
# arrays need more room.
RATIO_GRACE_MB = 8.0
_GRACE_BYTES = RATIO_GRACE_MB * MB  # below it (and the size limit) _check cannot refuse
# deflate's largest expansion (zlib's technical details: "the limit is 1032:1")
_DEFLATE_MAX_RATIO = 1032


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What one file may cost to read; the ``[read]`` settings.

    Defaults: an MRM run's mzML is 0.2-5 MB (the public corpus: 1 KB-3 MB) and a
    full-scan run rarely passes a few hundred MB, while the reader holds a file in
    memory (measured peak: 2.0 x for a 58 MB file, 2.9-3.1 x for the corpus' 0.7 and
    3 MB runs, 3.7 x its compressed size for a .gz), so 1,024 MB is far above any
    genuine file and well inside a lab PC's memory. 100:1 is Apache POI's zip-bomb ratio
    (``MIN_INFLATE_RATIO`` 0.01); genuine ``.mzML.gz`` files reach 22:1 in the corpus.
    """

    max_file_mb: float = 1024.0  # bytes on disk (a .gz counts compressed)
    max_inflated_mb: float = 1024.0  # inflated bytes of one file: .gz document + zlib arrays
    max_ratio: float = 100.0  # inflated / compressed, judged past RATIO_GRACE_MB

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * MB)

    @property
    def max_inflated_bytes(self) -> int:
        return int(self.max_inflated_mb * MB)


DEFAULT_LIMITS = ReadLimits()


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words (for messages)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refuse_irregular(p: Path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        via = " (through a symbolic link)" if p.is_symlink() else ""
        raise NotRegularFileError(
            f"{p.name} is {file_kind(mode)}{via}, not a regular file; asnmon reads only regular "
            "files (remove it from the watched folder)"
        )


@contextmanager
def _open_regular(p: Path, limits: ReadLimits, *, wrap: bool) -> Iterator[tuple[int, int]]:
    """(descriptor, size) of a regular file no larger than the limit; refused otherwise.

    ``wrap``: an OSError (gone, no permission) becomes a ReadError saying so; without
    it the OSError itself is raised, as callers that hash a file expect.
    """
    try:
        _refuse_irregular(p, os.stat(p).st_mode)  # before open: opening a device can act
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if not wrap:
            raise
        if isinstance(exc, FileNotFoundError):
            raise ReadError(
                f"{p.name} does not exist (moved or deleted before it was read)"
            ) from exc
        raise ReadError(f"{p.name} cannot be opened: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)  # the path may have been swapped between stat and open
        _refuse_irregular(p, st.st_mode)
        _refuse_size(p.name, st.st_size, limits)
        yield fd, st.st_size
    finally:
        os.close(fd)


def _refuse_size(name: str, size: int, limits: ReadLimits) -> None:
    if size > limits.max_file_bytes:
        raise TooLargeError(
            f"{name} is {size / MB:,.0f} MB, over the {limits.max_file_mb:g} MB limit for one "
            "file; raise [read] max_file_mb if this is a genuine file"
        )


def _chunks(fd: int, name: str, limits: ReadLimits, *, wrap: bool) -> Iterator[bytes]:
    """The file's bytes in chunks, stopping with an error past the size limit (it may grow)."""
    total = 0
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except OSError as exc:
            if not wrap:
                raise
            raise ReadError(f"{name} cannot be read: {exc.strerror or exc}") from exc
        if not chunk:
            return
        total += len(chunk)
        _refuse_size(name, total, limits)
        yield chunk


def read_regular(
    path: Path | str, limits: ReadLimits = DEFAULT_LIMITS, *, wrap: bool = True
) -> bytes:
    """The whole file, if it is a regular file within ``max_file_mb``.

    ``wrap=False``: a file that is gone or unreadable raises its OSError, as
    ``regular_sha256`` does (a FIFO, device or oversized file is a ReadError either way).
    """
    p = path if isinstance(path, Path) else Path(path)
    with _open_regular(p, limits, wrap=wrap) as (fd, _):
        return b"".join(_chunks(fd, p.name, limits, wrap=wrap))


def regular_sha256(path: Path | str, limits: ReadLimits = DEFAULT_LIMITS) -> str:
    """Hex sha256 of a regular file's bytes, read in chunks within ``max_file_mb``.

    A file that is gone or unreadable raises its OSError, as ``open`` would; a FIFO,
    device or oversized file raises a ReadError saying so.
    """
    p = Path(path)
    h = hashlib.sha256()
    with _open_regular(p, limits, wrap=False) as (fd, _):
        for chunk in _chunks(fd, p.name, limits, wrap=False):
            h.update(chunk)
    return h.hexdigest()


class Inflation:
    """One file's inflation budget, shared by its gzip document and every zlib array."""

    def __init__(self, name: str, limits: ReadLimits) -> None:
        self.name = name
        self.limits = limits
        self.total = 0  # bytes inflated so far for this file
        self.total_in = 0  # compressed bytes they came from
        self._max_bytes = limits.max_inflated_bytes  # once: inflate runs per array

    def _check(self, what: str, out: int, consumed: int, total: int, total_in: int) -> None:
        if total > self._max_bytes:
            overall = total / max(1, total_in)
            raise TooLargeError(
                f"{self.name}: {what} inflates beyond {self.limits.max_inflated_mb:g} MB "
                f"(ratio {overall:,.0f}:1); raise [read] max_inflated_mb if this is a genuine file"
            )
        ratio = out / max(1, consumed)
        if out > RATIO_GRACE_MB * MB and ratio > self.limits.max_ratio:
            raise TooLargeError(
                f"{self.name}: {what} inflates more than {self.limits.max_ratio:g} times its "
                f"compressed size ({consumed:,} bytes gave {out / MB:,.0f} MB so far, ratio "
                f"{ratio:,.0f}:1), the mark of a decompression bomb; raise [read] max_ratio if "
                "this is a genuine file"
            )

    def _inflate_unbounded(self, data: bytes, wbits: int) -> tuple[bytes, int] | None:
        """``inflate``'s result in one call when no limit can be reached; else None.

        Deflate inflates at most 1,032 times its size, so a stream whose worst case
        stays within the file's remaining budget and below ``RATIO_GRACE_MB`` cannot
        trip either check. None also when the stream fails or stops short: ``inflate``
        then does it again, bounded, and says why.
        """
        bound = _DEFLATE_MAX_RATIO * len(data)
        if not data or bound > _GRACE_BYTES or bound > self._max_bytes - self.total:
            return None
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(data)
        except zlib.error:
            return None
        if not d.eof:
            return None
        end = len(data) - len(d.unused_data)
        self.total += len(out)
        self.total_in += end
        return out, end

    def inflate(
        self,
        what: str,
        data: bytes,
        wbits: int = zlib.MAX_WBITS,
        *,
        start: int = 0,
        before: tuple[int, int] = (0, 0),
    ) -> tuple[bytes, int]:
        """One zlib (``wbits=31``: gzip) stream from ``data[start:]`` within the budget.

        Returns the output and the offset just after the stream. The ratio is judged
        over ``before`` (compressed, inflated bytes of earlier gzip members) plus this
        stream. Raises zlib.error for corrupt data, EOFError for a stream cut short.
        """
        if start == 0 and before == (0, 0):  # a stream too small to reach any limit
            whole = self._inflate_unbounded(data, wbits)
            if whole is not None:
                return whole
        d = zlib.decompressobj(wbits)
        room = self._max_bytes - self.total + 1  # one byte over says "too big"
        out: list[bytes] = []
        produced = 0
        view = memoryview(data)
        pos = start
        if start == 0 and 0 < len(data) <= _CHUNK:
            # the loop's first pass (input of one chunk) without its machinery: a stream
            # that ends there, as a chromatogram's array does, is done in one call
            piece = d.decompress(data, max(1, min(_CHUNK, room)))
            produced, pos = len(piece), len(data)
            consumed = pos - len(d.unconsumed_tail)
            if self.total + produced > self._max_bytes or before[1] + produced > _GRACE_BYTES:
                self._check(what, before[1] + produced, before[0] + consumed,
                            self.total + produced, self.total_in + consumed)  # fmt: skip
            if d.eof:
                self.total += produced
                self.total_in += pos - len(d.unused_data)
                return piece, pos - len(d.unused_data)
            out.append(piece)
        while not d.eof:
            want = max(1, min(_CHUNK, room - produced))
            if d.unconsumed_tail:
                piece = d.decompress(d.unconsumed_tail, want)
            elif pos < len(view):
                chunk = view[pos : pos + _CHUNK]
                pos += len(chunk)
                piece = d.decompress(chunk, want)
            else:  # all input given: drain what zlib still holds, if anything
                piece = d.decompress(b"", want)
                if not piece and not d.eof:
                    raise EOFError("the compressed stream ends before its end marker")
            out.append(piece)
            produced += len(piece)
            consumed = pos - start - len(d.unconsumed_tail)
            self._check(
                what,
                before[1] + produced,
                before[0] + consumed,
                self.total + produced,
                self.total_in + consumed,
            )
        self.total += produced
        self.total_in += pos - start - len(d.unused_data)
        return b"".join(out), pos - len(d.unused_data)


def gunzip(name: str, data: bytes, budget: Inflation) -> bytes:
    """Undo gzip (every member, as ``gzip.decompress`` does) within the budget."""
    parts: list[bytes] = []
    end = 0
    inflated = 0
    try:
        while data[end : end + 2] == _GZIP_MAGIC:
            part, stop = budget.inflate(
                "the gzip stream", data, 31, start=end, before=(end, inflated)
            )
            parts.append(part)
            inflated += len(part)
            end = stop
    except EOFError as exc:
        raise TruncatedFileError(f"{name} is a gzip file that stops before its end") from exc
    except zlib.error as exc:
        raise CorruptDataError(f"{name} is a damaged gzip file ({exc})") from exc
    if data[end:].strip(b"\0"):
        raise CorruptDataError(f"{name} is a damaged gzip file (bytes after its end)")
    return b"".join(parts)


def tail_before_whitespace(fh: BinaryIO, size: int, n: int, max_whitespace: int) -> bytes | None:
    """The last ``n`` bytes of a seekable file before its trailing whitespace.

    None when more than ``max_whitespace`` bytes of whitespace end it: the caller
    decides without reading further (a valid document may end in padding, but a scan
    back through gigabytes of it must not stall anything).
    """
    end = size
    while end > 0:
        start = max(0, end - n)
        fh.seek(start)
        block = fh.read(end - start)
        kept = len(block.rstrip(_WHITESPACE))
        if kept:
            stop = start + kept
            fh.seek(max(0, stop - n))
            return fh.read(stop - max(0, stop - n))
        end = start
        if size - end > max_whitespace:
            return None
    return b""
