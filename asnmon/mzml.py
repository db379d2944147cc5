"""Read stage: an mzML file -> ``RawFile`` (every trace) or ``Injection`` (assay matched).

Why a hand-written lxml parser and not pyteomics for the hot path: pyteomics
(handed the PSI-MS vocabulary once) reads an 8 x 1,800-point file in ~3 ms, fast
enough, but it gets several things wrong that a QC monitor must get right:
it merges a trace's binaryDataArrays into one dict by name (a repeated array
name silently overwrites the other), keeps a time unit only when the file
gives its accession (mzML 1.0 files state ``unitName`` alone), only *warns* on an
unresolved ``referenceableParamGroupRef``, and decodes arrays (numpress
included) inside its parser, so a refusal has to be bolted on around it.
Reading the ~10 element types we need with ``lxml.etree.iterparse`` is ~150
lines, needs no vocabulary, and runs near the lxml+zlib floor
(``benchmarks/baselines.py`` measures all three). This module is the only place
that knows the format.

Safety: the whole file is read once into memory (the sha256 is of exactly those
bytes), DOCTYPE/ENTITY declarations are refused before parsing (mzML never has
them), and lxml runs with ``resolve_entities=False, no_network=True``.
MS-Numpress is refused, never decoded: pynumpress aborts the process on a corrupt
payload and decodes a mislabelled one into plausible garbage.
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lxml import etree

from asnmon.assay import Assay, Transition
from asnmon.errors import (
    CorruptDataError,
    EmptyFileError,
    MzxmlError,
    NoMatchingTransitionError,
    NotMzmlError,
    NotXmlError,
    ReadError,
    TruncatedFileError,
    UnsafeXmlError,
    UnsupportedDataError,
    WrongPolarityError,
)
from asnmon.records import Chromatogram, FloatArray, Injection, RawFile, Role, RunMeta

__all__ = ["file_sha256", "read_file", "read_injection"]

# (accession, name, value, unit accession, unit name) of one cvParam/userParam
Param = tuple[str, str, str, str, str]

NUMPRESS = frozenset(
    {"MS:1002312", "MS:1002313", "MS:1002314", "MS:1002746", "MS:1002747", "MS:1002748"}
)
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
# minutes per unit; a time array without a unit is taken as minutes (what
# msconvert writes in mzML 1.0 files, where the unit is often left out)
_TIME_UNITS = {
    "UO:0000010": 1 / 60, "second": 1 / 60, "s": 1 / 60,
    "UO:0000031": 1.0, "minute": 1.0, "min": 1.0,
    "UO:0000028": 1 / 60000, "millisecond": 1 / 60000, "ms": 1 / 60000,
    "UO:0000032": 60.0, "hour": 60.0, "h": 60.0,
}  # fmt: skip
_KINDS = {
    "MS:1001473": "srm", "selected reaction monitoring chromatogram": "srm",
    "MS:1001472": "sim", "selected ion monitoring chromatogram": "sim",
    "MS:1000235": "tic", "total ion current chromatogram": "tic",
}  # fmt: skip
_POLARITY = {
    "MS:1000130": "positive", "positive scan": "positive",
    "MS:1000129": "negative", "negative scan": "negative",
}  # fmt: skip
_TARGET_MZ = ("MS:1000827", "isolation window target m/z")
_SELECTED_MZ = ("MS:1000744", "selected ion m/z")
_SCAN_START = ("MS:1000016", "scan start time")
_MS_LEVEL = ("MS:1000511", "ms level")
# msconvert ids: "SRM SIC Q1=133.1 Q3=87.1 sample=1 ...", "- SRM SIC Q1=269.0 Q3=196 start=..",
# "SIM SIC Q1=609.25 ...", "SRM SIC Q1=1059 Q3=244.15 Channel=1 ..." (Shimadzu)
_ID_RE = re.compile(
    r"^\s*(?P<sign>[-+])?\s*(?P<kind>SRM|SIM) SIC Q1=(?P<q1>[0-9.eE+-]+)"
    r"(?:\s+Q3=(?P<q3>[0-9.eE+-]+))?"
)
_CLOSING_RE = re.compile(rb"</(?:[\w.-]+:)?(?:indexedmzML|mzML)>\s*\Z")
_ROOT_RE = re.compile(rb"<([^?!/\s>][^\s>/]*)")
_PROLOG_LIMIT = 65536


# ---------------------------------------------------------------- public API


def file_sha256(path: Path | str) -> str:
    """Hex sha256 of the file's bytes as stored on disk (gzip not undone)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_file(path: Path | str, *, spectra: bool = False) -> RawFile:
    """Every chromatogram in the file; ``spectra=True`` also decodes and checks spectra."""
    p = Path(path)
    return _parse(p, _read_bytes(p), spectra=spectra).raw


