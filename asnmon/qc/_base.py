"""What every QC rule shares: limits with defaults, flag building, wording."""

from __future__ import annotations

from asnmon.assay import Assay
from asnmon.drift import DriftSettings
from asnmon.errors import AsnmonError
from asnmon.records import Flag, HistoryPoint, SampleType
from asnmon.records import Severity as S

_QUANTIFIED = (SampleType.CALIBRATOR, SampleType.QC, SampleType.SAMPLE)
IS_BEARING = (SampleType.ZERO, SampleType.CALIBRATOR, SampleType.QC, SampleType.SAMPLE)
_BLANKS_NO_IS = (SampleType.BLANK, SampleType.DOUBLE_BLANK)  # ICH M10: no IS added
_REL = 1e-9
_FRACTION_TOL = 1e-3  # "2/3" is written 0.667 in the TOML: 2 of 3 must still pass

SRC_IS = "lab convention 50-150 % of the cal/QC mean; FDA 2019 IS Q&A"
SRC_DRIFT = "FDA 2019 IS Q&A (gradual drift); CUSUM k = 0.5, h = 5 SD as in Panorama"
SRC_BIAS = "FDA 2019 IS Q&A (sample IS consistently higher/lower than cal/QC)"

# New flag codes this module adds to the contract (ARCHITECTURE.md table).
NEW_CODES = frozenset(
    {
        "IS_NO_REFERENCE",
        "RT_TREND",
        "IS_BIAS",
        "FEW_POINTS",
        "PEAK_TRUNCATED",  # was TRUNCATED_PEAK: renamed when group integration added details
        "COELUTION",
        "INTERFERENCE",  # a second peak on an analyte trace inside the group (issue 10)
        "BASELINE_UNCERTAIN",  # analyte and IS baselines disagree (issue 10)
        "DEPLETED",
        "CAL_EXCLUDED",
        "EXTERNAL_CALIBRATION",
        "TRACE_INVALID",
        "WINDOW_NOT_COVERED",
    }
)
# Run-level codes the pipeline replaces wholesale after every evaluation.
RUN_LEVEL_CODES = frozenset({"RUN_FAIL"})
# Run-level codes of a curve version; pass ``report_exclusions=True`` once the pipeline
# replaces all of these (not only CAL_FAIL) after each refit.
CALIBRATION_CODES = frozenset({"CAL_FAIL", "CAL_EXCLUDED"})


def drift_settings(assay: Assay) -> DriftSettings:
    return DriftSettings(
        k=assay.limits.cusum_k,
        h=assay.limits.cusum_h,
        baseline_n=assay.limits.is_drift_baseline_n,
        min_cv=assay.limits.is_drift_min_cv_pct / 100.0,
        clip=assay.limits.is_drift_clip_sd,
        slope_window=assay.limits.is_drift_slope_window,
        min_rate_pct=assay.limits.is_drift_min_rate_pct,
    )


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _flag(
    code: str,
    severity: S,
    message: str,
    action: str,
    value: float | None = None,
    limit: float | None = None,
    source: str = "",
    **details: object,
) -> Flag:
    return Flag(code, severity, message, action, value, limit, source, details)


def _who(p: HistoryPoint) -> str:
    """The injection as the table shows it: its acquisition position and sample."""
    if p.in_worklist:
        return f"injection {p.order} ({p.sample_id})"
    link = f", re-injection of position {p.reinjection_of}" if p.reinjection_of else ""
    return f"{p.sample_id} (not in the worklist{link}; acquired after injection {p.order})"


def error_flag(error: AsnmonError) -> Flag:
    """READ_ERROR / CONVERT_ERROR / INCOMPLETE from an error the pipeline caught."""
    actions = {
        "READ_ERROR": "Check the file (re-export or re-convert it); the run goes on without it.",
        "CONVERT_ERROR": "Check the converter command and the raw file; convert it by hand.",
    }
    return Flag(
        code=error.code,
        severity=S.FAIL,
        message=str(error),
        action=actions.get(error.code, "Check the file."),
        details={"error": type(error).__name__},
    )
