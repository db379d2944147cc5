"""One file through every stage: read -> integrate -> quantify -> flag.

The pure part of the pipeline, against the run's current curve; no store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from asnmon.assay import Assay
from asnmon.errors import ReadError
from asnmon.integrate import integrate_injection
from asnmon.mzml import DEFAULT_LIMITS, ReadLimits, read_injection
from asnmon.qc import (
    error_flag,
    evaluate_injection,
)
from asnmon.quantify import quantify
from asnmon.records import (
    Calibration,
    Chromatogram,
    Flag,
    HistoryPoint,
    Injection,
    Outcome,
    Result,
    Sample,
    Severity,
)
from asnmon.traces import TraceCheck, check_traces, coverage_flags, search_window

TRACE_MARGIN = 0.3  # min kept beyond the search window, so a reviewer sees the baseline


def _trace_windows(traces: Mapping[str, Chromatogram], assay: Assay) -> dict[str, Chromatogram]:
    """The part of each trace a reviewer needs: the RT window and some baseline."""
    lo = assay.retention.expected_rt - assay.retention.window - TRACE_MARGIN
    hi = assay.retention.expected_rt + assay.retention.window + TRACE_MARGIN
    out = {}
    for tid, tr in traces.items():
        keep = (tr.rt >= lo) & (tr.rt <= hi)
        if keep.all():  # a scheduled window inside the margin: the trace itself (immutable)
            out[tid] = tr
            continue
        out[tid] = Chromatogram(
            id=tr.id,
            index=tr.index,
            rt=tr.rt[keep],
            intensity=tr.intensity[keep],
            q1=tr.q1,
            q3=tr.q3,
            polarity=tr.polarity,
            kind=tr.kind,
        )
    return out


def process_file(
    path: Path,
    sha256: str,
    sample: Sample,
    assay: Assay,
    calibration: Calibration | None,
    history: tuple[HistoryPoint, ...] = (),
    limits: ReadLimits = DEFAULT_LIMITS,
    *,
    data: bytes | None = None,
) -> Outcome:
    """Read, integrate, quantify and flag one file. Unreadable files become data.

    ``data``: the file's bytes, when the caller has read them (to hash them: ``sha256``).
    """
    try:
        injection = read_injection(
            path, assay, limits, data=data, sha256=sha256 if data is not None else None
        )
    except ReadError as err:
        return Outcome(
            path=path,
            sha256=sha256,
            sample=sample,
            result=Result(status="no_result"),
            flags=(error_flag(err),),
            error=str(err),
        )
    check = check_traces(injection, assay)
    roles = {t.id: t.role.value for t in assay.transitions}
    kept = _trace_windows(injection.traces, assay)
    if check.failed:  # a quantifier's trace cannot be judged: no number, no "< LLOQ"
        return _untrusted(path, injection, sample, check.flags, roles, kept)
    usable = replace(
        injection,
        traces={k: v for k, v in injection.traces.items() if k not in check.unusable},
    )
    peaks = integrate_injection(usable, assay)
    uncovered = coverage_flags(check, usable, peaks, assay)
    if uncovered:
        return _untrusted(path, injection, sample, check.flags + uncovered, roles, kept)
    result = quantify(peaks, sample, calibration, assay)
    flags = [*check.flags, *evaluate_injection(peaks, result, sample, calibration, assay, history)]
    return Outcome(
        path=path,
        sha256=injection.sha256,
        sample=sample,
        result=result,
        flags=tuple(flags),
        meta=injection.meta,
        peaks=peaks,
        roles=roles,
        traces=kept,
        notes=injection.notes + _partial_notes(check, assay),
    )


def _untrusted(
    path: Path,
    injection: Injection,
    sample: Sample,
    flags: tuple[Flag, ...],
    roles: Mapping[str, str],
    traces: Mapping[str, Chromatogram],
) -> Outcome:
    """An injection whose quantifier trace cannot be judged: stored like an unreadable file.

    No peaks are kept, so a later re-quantification (a new curve version, a
    restart) can never turn it into a BLQ; the traces are kept for review.
    """
    fails = [f for f in flags if f.severity is Severity.FAIL]
    return Outcome(
        path=path,
        sha256=injection.sha256,
        sample=sample,
        result=Result(status="no_result"),
        flags=flags,
        meta=injection.meta,
        roles=roles,
        traces=traces,
        notes=injection.notes,
        error="; ".join(f"{f.code}: {f.message}" for f in fails),
    )


def _partial_notes(check: TraceCheck, assay: Assay) -> tuple[str, ...]:
    lo, hi = search_window(assay)
    return tuple(
        f"{tid}: acquired {a:.2f}-{b:.2f} min, inside the search window {lo:.2f}-{hi:.2f} min; "
        "integrated on what was acquired"
        for tid, (a, b) in check.partial.items()
    )