def read_injection(path: Path | str, assay: Assay) -> Injection:
    """Read the file once and match the assay's transitions to its traces."""
    p = Path(path)
    data = _read_bytes(p)
    digest = hashlib.sha256(data).hexdigest()
    parsed = _parse(p, data, spectra=assay.acquisition == "full_scan")
    if assay.acquisition == "full_scan":
        traces, notes = _match_full_scan(parsed, assay)
    else:
        traces, notes = _match_srm(parsed.raw, assay)
    pols = [t.polarity for t in traces.values() if t.polarity]
    majority = max(set(pols), key=pols.count) if pols else parsed.raw.meta.polarity
    m = parsed.raw.meta
    meta = RunMeta(m.run_id, m.started_at, m.instrument, majority, m.mzml_version)
    return Injection(p, digest, meta, traces, tuple(notes))


# ---------------------------------------------------------------- bytes -> document


def _read_bytes(p: Path) -> bytes:
    if p.is_dir():
        raise NotMzmlError(
            f"{p.name} is a folder (a vendor raw folder?), not an mzML file; "
            "configure a converter (msconvert --mzML) for this instrument"
        )
    try:
        return p.read_bytes()
    except FileNotFoundError as exc:
        raise ReadError(f"{p.name} does not exist (moved or deleted before it was read)") from exc
    except OSError as exc:
        raise ReadError(f"{p.name} cannot be opened: {exc.strerror or exc}") from exc


def _unpack(name: str, data: bytes) -> bytes:
    """Undo gzip (by magic bytes, not by name) and run the checks that need no parser."""
    if not data.strip():
        raise EmptyFileError(f"{name} is empty ({len(data)} bytes)")
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except EOFError as exc:
            raise TruncatedFileError(f"{name} is a gzip file that stops before its end") from exc
        except (OSError, zlib.error) as exc:
            raise CorruptDataError(f"{name} is a damaged gzip file") from exc
        if not data.strip():
            raise EmptyFileError(f"{name} is a gzip file holding nothing")
    head = data[:_PROLOG_LIMIT].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        raise NotXmlError(f"{name} is not XML (it does not start with '<')")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
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
    if not _CLOSING_RE.search(data[-256:]):
        raise TruncatedFileError(
            f"{name} is incomplete: the closing </{tag}> tag is missing (still being written, "
            "or cut off)"
        )
    return data


def _refuse_numpress(name: str, data: bytes) -> None:
    """Refuse MS-Numpress anywhere in the file before the parser or any decoder runs.

    A byte scan (a few find() calls, ~0.1 ms per MB) rather than a per-array check alone,
    so a file whose numpress arrays we would not otherwise decode (spectra in an MRM
    read) is refused too: its content cannot be trusted to a reader that may decode it.
    """
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


@dataclass(slots=True)
class _Spectrum:
    rt: float  # minutes
    ms_level: int
    polarity: str | None
    precursor_mz: float | None
    mz: np.ndarray
    intensity: np.ndarray


@dataclass(slots=True)
class _Parsed:
    raw: RawFile
    spectra: list[_Spectrum] = field(default_factory=list)


