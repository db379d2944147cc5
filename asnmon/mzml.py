"""Read stage: an mzML file -> ``RawFile`` (every trace) or ``Injection`` (assay matched).

Why a hand-written lxml parser and not pyteomics for the hot path: pyteomics
(handed the PSI-MS vocabulary once) reads an 8 x 1,800-point file in ~3 ms, fast
enough, but it gets several things wrong that a QC monitor must get right:
it merges a trace's binaryDataArrays into one dict by name (a repeated array
name silently overwrites the other), keeps a time unit only when the file
gives its accession (mzML 1.0 files state ``unitName`` alone), only *warns* on an
unresolved ``referenceableParamGroupRef``, and decodes arrays (numpress
included) inside its parser, so a refusal has to be bolted on around it.
Reading the ~10 element types we need with lxml (a small document parsed whole,
a large one streamed by ``iterparse``) is ~150 lines, needs no
vocabulary, and runs near the lxml+zlib floor
(``benchmarks/baselines.py`` measures all three). This module, with
``mzml_checks`` (the bytes), ``mzml_params`` (an element's params and
children) and ``mzml_arrays`` (decoding its arrays), is the only place that knows
the format.

Safety: the whole file is read once into memory (the sha256 is of exactly those
bytes), DOCTYPE/ENTITY declarations are refused before parsing (mzML never has
them), and lxml runs with ``resolve_entities=False, no_network=True``.
MS-Numpress is refused, never decoded: pynumpress aborts the process on a corrupt
payload and decodes a mislabelled one into plausible garbage.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lxml import etree

from asnmon.assay import Assay
from asnmon.errors import (
    CorruptDataError,
    NotMzmlError,
    NotRegularFileError,
    NotXmlError,
)
from asnmon.fileread import DEFAULT_LIMITS, Inflation, ReadLimits, read_regular, regular_sha256
from asnmon.match import Scan, match_full_scan, match_srm
from asnmon.mzml_arrays import Decodings, Unchecked, decode_arrays, int_or, minutes_per
from asnmon.mzml_checks import unpack
from asnmon.mzml_params import (
    Param,
    chromatogram_parts,
    descendants,
    finite_float,
    lookup,
    mz_of,
    mz_of_children,
    param_list,
    param_value,
    split_children,
)
from asnmon.records import Chromatogram, Injection, RawFile, RunMeta

__all__ = ["DEFAULT_LIMITS", "ReadLimits", "file_sha256", "read_file", "read_injection"]

_KINDS = {
    "MS:1001473": "srm", "selected reaction monitoring chromatogram": "srm",
    "MS:1001472": "sim", "selected ion monitoring chromatogram": "sim",
    "MS:1000235": "tic", "total ion current chromatogram": "tic",
}  # fmt: skip
_POLARITY = {
    "MS:1000130": "positive", "positive scan": "positive",
    "MS:1000129": "negative", "negative scan": "negative",
}  # fmt: skip
_SCAN_START = ("MS:1000016", "scan start time")
_MS_LEVEL = ("MS:1000511", "ms level")
# msconvert ids: "SRM SIC Q1=133.1 Q3=87.1 sample=1 ...", "- SRM SIC Q1=269.0 Q3=196 start=..",
# "SIM SIC Q1=609.25 ...", "SRM SIC Q1=1059 Q3=244.15 Channel=1 ..." (Shimadzu)
_ID_RE = re.compile(
    r"^\s*(?P<sign>[-+])?\s*(?P<kind>SRM|SIM) SIC Q1=(?P<q1>[0-9.eE+-]+)"
    r"(?:\s+Q3=(?P<q3>[0-9.eE+-]+))?"
)


# ---------------------------------------------------------------- public API


def file_sha256(path: Path | str, limits: ReadLimits = DEFAULT_LIMITS) -> str:
    """Hex sha256 of the file's bytes as stored on disk (gzip not undone); regular files only."""
    return regular_sha256(path, limits)


def read_file(
    path: Path | str, *, spectra: bool = False, limits: ReadLimits = DEFAULT_LIMITS
) -> RawFile:
    """Every chromatogram in the file; ``spectra=True`` also decodes and checks spectra."""
    p = path if isinstance(path, Path) else Path(path)
    return _parse(p, _read_bytes(p, limits), spectra=spectra, limits=limits).raw


