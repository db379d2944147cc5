"""The assay: a TOML file parsed once into frozen dataclasses.

- ``limits``: the sections of sourced limits (retention, integration and its
  interference sub-table, calibration, QC limits, trace checks), each field
  with its default, its range and the rule it comes from;
- ``model``: transitions, levels, matrices, review reasons and ``Assay``;
- ``parsing``: TOML -> ``Assay``, every problem listed at once, each naming
  its key; ``load_assay`` (``None``: the shipped asparagine assay).
"""

from asnmon.assay.limits import (
    CalibrationSpec,
    Integration,
    InterferenceLimits,
    Limits,
    Retention,
    TraceLimits,
    limit_sources,
)
from asnmon.assay.model import (
    EDIT_REASONS,
    EXCLUSION_REASONS,
    REINTEGRATION_REASONS,
    Assay,
    Matrix,
    QcLevel,
    Review,
    Transition,
)
from asnmon.assay.parsing import DEFAULT_ASSAY, load_assay, parse_assay

__all__ = [
    "DEFAULT_ASSAY",
    "EDIT_REASONS",
    "EXCLUSION_REASONS",
    "REINTEGRATION_REASONS",
    "Assay",
    "CalibrationSpec",
    "Integration",
    "InterferenceLimits",
    "Limits",
    "Matrix",
    "QcLevel",
    "Retention",
    "Review",
    "TraceLimits",
    "Transition",
    "limit_sources",
    "load_assay",
    "parse_assay",
]
