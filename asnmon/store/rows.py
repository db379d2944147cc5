"""What the store hands back to its callers (frozen records), and code sets it acts on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asnmon.names import from_db
from asnmon.records import Peak, Sample, SampleType
from asnmon.worklist import file_key

# Codes that depend on the calibration: replaced when the run is re-quantified.
QUANT_CODES = frozenset(
    {"BLQ", "ALQ", "NO_CALIBRATION", "REF_LOW", "REF_HIGH", "QC_FAIL", "DEPLETED"}
)

# An injection's sample as stored, in the order ``sample_of`` reads it.
SAMPLE_COLUMNS = (
    "file, sample_id, sample_type, position, level, nominal, matrix, dilution, normalizer, "
    "normalizer_unit, volume_ul, group_name, in_worklist"
)


def sample_of(row: Sequence[Any]) -> Sample:
    """The ``Sample`` from a row of ``SAMPLE_COLUMNS`` (the file by its key, as matched)."""
    return Sample(
        file=file_key(from_db(row[0])),
        sample_id=row[1],
        sample_type=SampleType(row[2]),
        position=row[3],
        level=row[4],
        nominal=row[5],
        matrix=row[6],
        dilution=row[7] or 1.0,
        normalizer=row[8],
        normalizer_unit=row[9],
        volume_ul=row[10],
        group=row[11],
        in_worklist=bool(row[12]),
    )


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    name: str
    folder: str | None = None
    worklist: str | None = None
    assay_name: str | None = None
    assay_unit: str | None = None
    lloq: float | None = None
    uloq: float | None = None
    planned: int | None = None


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What the single writer remembers of a file's current version."""

    injection_id: int
    version: int
    error: bool  # stored as unreadable / INCOMPLETE: a completed file is no replacement
    sha256: str
    path: str
    duplicate: bool  # same content as another file on arrival: not an independent injection


@dataclass(frozen=True, slots=True)
class StoredEntry:
    injection_id: int
    sample: Sample
    peaks: Mapping[str, Peak]
    error: bool
