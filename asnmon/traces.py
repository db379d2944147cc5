"""Trace sanity before integration: a trace that cannot be judged is a fail, never "no peak".

Integration assumes a trace whose times increase, whose values are finite and
which was acquired where the assay looks. When one of these fails, what comes
out of integration is not a small or absent peak but nonsense: reversed times
give negative areas, shuffled (time, intensity) pairs give areas ten times too
large, and a trace acquired at the wrong time (a wrongly set scheduled MRM
window, a file that stops early) has no peak *because it was not measured*,
which would otherwise be reported as "below the LLOQ" and, in plasma, as
asparaginase depletion.

``check_traces`` runs on the matched injection, before integration:

- **TRACE_INVALID**: fewer than ``MIN_POINTS`` points (an empty trace); times
  not strictly increasing (reversed, shuffled, one time moved back); a NaN or
  infinite time or intensity; a median point spacing above
  ``traces.max_point_spacing_s`` or a span above ``traces.max_span_min`` (a
  time axis in seconds labelled minutes is 60 times too wide and too sparse).
- **WINDOW_NOT_COVERED**: a quantifier's trace was not acquired at the expected
  retention time (the trace is not where the assay looks), or a qualifier's
  misses the search window altogether.

A trace that covers the expected RT but only part of the search window is
integrated on what was acquired (``TraceCheck.partial``); ``coverage_flags``
then raises WINDOW_NOT_COVERED where a quantifier shows *no* peak and the trace
does not cover ``retention.analyte_window`` around the IS apex (or the expected
RT), or shows a peak cut near its top by the acquisition's edge: the peak may
lie in the part that was not acquired. A peak cut in its tail is left to
integration's truncation checks.

A quantifier's trace (analyte or IS) failing either check is a **fail** and the
injection gives no result; a qualifier's or neighbour's is a **warning** and
that trace is left out (its ion ratio cannot be judged).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from asnmon.assay import Assay, TraceLimits, Transition
from asnmon.integrate.noise import median
from asnmon.integrate.small import diff, nonzero
from asnmon.records import Chromatogram, Flag, Injection, Peak, Role, Severity

MIN_POINTS = 3  # fewer cannot hold a baseline and a peak: nothing can be said from them
QUANTIFIERS = (Role.ANALYTE_QUANT, Role.IS_QUANT)
_add = np.add.reduce
SRC_TRACE = "trace sanity (asnmon): integration needs increasing, finite, covering times"
_ACT_CORRUPT = (
    "Re-convert the raw file (msconvert) and ingest it again; if the problem stays, "
    "report it to the instrument or converter vendor."
)
_ACT_UNIT = (
    "Check the time unit the converter writes (seconds vs minutes) and re-convert; the "
    "file's own unit label is wrong."
)
_ACT_WINDOW = (
    "Check the scheduled MRM window of this transition in the acquisition method and "
    "[retention] expected_rt in the assay; re-inject with a window that covers the peak."
)


@dataclass(frozen=True, slots=True)
class TraceCheck:
    """What the checks found: flags, traces not to integrate, windows only partly acquired."""

    flags: tuple[Flag, ...] = ()
    unusable: frozenset[str] = frozenset()  # transition ids whose trace is left out
    # transition id -> (acquired start, acquired end) where the search window is cut
    partial: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """A quantifier's trace cannot be used: the injection gives no result."""
        return any(f.severity is Severity.FAIL for f in self.flags)


def search_window(assay: Assay) -> tuple[float, float]:
    """Where the assay looks for its first peak (the IS, or the analyte without one)."""
    ret = assay.retention
    return ret.expected_rt - ret.window, ret.expected_rt + ret.window


def _flag(
    code: str,
    t: Transition,
    message: str,
    action: str,
    value: float | None = None,
    limit: float | None = None,
    **details: object,
) -> Flag:
    quant = t.role in QUANTIFIERS
    consequence = (
        " No result is reported from this injection."
        if quant
        else " This trace is left out (its ion ratio is not judged)."
    )
    return Flag(
        code=code,
        severity=Severity.FAIL if quant else Severity.WARNING,
        message=f"{t.name} ({t.id}): {message}{consequence}",
        action=action,
        value=value,
        limit=limit,
        source=SRC_TRACE if code == "TRACE_INVALID" else "assay [retention] search window",
        details={"transition": t.id, **details},
    )


