"""The assay as frozen records: transitions, levels, matrices, review reasons, the whole.

The limit sections (retention, integration, calibration, limits, traces) with
their sourced defaults are in ``asnmon.assay.limits``; parsing and validation
of the TOML file in ``asnmon.assay.parsing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asnmon.assay.limits import CalibrationSpec, Integration, Limits, Retention, TraceLimits
from asnmon.errors import AssayError
from asnmon.records import Role


@dataclass(frozen=True, slots=True)
class Transition:
    id: str
    name: str
    q1: float
    q3: float | None  # None: a precursor-only XIC (full-scan MS1)
    role: Role


@dataclass(frozen=True, slots=True)
class QcLevel:
    name: str
    nominal: float


@dataclass(frozen=True, slots=True)
class Matrix:
    name: str
    ref_low: float | None = None
    ref_high: float | None = None
    depleted_below: float | None = None
    normalized_unit: str | None = None


# What a reviewer may give as the reason for a change (the lab's SOP list goes in the
# assay's [review] table). Regulated SOPs ask that every reintegration, exclusion and
# edit be justified and recorded (FDA 2018 BMV guidance; ICH M10 §3.2.5 and §5).
REINTEGRATION_REASONS: tuple[str, ...] = (
    "wrong peak picked",
    "peak split or shoulder not included",
    "neighbouring peak or interference included",
    "baseline misplaced (noise, drift)",
    "peak tail cut too early",
    "other (see comment)",
)
EXCLUSION_REASONS: tuple[str, ...] = (
    "injection error (vial, needle, air)",
    "preparation error documented in the lab book",
    "chromatography problem (peak shape, RT)",
    "other (see comment)",
)
EDIT_REASONS: tuple[str, ...] = (
    "worklist typing error",
    "vial placed in the wrong position",
    "dilution applied at the bench",
    "other (see comment)",
)


@dataclass(frozen=True, slots=True)
class Review:
    """The reason lists a reviewer chooses from ([review] in the assay file)."""

    reintegration_reasons: tuple[str, ...] = REINTEGRATION_REASONS
    exclusion_reasons: tuple[str, ...] = EXCLUSION_REASONS
    edit_reasons: tuple[str, ...] = EDIT_REASONS


@dataclass(frozen=True, slots=True)
class Assay:
    name: str
    analyte: str
    internal_standard: str
    unit: str
    polarity: str
    acquisition: str
    mz_tolerance: float
    ppm: float
    transitions: tuple[Transition, ...]
    retention: Retention
    integration: Integration
    calibration: CalibrationSpec
    qc_levels: tuple[QcLevel, ...]
    matrices: tuple[Matrix, ...]
    limits: Limits
    source_path: str | None = None
    calibrators: tuple[QcLevel, ...] = ()  # level names -> nominal, for the file-name convention
    traces: TraceLimits = field(default_factory=TraceLimits)
    review: Review = field(default_factory=Review)

    def by_role(self, role: Role) -> Transition | None:
        return next((t for t in self.transitions if t.role == role), None)

    @property
    def analyte_quant(self) -> Transition:
        t = self.by_role(Role.ANALYTE_QUANT)
        if t is None:  # parse_assay guarantees one; kept for the type checker
            raise AssayError("the assay has no analyte_quant transition")
        return t

    @property
    def is_quant(self) -> Transition | None:
        """The internal standard's quantifier; None for an external calibration."""
        return self.by_role(Role.IS_QUANT)

    @property
    def external_calibration(self) -> bool:
        """No internal standard: quantified on the analyte area, IS rules not applied."""
        return self.is_quant is None

    def matrix(self, name: str | None) -> Matrix | None:
        return next((m for m in self.matrices if m.name == name), None)

    def qc_level(self, name: str | None) -> QcLevel | None:
        return next((q for q in self.qc_levels if q.name == name), None)

    def nominal(self, level: str | None) -> float | None:
        """The nominal concentration of a QC or calibrator level (``QC-L``, ``CAL03``)."""
        found = self.qc_level(level) or next((c for c in self.calibrators if c.name == level), None)
        return found.nominal if found else None