def _parse(p: Path, data: bytes, *, spectra: bool) -> _Parsed:
    name = p.name
    data = _unpack(name, data)
    tags = ["mzML", "run", "referenceableParamGroup", "instrumentConfiguration",
            "spectrum", "chromatogram"]  # fmt: skip
    groups: dict[str, list[Param]] = {}
    meta: dict[str, str | None] = {}
    chroms: list[Chromatogram] = []
    specs: list[_Spectrum] = []
    n_spectra = 0
    try:
        ctx = etree.iterparse(
            io.BytesIO(data), events=("start", "end"), tag=[f"{{*}}{t}" for t in tags],
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True,
            remove_comments=True, remove_pis=True,
        )  # fmt: skip
        for event, el in ctx:
            tag = _local(el)
            if event == "start":
                if tag == "mzML":
                    # mzML 1.0 writers often left version="" but named the schema
                    meta["version"] = el.get("version") or (
                        "1.0.0" if "mzML_1.0" in (el.tag + str(el.nsmap.get(None))) else None
                    )
                    meta["doc_id"] = el.get("id")
                elif tag == "run":
                    meta["run_id"] = el.get("id")
                    meta["started_at"] = el.get("startTimeStamp")
                continue
            if tag == "referenceableParamGroup":
                groups[el.get("id", "")] = _params(el, groups)
            elif tag == "instrumentConfiguration" and "instrument" not in meta:
                meta["instrument"] = _instrument_model(_params(el, groups))
            elif tag == "chromatogram":
                chroms.append(_chromatogram(el, len(chroms), groups, name))
            elif tag == "spectrum":
                n_spectra += 1
                if spectra:
                    specs.append(_spectrum(el, n_spectra - 1, groups, name))
            else:
                continue
            _release(el)
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else "?"
        why = " ".join(str(exc.msg).split()).rstrip(",")  # libxml2 messages carry newlines
        raise NotXmlError(f"{name} is not well-formed XML (line {line}: {why})") from exc
    pols = [c.polarity for c in chroms if c.polarity]
    polarity = max(set(pols), key=pols.count) if pols else None
    run_meta = RunMeta(
        run_id=meta.get("run_id") or meta.get("doc_id"),
        started_at=meta.get("started_at"),
        instrument=meta.get("instrument"),
        polarity=polarity,
        mzml_version=meta.get("version"),
    )
    raw = RawFile(path=p, meta=run_meta, chromatograms=tuple(chroms), n_spectra=n_spectra)
    return _Parsed(raw, specs)


def _local(el: etree._Element) -> str:
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _release(el: etree._Element) -> None:
    """Free what iterparse built so far; keeps memory flat on big files."""
    el.clear()
    parent = el.getparent()
    if parent is not None:
        while el.getprevious() is not None:
            del parent[0]


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _params(el: etree._Element, groups: dict[str, list[Param]]) -> list[Param]:
    """The element's own cvParams/userParams, referenced param groups expanded."""
    out: list[Param] = []
    for child in el.iterchildren(tag=etree.Element):
        tag = _local(child)
        if tag in ("cvParam", "userParam"):
            g = child.get
            out.append((g("accession", ""), g("name", ""), g("value", ""),
                        g("unitAccession", ""), g("unitName", "")))  # fmt: skip
        elif tag == "referenceableParamGroupRef":
            out.extend(groups.get(child.get("ref", ""), ()))
    return out


def _lookup(params: Iterable[Param], table: dict[str, str]) -> str | None:
    for acc, name, *_ in params:
        hit = table.get(acc) or table.get(name)
        if hit:
            return hit
    return None


def _value(params: Iterable[Param], key: tuple[str, str]) -> Param | None:
    return next((p for p in params if p[0] == key[0] or p[1] == key[1]), None)


def _instrument_model(params: list[Param]) -> str | None:
    # The model is the one cvParam directly under instrumentConfiguration (or its param
    # group) that is not the serial number; "instrument model" itself carries a value.
    for acc, name, value, *_ in params:
        if acc == "MS:1000031" or name == "instrument model":
            return value or None
        if acc.startswith("MS:") and acc != "MS:1000529" and not value:
            return name
    return None