def _invalid(tr: Chromatogram, t: Transition, limits: TraceLimits) -> Flag | None:
    """TRACE_INVALID for the first thing wrong with a trace's arrays, or None."""
    rt, y = tr.rt, tr.intensity
    n = rt.size
    if n < MIN_POINTS:
        return _flag(
            "TRACE_INVALID",
            t,
            f"the trace holds {n} point(s) (at least {MIN_POINTS} needed): nothing was "
            "acquired, so neither a peak nor its absence can be reported.",
            "Check that the method acquires this transition and that the converter wrote it; "
            "re-convert or re-inject.",
            float(n),
            float(MIN_POINTS),
            problem="empty",
        )
    # a sum is finite only if every term is (NaN and inf propagate): counted only if not
    finite = math.isfinite(float(_add(rt))) and math.isfinite(float(_add(y)))
    bad = (
        0 if finite else int(np.count_nonzero(~np.isfinite(rt)) + np.count_nonzero(~np.isfinite(y)))
    )
    if bad:
        return _flag(
            "TRACE_INVALID",
            t,
            f"{bad} of its {2 * n} time and intensity values are NaN or infinite.",
            _ACT_CORRUPT,
            float(bad),
            0.0,
            problem="not_finite",
        )
    steps = diff(rt)
    back = nonzero(steps <= 0.0)
    if back.size:
        i = int(back[0])
        return _flag(
            "TRACE_INVALID",
            t,
            f"its times do not strictly increase: {back.size} of {n - 1} steps go backwards "
            f"or repeat, the first at point {i + 1} ({rt[i]:.3f} -> {rt[i + 1]:.3f} min). "
            "Reversed or shuffled times make integration meaningless (negative or inflated "
            "areas).",
            _ACT_CORRUPT,
            float(back.size),
            0.0,
            problem="not_increasing",
            first_at=i + 1,
        )
    spacing_s = median(steps) * 60.0  # np.median's value, without its ~15 us of overhead
    if spacing_s > limits.max_point_spacing_s:
        return _flag(
            "TRACE_INVALID",
            t,
            f"one point every {spacing_s:.1f} s (median) over {rt[0]:.2f}-{rt[-1]:.2f} min, "
            f"sparser than any chromatographic peak allows (limit "
            f"{limits.max_point_spacing_s:g} s). Times written in seconds but labelled "
            "minutes look exactly like this (60 times too sparse).",
            _ACT_UNIT,
            spacing_s,
            limits.max_point_spacing_s,
            problem="too_sparse",
        )
    span = float(rt[-1] - rt[0])
    if span > limits.max_span_min:
        return _flag(
            "TRACE_INVALID",
            t,
            f"the trace spans {span:,.0f} min ({rt[0]:.2f}-{rt[-1]:.2f}), more than "
            f"{limits.max_span_min:g} min: times written in seconds but labelled minutes?",
            _ACT_UNIT,
            span,
            limits.max_span_min,
            problem="too_long",
        )
    return None


def check_traces(injection: Injection, assay: Assay) -> TraceCheck:
    """Every assay trace the injection holds, checked before anything integrates it."""
    lo, hi = search_window(assay)
    expected = assay.retention.expected_rt
    flags: list[Flag] = []
    unusable: set[str] = set()
    partial: dict[str, tuple[float, float]] = {}
    for t in assay.transitions:
        tr = injection.traces.get(t.id)
        if tr is None:  # missing traces are the reader's (quantifiers) or the notes' business
            continue
        problem = _invalid(tr, t, assay.traces)
        if problem is not None:
            flags.append(problem)
            unusable.add(t.id)
            continue
        first, last = float(tr.rt[0]), float(tr.rt[-1])
        if t.role is Role.OTHER:  # neighbours elute elsewhere: only their arrays are checked
            continue
        # a qualifier's scheduled window may open late (on the peak's rise): integration
        # judges its truncation; only a window that misses the search window is useless
        missed = not first <= expected <= last if t.role in QUANTIFIERS else last < lo or first > hi
        if missed:
            flags.append(
                _flag(
                    "WINDOW_NOT_COVERED",
                    t,
                    f"acquired {first:.2f}-{last:.2f} min, but the peak is expected at "
                    f"{expected:.2f} min (searched {lo:.2f}-{hi:.2f} min): the trace was not "
                    "acquired where the assay looks, so neither a peak nor its absence can "
                    "be reported.",
                    _ACT_WINDOW,
                    _covered_pct(first, last, lo, hi),
                    100.0,
                    acquired=(first, last),
                    window=(lo, hi),
                )
            )
            unusable.add(t.id)
        elif first > lo or last < hi:
            partial[t.id] = (first, last)
    return TraceCheck(tuple(flags), frozenset(unusable), partial)


