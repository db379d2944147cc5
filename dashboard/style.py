"""The one place that says how a severity, a verdict or a sample type looks.

Colours are Okabe-Ito (safe for the common colour-vision deficiencies) and
never carry meaning alone: every state also has an icon and a word, so a
scientist across the room reads "FAIL" even on a washed-out lab monitor.
"""

from __future__ import annotations

from dataclasses import dataclass

# Okabe & Ito (2008), "Color Universal Design".
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILION = "#D55E00"
PURPLE = "#CC79A7"
BLACK = "#000000"
GREY = "#6B6B6B"
INK = "#111111"
PAPER = "#FFFFFF"


@dataclass(frozen=True, slots=True)
class Look:
    """Colour (background), text colour on it, icon and word for one state."""

    colour: str
    text: str
    icon: str
    word: str


SEVERITY: dict[str, Look] = {
    "fail": Look(VERMILION, PAPER, "✖", "FAIL"),
    "warning": Look(ORANGE, INK, "▲", "WARNING"),
    "info": Look(SKY, INK, "ℹ", "INFO"),
}
VERDICT: dict[str, Look] = {
    "pass": Look(GREEN, PAPER, "✔", "PASS"),
    "at risk": Look(ORANGE, INK, "▲", "AT RISK"),
    "fail": Look(VERMILION, PAPER, "✖", "FAIL"),
    "pending": Look(GREY, PAPER, "…", "PENDING"),
}
SEVERITY_RANK = {"fail": 3, "warning": 2, "info": 1}


def severity(name: str | None) -> Look:
    return SEVERITY.get((name or "").lower(), SEVERITY["info"])


def verdict(name: str | None) -> Look:
    return VERDICT.get((name or "").lower(), VERDICT["pending"])


# Sample types: colour *and* marker symbol, in a fixed order (extendData appends
# to traces by index, so every run figure has one trace per type in this order).
SAMPLE_TYPES: tuple[tuple[str, str, str, str], ...] = (
    # (type, label, colour, plotly marker symbol)
    ("calibrator", "Calibrator", BLUE, "square"),
    ("qc", "QC", VERMILION, "diamond"),
    ("sample", "Sample", BLACK, "circle"),
    ("zero", "Zero", PURPLE, "triangle-up"),
    ("blank", "Blank", SKY, "x-thin-open"),
    ("double_blank", "Double blank", SKY, "cross-thin-open"),
)
TYPE_ORDER = {t: i for i, (t, *_rest) in enumerate(SAMPLE_TYPES)}

# Chromatogram roles: the analyte's two transitions and the IS.
ROLE_LOOK = {
    "analyte_quant": ("Asn quantifier", BLUE),
    "analyte_qual": ("Asn qualifier", ORANGE),
    "is_quant": ("IS quantifier", GREEN),
}

BAND_FILL = "rgba(0, 158, 115, 0.12)"  # acceptance window (IS 50-150 %, reference interval)
LIMIT_LINE = GREY
FONT = "Inter, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
