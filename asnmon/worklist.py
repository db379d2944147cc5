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
import math
import re
from dataclasses import dataclass, field, replace
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
_TYPES = frozenset(t.value for t in SampleType)
_SUFFIXES = (".mzml.gz", ".mzml", ".raw", ".d", ".wiff", ".gz")


def file_key(name: str | Path) -> str:
    """The name a worklist uses for a file: its name without the data extensions."""
    base = Path(name).name
    low = base.lower()
    for suffix in _SUFFIXES:
        if low.endswith(suffix):
            return base[: -len(suffix)]
    return base


# The database stores positions as INTEGER (DuckDB: signed 32 bit); a larger one
# would fail the injection's write, so the parser refuses it with the row named.
MAX_POSITION = 2**31 - 1
_WHOLE = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "²" and "١"
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class WorklistProblem:
    """One thing wrong with a worklist, where a person can find and fix it."""

    row: int  # line of the CSV (1 is the header)
    column: str | None
    message: str
    file: str | None = None  # the row's file, when known: that file waits for a fix

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column '{self.column}'" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Worklist:
    """The good rows, and every problem found (a bad row never hides the good ones).

    A file whose row has a problem is *held*: ``lookup`` does not return it,
    ``problems_for`` says why, and it should wait until the worklist is fixed
    rather than be processed as a sample the worklist does not describe.
    """

    samples: tuple[Sample, ...]
    path: str | None = None
    problems: tuple[WorklistProblem, ...] = ()
    # Worked out once from the fields above: every file's lookup scanned the rows, and a
    # run looks up each file several times (O(rows) per file, O(rows^2) per run).
    _by_file: dict[str, Sample] = field(init=False, repr=False, compare=False)
    _held: frozenset[str] = field(init=False, repr=False, compare=False)
    _in_order: tuple[Sample, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_file: dict[str, Sample] = {}
        for s in self.samples:
            by_file.setdefault(s.file, s)  # the first row of a file, as a scan finds it
        object.__setattr__(self, "_by_file", by_file)
        object.__setattr__(
            self, "_held", frozenset(p.file for p in self.problems if p.file is not None)
        )
        order = sorted(self.samples, key=lambda s: s.position if s.position is not None else 10**9)
        object.__setattr__(self, "_in_order", tuple(order))

    @property
    def in_order(self) -> tuple[Sample, ...]:
        """The rows by position (rows without one last), ties in file order (stable)."""
        return self._in_order

    def lookup(self, name: str | Path) -> Sample | None:
        key = file_key(name)
        if key in self._held:  # its row has a problem: held until the worklist is fixed
            return None
        return self._by_file.get(key)

    def problems_for(self, name: str | Path) -> tuple[WorklistProblem, ...]:
        """What is wrong with this file's row (empty: its row is fine, or it has none)."""
        key = file_key(name)
        return tuple(p for p in self.problems if p.file == key)

    def describe_problems(self) -> str:
        """Every problem on its own line, for the terminal, a log or an alert."""
        where = self.path or "worklist"
        return f"{where}: {len(self.problems)} problem(s):\n  - " + "\n  - ".join(
            str(p) for p in self.problems
        )

    def __len__(self) -> int:
        return len(self.samples) + len({p.file for p in self.problems if p.file})


def _float(
    value: str, row: int, column: str, problems: list[WorklistProblem], *, positive: bool = False
) -> float | None:
    value = value.strip()
    if not value:
        return None
    if not _DECIMAL.fullmatch(value):
        problems.append(WorklistProblem(row, column, f"'{value}' is not a number"))
        return None
    number = float(value)
    if not math.isfinite(number):
        problems.append(WorklistProblem(row, column, f"'{value}' is too large to be a number"))
        return None
    if positive and number <= 0:
        problems.append(WorklistProblem(row, column, f"must be > 0; got {number:g}"))
        return None
    if number < 0:
        problems.append(WorklistProblem(row, column, f"must not be negative; got {number:g}"))
        return None
    return number


def _position(value: str, row: int, problems: list[WorklistProblem]) -> int | None:
    if not value:
        return None
    if not _WHOLE.fullmatch(value):
        problems.append(
            WorklistProblem(row, "position", f"'{value}' is not a whole number (1, 2, 3 ...)")
        )
        return None
    number = int(value)
    if not 1 <= number <= MAX_POSITION:
        problems.append(
            WorklistProblem(
                row, "position", f"{value} is outside 1 to {MAX_POSITION:,} (the database limit)"
            )
        )
        return None
    return number


def _header_problems(columns: list[str]) -> list[str]:
    problems = []
    for col in _REQUIRED:
        if col not in columns:
            problems.append(f"column '{col}' is missing (columns found: {', '.join(columns)})")
    for col in columns:
        if col and col not in COLUMNS:
            problems.append(f"column '{col}' is not known (known: {', '.join(COLUMNS)})")
    return problems


def parse_worklist(text: str, source: str = "worklist") -> Worklist:
    """Validate a worklist CSV: good rows, and problems naming row, column and what to fix.

    Only a header no row can be read by (empty, a required or unknown column:
    a misspelt ``dilution`` would silently dilute nothing) raises WorklistError.
    """
    reader = csv.reader(text.splitlines())
    try:
        columns = [c.strip().lower() for c in next(reader)]
    except StopIteration:
        raise WorklistError(
            f"{source}: the file is empty; expected a header row with "
            f"at least: {', '.join(_REQUIRED)}"
        ) from None
    fatal = _header_problems(columns)
    if fatal:
        raise WorklistError(f"{source}: " + "; ".join(fatal), tuple(fatal))

    samples: list[Sample] = []
    problems: list[WorklistProblem] = []
    seen: dict[str, int] = {}
    ordinal = 0
    for i, cells in enumerate(reader, start=2):  # row 1 is the header
        row = {c: v.strip() for c, v in zip(columns, cells, strict=False) if c}
        if not any(row.values()):
            continue
        ordinal += 1
        found = _parse_row(row, i, ordinal, seen)
        if isinstance(found, Sample):
            samples.append(found)
        else:
            problems.extend(found)
    return Worklist(tuple(samples), source, tuple(problems))


def _parse_row(
    row: dict[str, str], i: int, ordinal: int, seen: dict[str, int]
) -> Sample | list[WorklistProblem]:
    """One data row: its sample, or what is wrong with it (each problem names its file)."""
    problems: list[WorklistProblem] = []
    name = file_key(row.get("file", ""))
    if not name:
        return [WorklistProblem(i, "file", "empty: every row needs the file it describes")]
    if name in seen:
        return [WorklistProblem(i, "file", f"'{name}' already on row {seen[name]}", name)]
    seen[name] = i
    for column, value in row.items():
        bad = _CONTROL.search(value)
        if bad:
            problems.append(
                WorklistProblem(
                    i, column, f"holds a control character (U+{ord(bad.group()):04X}); remove it"
                )
            )
    stype = row.get("sample_type", "").lower()
    if stype not in _TYPES:
        problems.append(
            WorklistProblem(
                i, "sample_type", f"'{stype}' is not one of {', '.join(sorted(_TYPES))}"
            )
        )
    nums = {
        c: _float(
            row.get(c, ""), i, c, problems, positive=c in ("dilution", "normalizer", "volume_ul")
        )
        for c in _FLOATS
    }
    if stype in ("calibrator", "qc") and nums["nominal"] is None and not row.get("level"):
        problems.append(
            WorklistProblem(i, None, f"a {stype} needs a 'nominal' concentration or a 'level'")
        )
    position = _position(row.get("position", ""), i, problems)
    if problems:
        return [replace(p, file=name) for p in problems]
    return Sample(
        file=name,
        sample_id=row.get("sample_id") or name,
        sample_type=SampleType(stype),
        position=position if position is not None else ordinal,
        level=row.get("level") or None,
        nominal=nums["nominal"],
        matrix=row.get("matrix") or None,
        dilution=nums["dilution"] or 1.0,
        normalizer=nums["normalizer"],
        normalizer_unit=row.get("normalizer_unit") or None,
        volume_ul=nums["volume_ul"],
        group=row.get("group") or None,
    )


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


_SEQUENCE_NUMBER = re.compile(r"^[0-9]+[-_ ]+")
_REINJECTION_SUFFIX = re.compile(
    r"^([-_ ]+(r|re|rr|reinj|reinject|reinjection|rerun|repeat|rpt|inj)?[-_ ]?[0-9]{0,2})?$", re.I
)


def reinjection_of(name: str | Path, worklist: Worklist | None) -> Sample | None:
    """The worklist row a file not in the worklist re-injects, or None when unsure.

    ``081_S0012``, ``081_S0012_R``, ``S0012-reinj2`` re-inject the row whose
    sample id (or file name without its sequence number) is ``S0012``. A
    name that fits more than one row is not linked: no guess.
    """
    if worklist is None or worklist.lookup(name) is not None:
        return None
    key = _SEQUENCE_NUMBER.sub("", file_key(name)).lower()
    best: list[Sample] = []
    best_len = 1  # a one-character stem links nothing
    for s in worklist.samples:
        for stem in {s.sample_id.lower(), _SEQUENCE_NUMBER.sub("", s.file).lower()}:
            if len(stem) < best_len or not key.startswith(stem):
                continue
            if not _REINJECTION_SUFFIX.match(key[len(stem) :]):
                continue
            if len(stem) > best_len:
                best, best_len = [], len(stem)
            if s not in best:
                best.append(s)
    return best[0] if len(best) == 1 else None


def resolve_sample(name: str | Path, worklist: Worklist | None, assay: Assay) -> Sample:
    """The worklist row for a file; a re-injection as its original; else the file-name
    convention (``in_worklist`` False).

    A re-injection (``reinjection_of``) takes its original's type, level, nominal,
    matrix and dilution, under its own name and with no position: a re-injected
    ``QC-M-01`` is a QC-M in the table, the QC tally and the verdict alike (the
    convention would read it as an unknown sample), and a re-injected 1:10 dilution
    keeps its factor. Not its pairing group: the pair is the worklist's two rows.
    """
    if worklist is not None:
        found = worklist.lookup(name)
        if found is not None:
            return _with_nominal(found, assay)
        original = reinjection_of(name, worklist)
        if original is not None:
            key = file_key(name)
            return replace(
                _with_nominal(original, assay),
                file=key,
                sample_id=key,
                position=None,
                group=None,
                in_worklist=False,
            )
    return sample_from_name(name, assay)


def _with_nominal(sample: Sample, assay: Assay) -> Sample:
    if sample.nominal is None and sample.level:
        nominal = assay.nominal(sample.level)
        if nominal is not None:
            return replace(sample, nominal=nominal)
    return sample
