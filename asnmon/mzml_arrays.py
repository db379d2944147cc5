"""Decoding an mzML binaryDataArray, bounded and checked (for ``asnmon.mzml``).

What a file states about its arrays (number type, compression, kind, time unit) is
worked out once per distinct param list per file (``Decodings``), refusals first:
MS-Numpress and unknown compressions are refused, never decoded, and a time unit that
is stated but unknown is refused rather than taken for minutes. Every decoded array is
checked: its length against the file's, finite values only, one array per kind.
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Iterable

import numpy as np
from lxml import etree

from asnmon.errors import CorruptDataError, UnsupportedDataError
from asnmon.fileread import Inflation
from asnmon.mzml_checks import NUMPRESS
from asnmon.mzml_params import Param, array_parts, lookup, param_value

__all__ = ["Decodings", "Unchecked", "decode_arrays", "int_or", "minutes_per"]

_DTYPES = {
    "MS:1000521": "<f4", "32-bit float": "<f4",
    "MS:1000523": "<f8", "64-bit float": "<f8",
    "MS:1000519": "<i4", "32-bit integer": "<i4",
    "MS:1000522": "<i8", "64-bit integer": "<i8",
}  # fmt: skip
_ZLIB = ("MS:1000574", "zlib compression")
_NO_COMPRESSION = ("MS:1000576", "no compression")
_ARRAY_KINDS = {
    "MS:1000595": "time", "time array": "time",
    "MS:1000515": "intensity", "intensity array": "intensity",
    "MS:1000514": "mz", "m/z array": "mz",
}  # fmt: skip
# (unit, minutes per unit) by accession and by name; MS:1000038/MS:1000039 are the
# PSI-MS terms that mzML 1.0 writers used before the Unit Ontology's (obsolete, still read)
_UNIT_ACCESSIONS = {
    "UO:0000010": ("second", 1 / 60), "MS:1000039": ("second", 1 / 60),
    "UO:0000031": ("minute", 1.0), "MS:1000038": ("minute", 1.0),
    "UO:0000028": ("millisecond", 1 / 60000),
    "UO:0000032": ("hour", 60.0),
}  # fmt: skip
_UNIT_NAMES = {
    "second": ("second", 1 / 60), "s": ("second", 1 / 60),
    "minute": ("minute", 1.0), "min": ("minute", 1.0),
    "millisecond": ("millisecond", 1 / 60000), "ms": ("millisecond", 1 / 60000),
    "hour": ("hour", 60.0), "h": ("hour", 60.0),
}  # fmt: skip


def int_or(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


_BDA = "{*}binaryDataArray"
_ALL = np.logical_and.reduce  # ndarray.all() without its Python layer


_BDA = "{*}binaryDataArray"
_ALL = np.logical_and.reduce  # ndarray.all() without its Python layer


# how one binaryDataArray is decoded: (zlib?, dtype, kind or None, minutes per time unit)
_Decoding = tuple[bool, str, str | None, float]


def _decoding(params: list[Param], what: str, file: str) -> _Decoding:
    """What an array's params say about decoding it; refusals raised, numpress first."""
    for acc, name, *_ in params:
        if acc in NUMPRESS or "numpress" in name.lower():
            raise UnsupportedDataError(
                f"{file}: {what} uses MS-Numpress compression, which asnmon does not "
                "decode; convert without --numpress"
            )
    compression = [(a, n) for a, n, *_ in params if "compression" in n.lower() or a in
                   (_ZLIB[0], _NO_COMPRESSION[0])]  # fmt: skip
    zlibbed = False
    for acc, name in compression:
        if acc == _ZLIB[0] or name == _ZLIB[1]:
            zlibbed = True
        elif not (acc == _NO_COMPRESSION[0] or name == _NO_COMPRESSION[1]):
            raise UnsupportedDataError(
                f"{file}: {what} uses '{name or acc}', a compression asnmon does not decode"
            )
    dtype = lookup(params, _DTYPES)
    if dtype is None:
        raise UnsupportedDataError(
            f"{file}: {what} has an array whose number type is missing or not supported"
        )
    kind = lookup(params, _ARRAY_KINDS)
    factor = _minutes_per_unit(params, f"{what}'s {kind}", file) if kind == "time" else 1.0
    return zlibbed, dtype, kind, factor


# a file's decodings by param list (see decode_arrays)
Decodings = dict[tuple[Param, ...], _Decoding]