def read_injection(
    path: Path | str,
    assay: Assay,
    limits: ReadLimits = DEFAULT_LIMITS,
    *,
    data: bytes | None = None,
    sha256: str | None = None,
) -> Injection:
    """Read the file once and match the assay's transitions to its traces.

    ``data``: the file's bytes when the caller has read them already (``read_regular``,
    to hash them first): they are not read again, and the sha256 is of exactly them
    (``sha256``: that hash, when the caller has it; only taken with ``data``).
    """
    p = path if isinstance(path, Path) else Path(path)  # a Path is not parsed again
    if data is None:
        data, sha256 = _read_bytes(p, limits), None
    digest = sha256 or hashlib.sha256(data).hexdigest()
    parsed = _parse(p, data, spectra=assay.acquisition == "full_scan", limits=limits)
    if assay.acquisition == "full_scan":
        traces, notes = match_full_scan(parsed.raw, parsed.spectra, assay)
    else:
        traces, notes = match_srm(parsed.raw, assay)
    pols = [t.polarity for t in traces.values() if t.polarity]
    majority = max(set(pols), key=pols.count) if pols else parsed.raw.meta.polarity
    m = parsed.raw.meta
    meta = RunMeta(m.run_id, m.started_at, m.instrument, majority, m.mzml_version)
    return Injection(p, digest, meta, traces, tuple(parsed.notes + notes))


# ---------------------------------------------------------------- bytes -> document


def _read_bytes(p: Path, limits: ReadLimits) -> bytes:
    try:
        return read_regular(p, limits)
    except NotRegularFileError:
        if not p.is_dir():  # asked only when refused: one stat less per file read
            raise
    raise NotMzmlError(
        f"{p.name} is a folder (a vendor raw folder?), not an mzML file; "
        "configure a converter (msconvert --mzML) for this instrument"
    )


@dataclass(slots=True)
class _Parsed:
    raw: RawFile
    spectra: list[Scan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _parse(p: Path, data: bytes, *, spectra: bool, limits: ReadLimits) -> _Parsed:
    name = p.name
    budget = Inflation(name, limits)
    data, notes = unpack(name, data, budget)
    groups: dict[str, list[Param]] = {}
    meta: dict[str, str | None] = {}
    chroms: list[Chromatogram] = []
    specs: list[Scan] = []
    n_spectra = 0
    seen: Decodings = {}
    unchecked = Unchecked(name)
    try:
        events, streamed = _events(data)
        for event, tag, el in events:
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
                groups[el.get("id", "")] = param_list(el, groups)
            elif tag == "instrumentConfiguration" and "instrument" not in meta:
                meta["instrument"] = _instrument_model(param_list(el, groups))
            elif tag == "chromatogram":
                chroms.append(_chromatogram(el, len(chroms), groups, budget, seen, unchecked))
            elif tag == "spectrum":
                n_spectra += 1
                if spectra:
                    specs.append(_spectrum(el, n_spectra - 1, groups, budget, seen, unchecked))
            else:
                continue
            if streamed:
                _release(el)
    except etree.XMLSyntaxError as exc:
        unchecked.check()  # an array before the syntax error is what is reported first
        line = exc.position[0] if exc.position else "?"
        why = " ".join(str(exc.msg).split()).rstrip(",")  # libxml2 messages carry newlines
        raise NotXmlError(f"{name} is not well-formed XML (line {line}: {why})") from exc
    except Exception:  # re-raised: only which fault is reported first is at stake
        bad = unchecked.first_bad()  # as above: a bad array before whatever went wrong
        if bad is not None:
            raise bad from None
        raise
    unchecked.check()
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
    return _Parsed(raw, specs, notes)


_READ = ("mzML", "run", "referenceableParamGroup", "instrumentConfiguration", "spectrum",
         "chromatogram")  # fmt: skip
_TAGS = tuple(f"{{*}}{t}" for t in _READ)
_XML_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False,
                "huge_tree": True, "remove_comments": True, "remove_pis": True}  # fmt: skip
# A document parsed whole also drops whitespace-only text between elements (~3 % less
# parse time): the only text read is a <binary>'s, whose whitespace base64 skips, and
# libxml2 keeps the whitespace of an element with no other content.
_WHOLE_OPTIONS = {**_XML_OPTIONS, "remove_blank_text": True}
# Documents up to this size are parsed whole, then read: ~40 % less lxml time than
# iterparse for a 37 KiB injection, for at most ~2 MB more memory (a 0.97 MB real file:
# peak +4.9 MB instead of +3.1 MB streamed; +4.4 MB while the whole tree was walked and
# released as it went). Larger ones (full-scan runs) stream, memory flat.
WHOLE_TREE_BYTES = 1 << 20


_STARTS = ("mzML", "run")  # read at their start; the others once complete (their end)
_ENDS = tuple(f"{{*}}{t}" for t in _READ if t not in _STARTS)


