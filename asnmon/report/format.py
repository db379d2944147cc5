"""Numbers and names as a person reads them: the report's and the CSV export's one rule.

Rounding (documented in the README, "Export columns"):

* concentrations (vial, final, normalized, back-calculated) to 3 significant
  figures — an LC-MS/MS assay's precision is a few %, so a fourth figure is noise;
* peak areas and heights as whole numbers (counts);
* percentages (accuracy, IS response, deviation) to 1 decimal;
* area ratios and ion ratios to 4 significant figures (an intermediate: the
  concentration recomputed from the rounded ratio stays within 0.05 %);
* retention times to 3 decimals (min; 0.06 s, below one MRM cycle).

Values the lab typed (nominal, dilution, normalizer) are never rounded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import polars as pl

CONCENTRATIONS = ("conc_vial", "conc", "normalized_value", "back_calculated")
AREAS = ("analyte_area", "is_area", "area", "height")
PERCENTS = ("accuracy_pct", "is_pct", "deviation_pct")
RATIOS = ("area_ratio", "ion_ratio")
RTS = ("analyte_rt", "is_rt", "apex_rt", "start_rt", "end_rt")
TYPED = ("nominal", "dilution", "normalizer", "volume_ul", "lloq", "uloq")  # the lab's own values

# Column headings for people: the export keeps the documented machine names, the
# report shows these (with the unit where one applies; {unit} is the assay's).
LABELS: Mapping[str, str] = {
    "run_id": "Run",
    "position": "Pos.",
    "file": "File",
    "sample_id": "Sample",
    "sample_type": "Type",
    "level": "Level",
    "matrix": "Matrix",
    "acquired_at": "Acquired",
    "ingested_at": "Ingested",
    "analyte_area": "Analyte area",
    "is_area": "IS area",
    "is_pct": "IS response (%)",
    "area_ratio": "Area ratio",
    "analyte_rt": "RT (min)",
    "is_rt": "IS RT (min)",
    "ion_ratio": "Ion ratio",
    "conc_vial": "In vial ({unit})",
    "conc": "Result",
    "dilution": "Dilution",
    "normalized_value": "Normalized",
    "nominal": "Nominal ({unit})",
    "back_calculated": "Back-calculated ({unit})",
    "accuracy_pct": "Accuracy (%)",
    "status": "Status",
    "flags": "Flags",
    "code": "Flag",
    "severity": "Severity",
    "message": "What was found",
    "action": "What to do",
    "excluded": "Excluded",
    "reason": "Reason",
}


def label(column: str, unit: str = "µM") -> str:
    """The heading of ``column`` for people; an unknown column keeps its name, readable."""
    text = LABELS.get(column)
    if text is None:
        return column.replace("_", " ").capitalize()
    return text.replace("{unit}", unit)


def _finite(x: object) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def sig(x: object, figures: int = 3) -> str:
    """``x`` to ``figures`` significant figures, in plain notation (1230, 0.00123, 45.0)."""
    value = _finite(x)
    if value is None:
        return ""
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    places = figures - 1 - exponent  # negative: round to tens, hundreds ...
    rounded = round(value, places)
    decimals = max(places, 0)
    if decimals == 0:
        return f"{rounded:,.0f}"
    return f"{rounded:,.{decimals}f}"


def whole(x: object) -> str:
    """A count (area, height) as a whole number with thousands separators: 66,512."""
    value = _finite(x)
    return "" if value is None else f"{value:,.0f}"


def pct(x: object) -> str:
    """A percentage to one decimal: 98.7."""
    value = _finite(x)
    return "" if value is None else f"{value:.1f}"


def rt(x: object) -> str:
    value = _finite(x)
    return "" if value is None else f"{value:.3f}"


def cell(column: str, value: object) -> str:
    """One value as the report prints it, by the rounding rule of its column."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column in TYPED:
        return f"{value:g}" if isinstance(value, float) else str(value)
    if column == "flags":
        return str(value).replace(";", ", ")
    if column == "sample_type":
        return str(value).replace("_", " ")
    if column in CONCENTRATIONS:
        return sig(value, 3)
    if column in AREAS:
        return whole(value)
    if column in PERCENTS:
        return pct(value)
    if column in RATIOS:
        return sig(value, 4)
    if column in RTS:
        return rt(value)
    if isinstance(value, float):
        return sig(value, 4) if math.isfinite(value) else ""
    return str(value)


def result_text(row: Mapping[str, object], lloq: float | None, uloq: float | None) -> str:
    """The reported result of one injection in words where there is no number.

    BLQ/ALQ are never numbers (an extrapolated value is not a result); the limit
    is given in the final units, i.e. times the sample's dilution.
    """
    status = str(row.get("status") or "")
    unit = str(row.get("unit") or "")
    dilution = _finite(row.get("dilution")) or 1.0
    if status == "ok" and _finite(row.get("conc")) is not None:
        return f"{sig(row.get('conc'))} {unit}".strip()
    if status == "BLQ":
        limit = f" ({sig(lloq * dilution)} {unit})" if lloq else ""
        return f"< LLOQ{limit}"
    if status == "ALQ":
        limit = f" ({sig(uloq * dilution)} {unit})" if uloq else ""
        advice = ": dilute and re-inject" if row.get("sample_type") == "sample" else ""
        return f"> ULOQ{limit}{advice}"
    if status == "provisional":
        return "no accepted curve: not reported"
    if status == "no_peak":
        return "no peak"
    if status == "no_result":
        error = str(row.get("error") or "").strip()
        return f"no result: {error}" if error else "no result"
    if status == "ok":
        return "—"  # blanks and zeros: measured, no concentration by design
    return status or "not quantified"


def round_for_export(frame: pl.DataFrame) -> pl.DataFrame:
    """The export's rounding rule applied to the columns the frame has (see module doc)."""
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if not dtype.is_float():
            continue
        col = pl.col(name)
        finite = col.is_finite()
        if name in CONCENTRATIONS:
            exprs.append(pl.when(finite).then(col.round_sig_figs(3)).otherwise(col).alias(name))
        elif name in AREAS:
            exprs.append(pl.when(finite).then(col.round(0)).cast(pl.Int64).alias(name))
        elif name in PERCENTS:
            exprs.append(col.round(1).alias(name))
        elif name in RATIOS:
            exprs.append(pl.when(finite).then(col.round_sig_figs(4)).otherwise(col).alias(name))
        elif name in RTS:
            exprs.append(col.round(3).alias(name))
    return frame.with_columns(exprs) if exprs else frame
