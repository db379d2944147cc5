"""How urgent a flag is: ``IMPACT`` of its code, its severity, and the trend that caused it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from asnmon.qc.headline.rows import FlagRow, finite

# What a code does to the run's results, most harmful first (higher = more urgent).
# Run-wide trends and the curve first: every later injection depends on them.
IMPACT: Mapping[str, int] = MappingProxyType(
    {
        "IS_DRIFT": 100,  # the IS collapses: every injection after the crossing is lost
        "CAL_FAIL": 95,  # no accepted curve: no sample has a number
        "RUN_FAIL": 90,  # the run cannot meet its acceptance rules
        "QC_FAIL": 85,
        "WESTGARD_1_3S": 82,
        "WESTGARD_R_4S": 82,
        "WESTGARD_2_2S": 80,
        "WESTGARD_4_1S": 78,
        "WESTGARD_10X": 78,
        "RT_TREND": 75,  # retention heading for its tolerance: identity at risk
        "IS_BIAS": 72,
        "NO_CALIBRATION": 70,
        "WESTGARD_1_2S": 60,
        "CARRYOVER": 58,  # the next samples' values are inflated
        "IS_LOW": 55,  # one injection's value is lost
        "IS_HIGH": 55,
        "NO_PEAK": 54,
        "RT_SHIFT": 53,
        "SATURATION": 50,
        "ION_RATIO": 48,
        "PEAK_TRUNCATED": 46,
        "COELUTION": 46,
        "BASELINE_UNCERTAIN": 46,
        "INCOMPLETE": 40,  # one file missing: re-inject it
        "READ_ERROR": 40,
        "CONVERT_ERROR": 40,
        "ALQ": 35,  # dilute and re-inject one sample
        "LOW_SN": 30,
        "FEW_POINTS": 30,
        "REF_LOW": 20,
        "REF_HIGH": 20,
    }
)
DEFAULT_IMPACT = 25
SEVERITY_RANK: Mapping[str, int] = MappingProxyType({"fail": 3, "warning": 2, "info": 1})
# Consequences a run-level trend explains: (cause code, its direction) -> codes.
CAUSED_BY: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"IS_DRIFT": ("IS_LOW", "IS_HIGH"), "RT_TREND": ("RT_SHIFT",)}
)


def impact(code: str, severity: str) -> int:
    """Rank of a flag: what its code does to the results, then its severity."""
    return 10 * IMPACT.get(code, DEFAULT_IMPACT) + SEVERITY_RANK.get(severity, 0)


def cause_of(flag: FlagRow, causes: Sequence[FlagRow]) -> FlagRow | None:
    """The run-level trend flag that explains ``flag``, or None.

    An IS_LOW (IS_HIGH) at a position inside a falling (rising) IS_DRIFT episode
    (from its ``started_at`` to its ``ended_at``, if it ended); an RT_SHIFT at or
    after an RT_TREND's ``first_seen_at`` (to its ``ended_at``).
    """
    if flag.position is None:
        return None
    for c in causes:
        if flag.code not in CAUSED_BY.get(c.code, ()):
            continue
        d = c.details
        start = finite(d.get("started_at", d.get("first_seen_at")))
        end = finite(d.get("ended_at"))
        if start is None or flag.position < start or (end is not None and flag.position > end):
            continue
        if c.code == "IS_DRIFT":
            rate = finite(d.get("rate_pct"))
            falling = rate is None or rate < 0
            if (flag.code == "IS_LOW") != falling:
                continue
        return c
    return None
