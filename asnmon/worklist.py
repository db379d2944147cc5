"""The worklist: which injection is which sample.

A CSV exported from the instrument's sequence (or written by hand), one row
per injection in acquisition order. Labs without one name their files by a
convention (``CAL03``, ``QC-L``, ``BLANK``...) that ``sample_from_name``
understands; anything else is an unknown sample and says so.

Columns (only ``file`` and ``sample_type`` are required)::

    file, sample_id, sample_type, level, nominal, matrix, dilution,
    normalizer, normalizer_unit, volume_ul, group

``file`` is the file name without extension (``023_S0012`` for
``023_S0012.mzML``); a full name is accepted too.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from pathlib import Path

from asnmon.assay import Assay
from asnmon.errors import WorklistError
from asnmon.records import Sample, SampleType

COLUMNS = (
    "file",
    "sample_id",
    "sample_type",
    "level",
    "nominal",
    "matrix",
    "dilution",
    "normalizer",
    "normalizer_unit",
    "volume_ul",
    "group",
    "position",
)
_REQUIRED = ("file", "sample_type")
_FLOATS = ("nominal", "dilution", "normalizer", "volume_ul")
_SUFFIXES = (".mzml.gz", ".mzml", ".raw", ".d", ".wiff", ".gz")


def file_key(name: str | Path) -> str:
    """The name a worklist uses for a file: its name without the data extensions."""
    base = Path(name).name
    low = base.lower()
    for suffix in _SUFFIXES:
        if low.endswith(suffix):
            return base[: -len(suffix)]
    return base


@dataclass(frozen=True, slots=True)
class Worklist:
    samples: tuple[Sample, ...]
    path: str | None = None

    def lookup(self, name: str | Path) -> Sample | None:
        key = file_key(name)
        return next((s for s in self.samples if s.file == key), None)

    def __len__(self) -> int:
        return len(self.samples)


def _float(value: str, where: str, problems: list[str], *, positive: bool = False) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        problems.append(f"{where}: '{value}' is not a number")
        return None
    if positive and number <= 0:
        problems.append(f"{where}: must be > 0; got {number}")
        return None
    if number < 0:
        problems.append(f"{where}: must not be negative; got {number}")
        return None
    return number


def parse_worklist(text: str, source: str = "worklist") -> Worklist:
    """Validate a worklist CSV; raise WorklistError naming row, column and problem."""
    rows = list(csv.DictReader(text.splitlines()))
    reader = csv.reader(text.splitlines())
    try:
        columns = [c.strip().lower() for c in next(reader)]
    except StopIteration:
        raise WorklistError(
            f"{source}: the file is empty; expected a header row with "
            f"at least: {', '.join(_REQUIRED)}"
        ) from None
    problems: list[str] = []
    for col in _REQUIRED:
        if col not in columns:
            problems.append(f"column '{col}' is missing (columns found: {', '.join(columns)})")
    for col in columns:
        if col and col not in COLUMNS:
            problems.append(f"column '{col}' is not known (known: {', '.join(COLUMNS)})")
    if problems:
        raise WorklistError(f"{source}: " + "; ".join(problems), tuple(problems))

    types = {t.value for t in SampleType}
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(rows, start=2):  # row 1 is the header
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        if not any(row.values()):
            continue
        where = f"row {i}"
        name = file_key(row.get("file", ""))
        if not name:
            problems.append(f"{where}, column 'file': empty")
            continue
        if name in seen:
            problems.append(f"{where}, column 'file': '{name}' already on row {seen[name]}")
            continue
        seen[name] = i
        stype = row.get("sample_type", "").lower()
        if stype not in types:
            problems.append(
                f"{where}, column 'sample_type': '{stype}' is not one of {', '.join(sorted(types))}"
            )
            continue
        nums = {
            c: _float(
                row.get(c, ""),
                f"{where}, column '{c}'",
                problems,
                positive=c in ("dilution", "normalizer", "volume_ul"),
            )
            for c in _FLOATS
        }
        if stype in ("calibrator", "qc") and nums["nominal"] is None and not row.get("level"):
            problems.append(f"{where}: a {stype} needs a 'nominal' concentration or a 'level'")
        position = row.get("position", "")
        samples.append(
            Sample(
                file=name,
                sample_id=row.get("sample_id") or name,
                sample_type=SampleType(stype),
                position=int(position) if position.isdigit() else len(samples) + 1,
                level=row.get("level") or None,
                nominal=nums["nominal"],
                matrix=row.get("matrix") or None,
                dilution=nums["dilution"] or 1.0,
                normalizer=nums["normalizer"],
                normalizer_unit=row.get("normalizer_unit") or None,
                volume_ul=nums["volume_ul"],
                group=row.get("group") or None,
            )
        )
    if problems:
        raise WorklistError(
            f"{source}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems),
            tuple(problems),
        )
    return Worklist(tuple(samples), source)


def load_worklist(path: str | Path) -> Worklist:
    p = Path(path)
    try:
        text = p.read_text("utf-8-sig")  # Excel writes a BOM
    except FileNotFoundError:
        raise WorklistError(f"{p}: no such worklist file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorklistError(f"{p}: cannot be read ({exc})") from exc
    return parse_worklist(text, str(p))


# ---------------------------------------------------------------- file-name convention

_CONVENTION = [
    (re.compile(r"^(d(ouble)?[-_ ]?bla?n?k|dbl)$", re.I), SampleType.DOUBLE_BLANK),
    (re.compile(r"^(blank|blk)\d*$", re.I), SampleType.BLANK),
    (re.compile(r"^zero\d*$", re.I), SampleType.ZERO),
    (re.compile(r"^(cal|std)[-_ ]?(\d{1,2})([-_ ]?[a-z])?$", re.I), SampleType.CALIBRATOR),
    (re.compile(r"^qc[-_ ]?(l|m|h|low|mid|high)(\d*)([-_ ]?[a-z])?$", re.I), SampleType.QC),
]
_QC_NAMES = {"l": "QC-L", "low": "QC-L", "m": "QC-M", "mid": "QC-M", "h": "QC-H", "high": "QC-H"}


def sample_from_name(name: str | Path, assay: Assay) -> Sample:
    """Guess what an injection is from its file name (documented in the README).

    The name is split on ``_`` and spaces; a leading sequence number is
    ignored; the first token that matches the convention decides. ``CAL03``
    takes its nominal from the assay's ``[[calibrators]]``, ``QC-L`` from its
    ``[[qc_levels]]``. Anything else is an unknown sample.
    """
    key = file_key(name)
    tokens = [t for t in re.split(r"[_ ]+", key) if t]
    joined = ["-".join(tokens[i : i + 2]) for i in range(len(tokens) - 1)]
    for token in joined + tokens:  # "double_blank" before "blank"
        for pattern, stype in _CONVENTION:
            m = pattern.match(token)
            if not m:
                continue
            level: str | None = None
            nominal: float | None = None
            if stype is SampleType.CALIBRATOR:
                level = f"CAL{int(m.group(2)):02d}"
                nominal = assay.nominal(level)
            elif stype is SampleType.QC:
                level = _QC_NAMES[m.group(1).lower()]
                nominal = assay.nominal(level)
            return Sample(
                file=key,
                sample_id=key,
                sample_type=stype,
                level=level,
                nominal=nominal,
                in_worklist=False,
            )
    return Sample(file=key, sample_id=key, sample_type=SampleType.SAMPLE, in_worklist=False)


def resolve_sample(name: str | Path, worklist: Worklist | None, assay: Assay) -> Sample:
    """The worklist row for a file, else the file-name convention (``in_worklist`` False)."""
    if worklist is not None:
        found = worklist.lookup(name)
        if found is not None:
            if found.nominal is None and found.level:
                nominal = assay.nominal(found.level)
                if nominal is not None:
                    return replace(found, nominal=nominal)
            return found
    return sample_from_name(name, assay)