def _covered_pct(first: float, last: float, lo: float, hi: float) -> float:
    return 100.0 * max(0.0, min(last, hi) - max(first, lo)) / (hi - lo) if hi > lo else 0.0


def _needed(t: Transition, peaks: Mapping[str, Peak | None], assay: Assay) -> tuple[float, float]:
    """The interval that must be acquired before "no peak" means "not there".

    ``retention.analyte_window`` around the IS apex (the analyte co-elutes with it),
    or around the expected RT without one. Not the whole search window: scheduled
    MRM windows are routinely narrower than the search tolerance, and demanding it
    would fail every blank of such a method.
    """
    is_t = assay.is_quant
    anchor = peaks.get(is_t.id) if is_t is not None and t.id != is_t.id else None
    centre = anchor.apex_rt if anchor is not None else assay.retention.expected_rt
    w = assay.retention.analyte_window
    return centre - w, centre + w


def _cut_fraction(p: Peak, tr: Chromatogram, first: float, last: float) -> float | None:
    """Signal left at the acquisition's edge as a fraction of the apex; None if not cut."""
    if p.end_rt >= last and tr.rt.size:
        left, base = float(tr.intensity[-1]), p.baseline_end
    elif p.start_rt <= first and tr.rt.size:
        left, base = float(tr.intensity[0]), p.baseline_start
    else:
        return None
    return (left - base) / p.height if p.height > 0 else 1.0


def coverage_flags(
    check: TraceCheck, injection: Injection, peaks: Mapping[str, Peak | None], assay: Assay
) -> tuple[Flag, ...]:
    """WINDOW_NOT_COVERED for a partly acquired quantifier trace that cannot say "absent".

    That is: no peak at all, or a peak cut by the edge of the acquisition while
    still at >= ``traces.cut_apex_fraction`` of its apex (its top was not
    acquired, so its area is an unknown part of the whole). A peak cut lower down,
    in its tail, gives a number and is left to integration's truncation flag. The
    rule does not look at the result, so a later curve version cannot change it.
    """
    flags: list[Flag] = []
    limit = assay.traces.cut_apex_fraction
    for t in assay.transitions:
        tr = injection.traces.get(t.id)
        if t.id not in check.partial or t.role not in QUANTIFIERS or tr is None:
            continue
        first, last = check.partial[t.id]
        lo, hi = _needed(t, peaks, assay)
        if first <= lo and last >= hi:
            continue  # the part that matters was acquired: "no peak" stands
        p = peaks.get(t.id)
        frac = _cut_fraction(p, tr, first, last) if p is not None else None
        if p is not None and (frac is None or frac < limit):
            continue
        what = (
            "no peak"
            if p is None or frac is None
            else f"a peak cut off at {100 * frac:.0f} % of its apex (apex {p.apex_rt:.2f} min; "
            f"limit {100 * limit:.0f} %)"
        )
        pct = _covered_pct(first, last, lo, hi)
        flags.append(
            _flag(
                "WINDOW_NOT_COVERED",
                t,
                f"{what} in the acquired {first:.2f}-{last:.2f} min, but only {pct:.0f} % of "
                f"the search window {lo:.2f}-{hi:.2f} min was acquired: the peak may lie in "
                "the part that was not, so neither its area nor its absence can be reported.",
                _ACT_WINDOW,
                pct,
                100.0,
                acquired=(first, last),
                window=(lo, hi),
                cut_fraction=frac,
            )
        )
    return tuple(flags)
