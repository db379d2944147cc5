"""Checks on an mzML file's bytes before any parser runs.

Undo gzip (by magic bytes, within the ``[read]`` limits), then refuse what a parser
should never see: nothing at all, not XML, DOCTYPE/ENTITY declarations, MS-Numpress
anywhere, another root element, a missing closing tag; and verify an indexed
mzML's ``<fileChecksum>``: the mzML 1.1 index schema (mzML1.1.x_idx.xsd) defines it
as the "SHA-1 checksum from beginning of file to end of 'fileChecksum' open tag".
It catches what no other check can: one character changed inside an uncompressed
peak decodes into a plausible, wrong trace.
"""

from __future__ import annotations

import hashlib
import re

from asnmon.errors import (
    ChecksumError,
    EmptyFileError,
    MzxmlError,
    NotMzmlError,
    NotXmlError,
    TruncatedFileError,
    UnsafeXmlError,
    UnsupportedDataError,
)
from asnmon.fileread import Inflation, gunzip

__all__ = ["NUMPRESS", "content_end", "unpack", "verify_checksum"]

NUMPRESS = frozenset(
    {"MS:1002312", "MS:1002313", "MS:1002314", "MS:1002746", "MS:1002747", "MS:1002748"}
)
_WHITESPACE = b" \t\r\n"
_CLOSING_RE = re.compile(rb"</(?:[\w.-]+:)?(?:indexedmzML|mzML)>\Z")
_CHECKSUM_RE = re.compile(
    rb"<((?:[\w.-]+:)?fileChecksum)>\s*([^<]*?)\s*</\1>\s*</(?:[\w.-]+:)?indexedmzML>\Z"
)
_SHA1_RE = re.compile(rb"[0-9a-fA-F]{40}")
_ROOT_RE = re.compile(rb"<([^?!/\s>][^\s>/]*)")
_PROLOG_LIMIT = 65536
_TAIL = 4096  # the closing tags and the checksum element sit in the last few hundred bytes


def content_end(data: bytes) -> int:
    """Index just after the last byte that is not whitespace (0 if there is none).

    Scanned back in blocks, so trailing whitespace of any length costs no copy of
    the file (a valid document may end in kilobytes of padding).
    """
    end = len(data)
    while end > 0:
        block = data[max(0, end - _TAIL) : end]
        kept = len(block.rstrip(_WHITESPACE))
        if kept:
            return end - len(block) + kept
        end -= len(block)
    return 0


def unpack(name: str, data: bytes, budget: Inflation) -> tuple[bytes, list[str]]:
    """The document's bytes (gzip undone) and notes about it, or a typed ReadError."""
    if not content_end(data):
        raise EmptyFileError(f"{name} is empty ({len(data)} bytes)")
    if data[:2] == b"\x1f\x8b":
        data = gunzip(name, data, budget)
        if not content_end(data):
            raise EmptyFileError(f"{name} is a gzip file holding nothing")
    head = data[:_PROLOG_LIMIT].lstrip(b"\xef\xbb\xbf" + _WHITESPACE)
    if not head.startswith(b"<"):
        raise NotXmlError(f"{name} is not XML (it does not start with '<')")
    # b"!" first: one memchr pass instead of two substring scans (mzML has no "!" at all)
    if b"!" in data and (b"<!DOCTYPE" in data or b"<!ENTITY" in data):
        raise UnsafeXmlError(
            f"{name} declares a DOCTYPE or ENTITY, which mzML never does; refused for safety"
        )
    _refuse_numpress(name, data)
    root = _ROOT_RE.search(head)
    tag = root.group(1).decode("latin-1").rpartition(":")[2] if root else ""
    if tag in ("mzXML", "msRun"):
        raise MzxmlError(
            f"{name}: this is an mzXML file, not mzML; convert it with msconvert --mzML"
        )
    if tag not in ("mzML", "indexedmzML"):
        what = f"its root element is <{tag}>" if tag else "no root element was found"
        raise NotMzmlError(f"{name} is XML but not mzML ({what})")
    stop = content_end(data)
    if not _CLOSING_RE.search(data[max(0, stop - 64) : stop]):
        raise TruncatedFileError(
            f"{name} is incomplete: the closing </{tag}> tag is missing (still being written, "
            "or cut off)"
        )
    notes = verify_checksum(name, data, stop) if tag == "indexedmzML" else []
    return data, notes