def _events(data: bytes) -> tuple[Iterator[tuple[str, str, etree._Element]], bool]:
    """(start|end, local name, element) for the elements _parse reads, in document order;
    streamed?

    A small document is parsed in one go (same options, blank text aside). Unless one
    element _parse reads at its end lies inside another (never in mzML: then the
    tree is walked, event by event, as iterparse would give them), each element
    comes once, in document order: the same order of reading, without the walk's
    event per start and end, and nothing needs releasing. One that does not parse
    is read again incrementally (``streamed``: release what was read), so that a
    broken array before the syntax error is reported first, exactly as before.
    """
    if len(data) <= WHOLE_TREE_BYTES:
        try:  # one call, not feed + close: libxml2's one-shot parse, ~2 % faster
            root = etree.XML(data, etree.XMLParser(**_WHOLE_OPTIONS))
        except etree.LxmlError:
            pass
        else:
            found = [(_local(el), el) for el in root.iter(*_TAGS)]
            if not any(
                tag not in _STARTS and next(el.iterancestors(*_ENDS), None) is not None
                for tag, el in found
            ):
                return iter([("start" if t in _STARTS else "end", t, el) for t, el in found]), False
            return _named(etree.iterwalk(root, events=("start", "end"), tag=_TAGS)), True
    return _named(etree.iterparse(io.BytesIO(data), events=("start", "end"), tag=_TAGS,
                                  **_XML_OPTIONS)), True  # fmt: skip


def _named(
    events: Iterable[tuple[str, etree._Element]],
) -> Iterator[tuple[str, str, etree._Element]]:
    return ((event, _local(el), el) for event, el in events)


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


def _instrument_model(params: list[Param]) -> str | None:
    # The model is the one cvParam directly under instrumentConfiguration (or its param
    # group) that is not the serial number; "instrument model" itself carries a value.
    for acc, name, value, *_ in params:
        if acc == "MS:1000031" or name == "instrument model":
            return value or None
        if acc.startswith("MS:") and acc != "MS:1000529" and not value:
            return name
    return None


def _chromatogram(
    el: etree._Element,
    index: int,
    groups: dict[str, list[Param]],
    budget: Inflation,
    seen: Decodings,
    unchecked: Unchecked,
) -> Chromatogram:
    file = budget.name
    cid = el.get("id", "")
    what = f"chromatogram '{cid}' (#{index})"
    kind, polarity, precursors, products, lists = chromatogram_parts(el, groups, _KINDS, _POLARITY)
    arrays = decode_arrays(el, lists, groups, what, budget, seen, unchecked)
    rt, inten = arrays.get("time"), arrays.get("intensity")
    if rt is None or inten is None:
        if arrays or int_or(el.get("defaultArrayLength"), 0) > 0:
            raise CorruptDataError(f"{file}: {what} lacks its time or intensity array")
        rt = inten = np.empty(0)
    if len(rt) != len(inten):
        raise CorruptDataError(f"{file}: {what} has {len(rt)} times but {len(inten)} intensities")
    q1 = mz_of(precursors, groups)
    q3 = mz_of(products, groups)
    # msconvert's id is the fallback when the isolation windows are not written
    m = None if q1 and q3 and kind and polarity else _ID_RE.match(cid)
    if m:
        q1 = q1 if q1 else finite_float(m["q1"])
        q3 = q3 if q3 else (finite_float(m["q3"]) if m["q3"] else None)
        kind = kind or m["kind"].lower()
        polarity = polarity or {"-": "negative", "+": "positive"}.get(m["sign"] or "")
    q1, q3 = q1 or None, q3 or None  # OpenMS writes 0.0 for "no m/z"
    if kind is None:
        kind = "srm" if q1 and q3 else "other"
    return Chromatogram(cid, index, rt, inten, q1, q3, polarity, kind)


def _spectrum(
    el: etree._Element,
    index: int,
    groups: dict[str, list[Param]],
    budget: Inflation,
    seen: Decodings,
    unchecked: Unchecked,
) -> Scan:
    file = budget.name
    what = f"spectrum '{el.get('id', '')}' (#{index})"
    params, kids = split_children(el, groups)
    arrays = decode_arrays(
        el, kids.get("binaryDataArrayList", ()), groups, what, budget, seen, unchecked
    )
    mz = arrays.get("mz", np.empty(0))
    inten = arrays.get("intensity", np.empty(0))
    if len(mz) != len(inten):
        raise CorruptDataError(f"{file}: {what} has {len(mz)} m/z values but {len(inten)} "
                               "intensities")  # fmt: skip
    level = param_value(params, _MS_LEVEL)
    rt = 0.0
    for scan in descendants(el, "scanList", "scan"):
        hit = param_value(param_list(scan, groups), _SCAN_START)
        if hit:
            value = finite_float(hit[2])
            if value is None:
                raise CorruptDataError(f"{file}: {what} has scan start time {hit[2]!r}")
            rt = value * minutes_per(hit, f"{what}'s scan start time", file)
            break
    return Scan(
        rt=rt,
        ms_level=int_or(level[2] if level else None, 1),
        polarity=lookup(params, _POLARITY),
        precursor_mz=mz_of_children(
            next(descendants(el, "precursorList"), el), groups, "precursor"
        ),
        mz=mz.astype(np.float64),
        intensity=inten.astype(np.float64),
    )