class Unchecked:
    """Float arrays decoded but not yet checked for NaN or infinite values.

    Checked together, one numpy call for a file's arrays instead of two per array, and
    before anything else is reported, first array first: so the first bad array is
    still the one named, whatever went wrong after it. A few MB of values at most
    wait (a large file is checked as it goes).
    """

    __slots__ = ("arrays", "file", "size")
    MAX_VALUES = 1 << 20

    def __init__(self, file: str) -> None:
        self.file = file
        self.arrays: list[tuple[str, str, np.ndarray]] = []
        self.size = 0

    def add(self, what: str, kind: str, arr: np.ndarray) -> None:
        self.arrays.append((what, kind, arr))
        self.size += len(arr)
        if self.size > self.MAX_VALUES:
            self.check()

    def first_bad(self) -> CorruptDataError | None:
        """The error for the first array holding NaN or inf (None if none does); clears."""
        arrays, self.arrays, self.size = self.arrays, [], 0
        if not arrays or _ALL(np.isfinite(np.concatenate([a for _, _, a in arrays]))):
            return None
        what, kind = next((w, k) for w, k, a in arrays if not _ALL(np.isfinite(a)))
        return CorruptDataError(f"{self.file}: {what}'s {kind} holds NaN or infinite values")

    def check(self) -> None:
        bad = self.first_bad()
        if bad is not None:
            raise bad


def decode_arrays(
    el: etree._Element,
    lists: Iterable[etree._Element],
    groups: dict[str, list[Param]],
    what: str,
    budget: Inflation,
    seen: Decodings,
    unchecked: Unchecked,
) -> dict[str, np.ndarray]:
    """Decode and check every binaryDataArray; numpress refused before any decoding.

    ``lists``: the element's binaryDataArrayLists. ``seen``: the file's decodings
    by param list. A file states the same few
    (time, intensity) for every array, so each is worked out (and refused) once.
    """
    file = budget.name
    n_default = int_or(el.get("defaultArrayLength"), -1)
    out: dict[str, np.ndarray] = {}
    k = -1
    for bdl in lists:
        for bda in bdl.iterchildren(_BDA):
            k += 1
            params, binary = array_parts(bda, groups)
            key = tuple(params)
            how = seen.get(key)
            if how is None:
                how = seen[key] = _decoding(params, what, file)
            zlibbed, dtype, found, factor = how
            kind = found or f"array {k}"
            text = (binary.text or "") if binary is not None else ""
            try:
                raw = binascii.a2b_base64(text)
                if zlibbed:  # bounded: a few KB of zlib can inflate to gigabytes
                    raw = budget.inflate(f"{what}'s {kind}", raw)[0]
                arr = np.frombuffer(raw, dtype=dtype)
            except (binascii.Error, zlib.error, EOFError, ValueError) as exc:
                why = " ".join(str(exc).split())
                raise CorruptDataError(
                    f"{file}: {what}'s {kind} cannot be decoded ({why})"
                ) from exc
            n = int_or(bda.get("arrayLength"), n_default)
            if n >= 0 and len(arr) != n:
                raise CorruptDataError(
                    f"{file}: {what}'s {kind} holds {len(arr)} values where the file states {n}"
                )
            if arr.dtype.kind == "f":
                if kind == "time" and factor != 1.0:  # checked before it is scaled, as always
                    if not _ALL(np.isfinite(arr)):
                        raise CorruptDataError(
                            f"{file}: {what}'s {kind} holds NaN or infinite values"
                        )
                else:
                    unchecked.add(what, kind, arr)
            if kind == "time" and factor != 1.0:  # the record makes its float64 copy anyway
                arr = arr * factor
            if kind in out:  # never let a second array silently replace the first
                raise CorruptDataError(f"{file}: {what} holds two {kind} arrays")
            out[kind] = arr
    return out


def _minutes_per_unit(params: list[Param], what: str, file: str) -> float:
    hit = param_value(params, ("MS:1000595", "time array"))
    return 1.0 if hit is None else minutes_per(hit, what, file)


def minutes_per(param: Param, what: str, file: str) -> float:
    """Minutes per unit of a time value, stated by accession, name or both (which must agree).

    No unit at all is minutes (mzML 1.0 writers, msconvert among them, often left it
    out); a unit that is stated but unknown is refused: taking it for minutes would
    put every peak at the wrong time with nothing to say so.
    """
    acc, unit = param[3].strip(), param[4].strip()
    if not acc and not unit:
        return 1.0
    by_acc = _UNIT_ACCESSIONS.get(acc) if acc else None
    by_name = _UNIT_NAMES.get(unit.lower()) if unit else None
    if (acc and by_acc is None) or (unit and by_name is None):
        stated = " ".join(x for x in (acc, f"'{unit}'" if unit else "") if x)
        raise UnsupportedDataError(
            f"{file}: {what} is in {stated}, a time unit asnmon does not know (second, "
            "minute, hour or millisecond); convert the file with its times in one of those"
        )
    if by_acc is not None and by_name is not None and by_acc[0] != by_name[0]:
        raise UnsupportedDataError(
            f"{file}: {what} states the time unit {acc} ({by_acc[0]}) but names it '{unit}'; "
            "the file contradicts itself, so its times cannot be trusted"
        )
    return (by_acc or by_name or ("minute", 1.0))[1]
