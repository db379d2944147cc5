"""The values that flow between pipeline stages.

All frozen: a stage takes records and returns new ones, so a record seen by
the dashboard is the record that was stored. Array fields are made read-only
on construction (``frozen_array``) because a frozen dataclass alone would still
let ``trace.intensity[0] = 0`` through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


_F64 = np.dtype(np.float64)


def frozen_array(values: npt.ArrayLike) -> FloatArray:
    """A float64 copy that cannot be written to.

    An array that already is one over a ``bytes`` object of its own size (what the
    reader decodes: ``np.frombuffer``) is taken as it is: bytes never change, and such an
    array cannot be made writable again, so a copy would add nothing but time.
    """
    if (
        type(values) is np.ndarray
        and type(values.base) is bytes
        and values.dtype == _F64
        and not values.flags.writeable
        and values.flags.c_contiguous
        and len(values.base) == values.nbytes
    ):
        return values
    arr = np.array(values, dtype=np.float64, copy=True)
    arr.setflags(write=False)
    return arr


class Role(StrEnum):
    ANALYTE_QUANT = "analyte_quant"
    ANALYTE_QUAL = "analyte_qual"
    IS_QUANT = "is_quant"
    IS_QUAL = "is_qual"
    OTHER = "other"  # a neighbour kept for information (ornithine, aspartate)


class SampleType(StrEnum):
    DOUBLE_BLANK = "double_blank"
    BLANK = "blank"
    ZERO = "zero"
    CALIBRATOR = "calibrator"
    QC = "qc"
    SAMPLE = "sample"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    FAIL = "fail"


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class Chromatogram:
    """One trace: retention time in **minutes**, whatever the file used."""

    id: str
    index: int
    rt: FloatArray
    intensity: FloatArray
    q1: float | None = None
    q3: float | None = None
    polarity: str | None = None  # "positive" | "negative" | None (not stated)
    kind: str = "srm"  # "srm" | "sim" | "tic" | "xic_ms1" | "xic_ms2" | "other"

    def __post_init__(self) -> None:
        object.__setattr__(self, "rt", frozen_array(self.rt))
        object.__setattr__(self, "intensity", frozen_array(self.intensity))


@dataclass(frozen=True, slots=True)
class RunMeta:
    run_id: str | None = None
    started_at: str | None = None  # ISO 8601 as the file states it
    instrument: str | None = None
    polarity: str | None = None  # majority polarity of the traces used
    mzml_version: str | None = None


@dataclass(frozen=True, slots=True)
class RawFile:
    """Everything the reader found in a file, before the assay is applied."""

    path: Path
    meta: RunMeta
    chromatograms: tuple[Chromatogram, ...]
    n_spectra: int = 0


@dataclass(frozen=True, slots=True)
class Injection:
    """A file matched to the assay: one trace per assay transition found."""

    path: Path
    sha256: str
    meta: RunMeta
    traces: Mapping[str, Chromatogram]  # transition id -> trace
    notes: tuple[str, ...] = ()  # e.g. which duplicate Q1/Q3 was taken and why

    def __post_init__(self) -> None:
        object.__setattr__(self, "traces", MappingProxyType(dict(self.traces)))


# ---------------------------------------------------------------- integrating


@dataclass(frozen=True, slots=True)
class BaselineDoubt:
    """A member's baseline against its reference's (integrate.baseline): do they agree?

    ``offset_pct``: the constant left when the member is fitted as its
    reference's profile scaled, times the width, as % of the member's area --
    what the area ratio is off by if one of the two baselines is misplaced.
    """

    offset_pct: float  # signed
    t: float  # |offset| / its standard error
    reference: str  # transition id it was fitted on
    profile_ratio: float = float("nan")  # the fitted scale (member / reference heights)


@dataclass(frozen=True, slots=True)
class Interference:
    """An interferent seen on one member inside the shared boundaries (integrate.interference)."""

    side: str  # "left" | "right" of the group apex
    apex_rt: float  # min, the interferent's apex (of the excess)
    cut_rt: float  # min, the valley the member was integrated to
    separated: bool  # the member's area comes from the clean interval, scaled
    clean_share: float  # the reference's share of its peak inside the clean interval
    excess_pct: float  # % of the member's (clean) area the interferent added in the bounds
    excess_sn: float  # the excess peak's height in noise SDs
    kind: str = "valley"  # "valley": split at a valley; "tail": an earlier peak's tail skimmed


@dataclass(frozen=True, slots=True)
class Peak:
    transition: str
    apex_rt: float
    start_rt: float
    end_rt: float
    area: float  # above the straight baseline, intensity x minutes
    height: float  # apex above baseline
    baseline_start: float  # baseline intensity at start_rt
    baseline_end: float
    fwhm: float | None
    sn: float | None  # height / noise (noise: MAD of the signal outside the peak)
    points: int  # data points between the boundaries
    saturated: bool = False
    truncated: bool = False  # the integration ends before the signal is back at baseline
    # --- group integration (not stored: judged once, at ingestion, into flags)
    cut_side: str | None = None  # "left" | "right" | "both": where the integration was cut
    cut_pct: float | None = None  # signal at the cut, % of the apex above the baseline
    cut_rt: float | None = None  # where (min); the larger cut when both sides are cut
    acquisition_cut: bool = False  # this trace's own acquisition window ends there
    apex_offset: float | None = None  # min, this trace's apex minus the group reference's
    shape_r: float | None = None  # profile correlation with the group reference
    reference: str | None = None  # transition id the shape was compared with
    interference: Interference | None = None  # a second peak inside the bounds on this trace
    baseline_doubt: BaselineDoubt | None = None  # a baseline the area cannot be stood behind


@dataclass(frozen=True, slots=True)
class Truncation:
    """A trace whose acquisition window ends while its peak is still above baseline."""

    transition: str
    side: str  # "left" | "right"
    rt: float  # min, where the acquisition stops
    pct_of_apex: float  # signal there as % of the apex height above the baseline


@dataclass(frozen=True, slots=True)
class PeakGroup:
    """One analyte's transitions and its internal standard's, found and bounded together.

    Keyed by ``analyte`` so that a panel (Asn with Asp, Gln, Glu, each with its
    own IS) is a tuple of groups. ``start_rt``/``end_rt`` are the shared
    boundaries: every member is integrated between them (clipped to its own
    acquisition), each above its own baseline. ``common`` is the interval that
    analyte and IS quantifiers were both acquired over: boundaries never leave
    it, so a scheduled window that cuts one trace cuts the other alike.
    """

    analyte: str
    reference: str | None  # transition whose apex anchors the group (IS quantifier)
    mode: str  # "group" | "per_transition"
    apex_rt: float | None
    start_rt: float | None
    end_rt: float | None
    common: tuple[float, float] | None
    peaks: Mapping[str, Peak | None]
    truncations: tuple[Truncation, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "peaks", MappingProxyType(dict(self.peaks)))


# ---------------------------------------------------------------- worklist


@dataclass(frozen=True, slots=True)
class Sample:
    """One worklist row: what an injection is meant to be."""

    file: str  # file stem as the worklist names it
    sample_id: str
    sample_type: SampleType
    position: int | None = None
    level: str | None = None  # "CAL03", "QC-L", ...
    nominal: float | None = None  # nominal concentration (calibrators, QCs)
    matrix: str | None = None
    dilution: float = 1.0
    normalizer: float | None = None  # mg protein, or 10^6 cells
    normalizer_unit: str | None = None  # "mg protein" | "1e6 cells"
    volume_ul: float | None = None  # extract volume the normalizer refers to (lysates)
    group: str | None = None  # pairs the media and lysate of one culture
    in_worklist: bool = True  # False: named by the file-name convention or unknown


# ---------------------------------------------------------------- calibrating


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    sample_id: str
    level: str | None
    nominal: float
    area_ratio: float  # the response: area ratio, or analyte area without an IS
    back_calculated: float | None = None
    accuracy_pct: float | None = None
    excluded: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Calibration:
    """A fitted curve: ratio = c0 + c1*x + c2*x^2 (c2 = 0 when linear)."""

    version: int
    model: str  # "linear" | "quadratic"
    weighting: str  # "1/x^2" | "1/x" | "none"
    coefficients: tuple[float, float, float]
    r2: float
    points: tuple[CalibrationPoint, ...]
    accepted: bool
    reason: str  # why accepted or rejected, in words
    lloq: float
    uloq: float
    zero_intercept: bool = False
    carried_over_from: str | None = None


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Result:
    status: str  # "ok" | "BLQ" | "ALQ" | "provisional" | "no_peak" | "no_result"
    area_ratio: float | None = None
    conc_vial: float | None = None
    conc: float | None = None  # x dilution
    unit: str | None = None
    normalized_value: float | None = None
    normalized_unit: str | None = None
    accuracy_pct: float | None = None  # calibrators and QCs
    calibration_version: int | None = None
    # what the curve is on: the area ratio, or the analyte area (external calibration);
    # derived from the peaks, so not stored; defaults to the area ratio
    response: float | None = None

    def __post_init__(self) -> None:
        if self.response is None and self.area_ratio is not None:
            object.__setattr__(self, "response", self.area_ratio)


@dataclass(frozen=True, slots=True)
class Flag:
    code: str
    severity: Severity
    message: str  # plain language: what is wrong, with numbers
    action: str = ""  # what to do about it
    value: float | None = None
    limit: float | None = None
    source: str = ""  # where the rule and its default come from
    details: Mapping[str, object] = field(default_factory=dict)


# ---------------------------------------------------------------- one file's outcome


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing one file produced: stored in one transaction.

    ``error`` is set (and ``peaks`` empty) when the file could not be read, or a
    quantifier's trace could not be judged; the failure is then data like any
    other, with its READ_ERROR/CONVERT_ERROR or TRACE_INVALID/WINDOW_NOT_COVERED flag.
    """

    path: Path
    sha256: str
    sample: Sample
    result: Result
    flags: tuple[Flag, ...] = ()
    meta: RunMeta = field(default_factory=RunMeta)
    peaks: Mapping[str, Peak | None] = field(default_factory=dict)
    roles: Mapping[str, str] = field(default_factory=dict)  # transition id -> Role value
    traces: Mapping[str, Chromatogram] = field(default_factory=dict)  # windows kept for review
    notes: tuple[str, ...] = ()
    error: str | None = None
    acquired_order: float = 0.0  # file mtime, orders injections without a worklist
    is_pct: float | None = None  # IS as % of the run's reference when it arrived (QC rule)


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """What the QC rules need to remember of an earlier injection of the run."""

    injection_id: int
    # Acquisition position, the number the injection table shows: the worklist
    # position; an injection not in the worklist takes the position of the one
    # acquired before it; without a worklist, the arrival order (1-based).
    order: int
    sample_id: str
    sample_type: SampleType
    level: str | None = None
    nominal: float | None = None
    analyte_area: float | None = None
    is_area: float | None = None
    analyte_rt: float | None = None
    is_rt: float | None = None
    ion_ratio: float | None = None  # analyte qualifier / quantifier area
    area_ratio: float | None = None
    conc_vial: float | None = None
    accuracy_pct: float | None = None
    status: str | None = None
    error: bool = False
    in_worklist: bool = True
    reinjection_of: int | None = None  # worklist position of the sample it re-injects
