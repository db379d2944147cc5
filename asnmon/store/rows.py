"""What the store hands back to its callers (frozen records), and code sets it acts on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from asnmon.records import Peak, Sample

# Codes that depend on the calibration: replaced when the run is re-quantified.
QUANT_CODES = frozenset(
    {"BLQ", "ALQ", "NO_CALIBRATION", "REF_LOW", "REF_HIGH", "QC_FAIL", "DEPLETED"}
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