def _children(el: etree._Element, *path: str) -> Iterator[etree._Element]:
    """Descendants along a path of local names (namespace-agnostic)."""
    if not path:
        yield el
        return
    for child in el.iterchildren(tag=etree.Element):
        if _local(child) == path[0]:
            yield from _children(child, *path[1:])


def _mz(el: etree._Element, groups: dict[str, list[Param]], what: str) -> float | None:
    for node in _children(el, what):
        for win in _children(node, "isolationWindow"):
            hit = _value(_params(win, groups), _TARGET_MZ)
            if hit and hit[2]:
                return _float(hit[2])
        for ion in _children(node, "selectedIonList", "selectedIon"):
            hit = _value(_params(ion, groups), _SELECTED_MZ)
            if hit and hit[2]:
                return _float(hit[2])
    return None


def _float(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


# ---------------------------------------------------------------- arrays


def _arrays(
    el: etree._Element, groups: dict[str, list[Param]], what: str, file: str
) -> dict[str, np.ndarray]:
    """Decode and check every binaryDataArray; numpress refused before any decoding."""
    n_default = _int(el.get("defaultArrayLength"), -1)
    out: dict[str, np.ndarray] = {}
    for k, bda in enumerate(_children(el, "binaryDataArrayList", "binaryDataArray")):
        params = _params(bda, groups)
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
        dtype = _lookup(params, _DTYPES)
        if dtype is None:
            raise UnsupportedDataError(
                f"{file}: {what} has an array whose number type is missing or not supported"
            )
        kind = _lookup(params, _ARRAY_KINDS) or f"array {k}"
        binary = next(_children(bda, "binary"), None)
        text = (binary.text or "") if binary is not None else ""
        try:
            raw = binascii.a2b_base64(text)
            if zlibbed:
                raw = zlib.decompress(raw)
            arr = np.frombuffer(raw, dtype=dtype)
        except (binascii.Error, zlib.error, ValueError) as exc:
            why = " ".join(str(exc).split())
            raise CorruptDataError(f"{file}: {what}'s {kind} cannot be decoded ({why})") from exc
        n = _int(bda.get("arrayLength"), n_default)
        if n >= 0 and len(arr) != n:
            raise CorruptDataError(
                f"{file}: {what}'s {kind} holds {len(arr)} values where the file states {n}"
            )
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise CorruptDataError(f"{file}: {what}'s {kind} holds NaN or infinite values")
        if kind == "time":
            arr = arr * _minutes_per_unit(params)
        if kind in out:  # never let a second array silently replace the first
            raise CorruptDataError(f"{file}: {what} holds two {kind} arrays")
        out[kind] = arr
    return out


def _minutes_per_unit(params: list[Param]) -> float:
    hit = _value(params, ("MS:1000595", "time array"))
    if hit is None:
        return 1.0
    return _TIME_UNITS.get(hit[3]) or _TIME_UNITS.get(hit[4].lower()) or 1.0


def _chromatogram(
    el: etree._Element, index: int, groups: dict[str, list[Param]], file: str
) -> Chromatogram:
    cid = el.get("id", "")
    what = f"chromatogram '{cid}' (#{index})"
    params = _params(el, groups)
    arrays = _arrays(el, groups, what, file)
    rt, inten = arrays.get("time"), arrays.get("intensity")
    if rt is None or inten is None:
        if arrays or _int(el.get("defaultArrayLength"), 0) > 0:
            raise CorruptDataError(f"{file}: {what} lacks its time or intensity array")
        rt = inten = np.empty(0)
    if len(rt) != len(inten):
        raise CorruptDataError(f"{file}: {what} has {len(rt)} times but {len(inten)} intensities")
    q1, q3 = _mz(el, groups, "precursor"), _mz(el, groups, "product")
    kind = _lookup(params, _KINDS)
    polarity = _lookup(params, _POLARITY)
    m = _ID_RE.match(cid)
    if m:  # msconvert's id is the fallback when the isolation windows are not written
        q1 = q1 if q1 else _float(m["q1"])
        q3 = q3 if q3 else (_float(m["q3"]) if m["q3"] else None)
        kind = kind or m["kind"].lower()
        polarity = polarity or {"-": "negative", "+": "positive"}.get(m["sign"] or "")
    q1, q3 = q1 or None, q3 or None  # OpenMS writes 0.0 for "no m/z"
    if kind is None:
        kind = "srm" if q1 and q3 else "other"
    return Chromatogram(cid, index, rt, inten, q1, q3, polarity, kind)


def _spectrum(
    el: etree._Element, index: int, groups: dict[str, list[Param]], file: str
) -> _Spectrum:
    what = f"spectrum '{el.get('id', '')}' (#{index})"
    params = _params(el, groups)
    arrays = _arrays(el, groups, what, file)
    mz = arrays.get("mz", np.empty(0))
    inten = arrays.get("intensity", np.empty(0))
    if len(mz) != len(inten):
        raise CorruptDataError(f"{file}: {what} has {len(mz)} m/z values but {len(inten)} "
                               "intensities")  # fmt: skip
    level = _value(params, _MS_LEVEL)
    rt = 0.0
    for scan in _children(el, "scanList", "scan"):
        hit = _value(_params(scan, groups), _SCAN_START)
        if hit:
            value = _float(hit[2])
            if value is None:
                raise CorruptDataError(f"{file}: {what} has scan start time {hit[2]!r}")
            factor = _TIME_UNITS.get(hit[3]) or _TIME_UNITS.get(hit[4]) or 1.0
            rt = value * factor
            break
    return _Spectrum(
        rt=rt,
        ms_level=_int(level[2] if level else None, 1),
        polarity=_lookup(params, _POLARITY),
        precursor_mz=_mz(next(_children(el, "precursorList"), el), groups, "precursor"),
        mz=mz.astype(np.float64),
        intensity=inten.astype(np.float64),
    )


# ---------------------------------------------------------------- matching


def _summary(raw: RawFile) -> str:
    srm = [c for c in raw.chromatograms if c.kind == "srm" and c.q1]
    parts = []
    if srm:
        q1s = [c.q1 for c in srm if c.q1]
        pols = sorted({c.polarity for c in srm if c.polarity})
        pol = f" ({', '.join(pols)})" if pols else ""
        parts.append(f"{len(srm)} SRM traces, Q1 {min(q1s):.1f}-{max(q1s):.1f}{pol}")
    others = len(raw.chromatograms) - len(srm)
    if others:
        parts.append(f"{others} other chromatogram(s)")
    if raw.n_spectra:
        parts.append(f"{raw.n_spectra} spectra")
    return "the file holds " + (", ".join(parts) if parts else "no chromatograms")


def _describe(t: Transition) -> str:
    q3 = f" Q3={t.q3:g}" if t.q3 is not None else ""
    return f"{t.id} (Q1={t.q1:g}{q3})"


def _required(assay: Assay) -> tuple[Transition, ...]:
    return tuple(t for t in assay.transitions if t.role in (Role.ANALYTE_QUANT, Role.IS_QUANT))


def _refuse(
    raw: RawFile, assay: Assay, missing: list[Transition], wrong: set[str], summary: str
) -> None:
    """Raise for missing quantifiers: wrong polarity when that explains it, else no match."""
    if not missing:
        return
    file = raw.path.name
    names = ", ".join(_describe(t) for t in missing)
    other = "negative" if assay.polarity == "positive" else "positive"
    stated = {c.polarity for c in raw.chromatograms if c.polarity}
    if stated == {other} or any(t.id in wrong for t in missing):
        raise WrongPolarityError(
            f"{file} was acquired in {other} mode but the assay is {assay.polarity}: "
            f"{names} not found in {assay.polarity} mode; was the wrong method or file used?"
        )
    raise NoMatchingTransitionError(
        f"{file}: no {assay.polarity}-mode trace within ±{assay.mz_tolerance:g} m/z of "
        f"{names}; {summary}"
    )


def _match_srm(raw: RawFile, assay: Assay) -> tuple[dict[str, Chromatogram], list[str]]:
    tol = assay.mz_tolerance
    traces: dict[str, Chromatogram] = {}
    notes: list[str] = []
    wrong: set[str] = set()
    for t in assay.transitions:
        kinds = ("srm",) if t.q3 is not None else ("sim", "srm")
        cands = [
            c for c in raw.chromatograms
            if c.kind in kinds and c.q1 is not None and abs(c.q1 - t.q1) <= tol
            and (t.q3 is None or (c.q3 is not None and abs(c.q3 - t.q3) <= tol))
        ]  # fmt: skip
        right = [c for c in cands if c.polarity in (None, assay.polarity)]
        if cands and not right:
            wrong.add(t.id)
            continue
        if not right:
            continue

        # Closest Q1/Q3 first; then a trace that states the assay's polarity over one that
        # states none; then file order, which is stable across injections of one method
        # (unlike "the most intense", which could swap channels between samples).
        def rank(c: Chromatogram, t: Transition = t) -> tuple[float, int, int]:
            d = abs((c.q1 or 0.0) - t.q1) + (abs((c.q3 or 0.0) - t.q3) if t.q3 else 0.0)
            return (round(d, 6), c.polarity is None, c.index)

        right.sort(key=rank)
        traces[t.id] = right[0]
        if len(right) > 1:
            rest = "; ".join(f"'{c.id}' (#{c.index})" for c in right[1:])
            took = right[0]
            notes.append(
                f"{len(right)} traces match {_describe(t)}: took '{took.id}' (#{took.index}), "
                f"the closest in Q1/Q3 and the first in the file; not used: {rest}."
            )
    missing = [t for t in _required(assay) if t.id not in traces]
    _refuse(raw, assay, missing, wrong, _summary(raw))
    notes.extend(
        f"qualifier {_describe(t)} is not in the file" for t in assay.transitions
        if t.id not in traces and t.role not in (Role.ANALYTE_QUANT, Role.IS_QUANT)
    )  # fmt: skip
    return traces, notes


def _xic(spectra: list[_Spectrum], target: float, ppm: float) -> FloatArray:
    half = target * ppm * 1e-6
    out = np.empty(len(spectra))
    for i, s in enumerate(spectra):
        sel = (s.mz >= target - half) & (s.mz <= target + half)
        out[i] = s.intensity[sel].sum()
    return out


def _match_full_scan(parsed: _Parsed, assay: Assay) -> tuple[dict[str, Chromatogram], list[str]]:
    raw = parsed.raw
    traces: dict[str, Chromatogram] = {}
    notes: list[str] = []
    wrong: set[str] = set()
    base = len(raw.chromatograms)
    for t in assay.transitions:
        if t.q3 is None:
            cands = [s for s in parsed.spectra if s.ms_level == 1]
            kind, target = "xic_ms1", t.q1
        else:
            cands = [s for s in parsed.spectra if s.ms_level >= 2 and s.precursor_mz is not None
                     and abs(s.precursor_mz - t.q1) <= assay.mz_tolerance]  # fmt: skip
            kind, target = "xic_ms2", t.q3
        right = sorted((s for s in cands if s.polarity in (None, assay.polarity)),
                       key=lambda s: s.rt)  # fmt: skip
        if cands and not right:
            wrong.add(t.id)
        if not right:
            continue
        pol = right[0].polarity
        rt = np.array([s.rt for s in right])
        traces[t.id] = Chromatogram(f"{kind} {t.id} m/z {target:g} ±{assay.ppm:g} ppm",
                                    base + len(traces), rt, _xic(right, target, assay.ppm),
                                    t.q1, t.q3, pol, kind)  # fmt: skip
    missing = [t for t in _required(assay) if t.id not in traces]
    _refuse(raw, assay, missing, wrong, _summary(raw))
    return traces, notes
