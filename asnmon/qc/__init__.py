"""QC rules: results and the run's history in, ``Flag``s with reasons out.

One module per group of rules (``peaks``, ``internal_standard``,
``chromatography``, ``carryover``, ``quantities``, ``run``); this package
re-exports their public functions, so callers import from ``asnmon.qc``.

Every flag says, in words a person reads at 3 a.m., what was measured, what
the limit is, where the limit comes from and what to do. Rules are pure
functions of the run's history (earlier injections, in order) and the current
injection; the pipeline decides when to run them. Because the history is
recomputed from scratch each time, every rule that must raise *once* (IS
drift, IS bias) is written so that a prefix of the run always gives the same
answer. What the rules look up in the history is kept as the run grows
(``is_reference`` for the IS reference, ``_history`` for the rest) and
answers exactly as a pass over the history would: a file costs the same at
the 2,000th injection as at the 20th.

Which rule runs where, and why:

- ``evaluate_injection`` (once, at ingestion): NO_PEAK, peak quality, the IS
  window, IS drift and bias, retention time, ion ratio, carryover -- none of
  these depends on the curve, so they are never recomputed.
- ``evaluate_range`` (at ingestion and again on every re-quantification):
  only the codes in ``store.QUANT_CODES`` (BLQ, ALQ, NO_CALIBRATION, REF_LOW,
  REF_HIGH, QC_FAIL, DEPLETED), because the store replaces exactly those.
- ``evaluate_calibration``: CAL_FAIL (run level, replaced per curve version).
- ``evaluate_run``: the verdict and RUN_FAIL, recomputed after every change.

Limits come from ``assay.limits`` (sourced defaults in ``asnmon/assay/limits.py``).
"""

from __future__ import annotations

from asnmon.qc._base import (
    CALIBRATION_CODES,
    IS_BEARING,
    NEW_CODES,
    RUN_LEVEL_CODES,
    SRC_BIAS,
    SRC_DRIFT,
    SRC_IS,
    drift_settings,
    error_flag,
)
from asnmon.qc.carryover import evaluate_carryover
from asnmon.qc.chromatography import evaluate_ion_ratio, evaluate_retention
from asnmon.qc.internal_standard import (
    drift_episodes,
    drift_forecast,
    evaluate_is,
    is_drift_flag,
)
from asnmon.qc.is_reference import IsContext, is_context
from asnmon.qc.peaks import evaluate_peak_quality, evaluate_peaks
from asnmon.qc.quantities import evaluate_calibration, evaluate_range, qc_tolerance
from asnmon.qc.retention_trend import (
    RtTrend,
    evaluate_rt_trend,
    rt_points,
    rt_trend_at,
    rt_trend_ended_flag,
    rt_trend_flag,
    rt_trend_raised_at,
)
from asnmon.qc.run import (
    QcTally,
    RunEvaluation,
    evaluate_injection,
    evaluate_run,
    external_calibration_flags,
    history_point,
    qc_level,
    qc_tally,
)

__all__ = [
    "CALIBRATION_CODES",
    "IS_BEARING",
    "NEW_CODES",
    "RUN_LEVEL_CODES",
    "SRC_BIAS",
    "SRC_DRIFT",
    "SRC_IS",
    "IsContext",
    "QcTally",
    "RtTrend",
    "RunEvaluation",
    "drift_episodes",
    "drift_forecast",
    "drift_settings",
    "error_flag",
    "evaluate_calibration",
    "evaluate_carryover",
    "evaluate_injection",
    "evaluate_ion_ratio",
    "evaluate_is",
    "evaluate_peak_quality",
    "evaluate_peaks",
    "evaluate_range",
    "evaluate_retention",
    "evaluate_rt_trend",
    "evaluate_run",
    "external_calibration_flags",
    "history_point",
    "is_context",
    "is_drift_flag",
    "qc_level",
    "qc_tally",
    "qc_tolerance",
    "rt_points",
    "rt_trend_at",
    "rt_trend_ended_flag",
    "rt_trend_flag",
    "rt_trend_raised_at",
]