def verify_checksum(name: str, data: bytes, stop: int | None = None) -> list[str]:
    """Compare an indexed mzML's ``<fileChecksum>`` with the SHA-1 of its bytes.

    No element, an empty one or OpenMS's ``0`` ("not computed"): nothing to verify,
    as for a non-indexed file. A value that is not a SHA-1 is noted, not trusted.
    """
    stop = content_end(data) if stop is None else stop
    base = max(0, stop - _TAIL)
    m = _CHECKSUM_RE.search(data, base, stop)
    if m is None:
        return []
    stated = m.group(2)
    if not stated.strip(b"0"):
        return []
    if not _SHA1_RE.fullmatch(stated):
        shown = stated[:60].decode("utf-8", "replace")
        return [f"its <fileChecksum> '{shown}' is not a SHA-1, so its content was not verified"]
    upto = m.end(1) + 1  # through the '>' of the start tag
    computed = hashlib.sha1(memoryview(data)[:upto]).hexdigest()
    if computed != stated.decode("ascii").lower():
        raise ChecksumError(
            f"{name}: the file's own SHA-1 checksum (<fileChecksum>) does not match its "
            f"content: expected {stated.decode('ascii')}, computed {computed}. The file was "
            "changed after it was written (edited, cut down or damaged in copying), so its "
            "numbers cannot be trusted; copy or export it again from the instrument"
        )
    return []


def _refuse_numpress(name: str, data: bytes) -> None:
    """Refuse MS-Numpress anywhere in the file before the parser or any decoder runs.

    A byte scan (a few find() calls, ~0.1 ms per MB) rather than a per-array check alone,
    so a file whose numpress arrays we would not otherwise decode (spectra in an MRM
    read) is refused too: its content cannot be trusted to a reader that may decode it.
    """
    if not _may_hold_numpress(data):
        return
    for token in (b"umpress", b"MS:100231", b"MS:100274"):
        at = data.find(token)
        while at != -1:
            start = data.rfind(b"<", 0, at)
            end = data.find(b">", at)
            tag = data[start:end].decode("utf-8", "replace")
            acc = re.search(r'accession="([^"]*)"', tag)
            named = re.search(r'name="([^"]*)"', tag)
            if re.match(r"<(?:[\w.-]+:)?cvParam\b", tag) and (
                (acc and acc.group(1) in NUMPRESS)
                or (named and "numpress" in named.group(1).lower())
            ):
                owner = max(data.rfind(b"<chromatogram ", 0, at), data.rfind(b"<spectrum ", 0, at))
                oid = re.search(rb'\bid="([^"]*)"', data[owner : data.find(b">", owner)])
                what = data[owner + 1 : data.find(b" ", owner)].decode() if owner >= 0 else "array"
                label = f"{what} '{oid.group(1).decode('utf-8', 'replace')}'" if oid else what
                raise UnsupportedDataError(
                    f"{name}: {label} uses MS-Numpress compression, which asnmon does not "
                    "decode; convert without --numpress"
                )
            at = data.find(token, at + 1)


def _may_hold_numpress(data: bytes) -> bool:
    """Whether any token ``_refuse_numpress`` looks for occurs at all: two scans, not three.

    The two accession tokens share ``MS:1002``, which a file holds once or twice (its
    instrument model), so their hits are checked one by one.
    """
    if b"umpress" in data:
        return True
    at = data.find(b"MS:1002")
    while at != -1:
        if data[at + 7 : at + 9] in (b"31", b"74"):
            return True
        at = data.find(b"MS:1002", at + 1)
    return False
