"""A reviewer's changes to a run, as pure functions: manual bounds, exclusions, batch edits.

Everything here takes records and returns new ones; the store writes them (with
the actor and an audit event) and ``asnmon.pipeline.requantify`` re-quantifies
the run. Nothing is decided here about who may do what (``asnmon.users``).

Manual reintegration uses the integrate package's own member measurement
(``asnmon.integrate.group.measure``): the same interpolated ends, trapezoid
area, height, S/N, saturation and cut detection as the automatic integration,
only the boundaries are the reviewer's and the baseline is a straight line
through the median of the ``MANUAL_BASELINE_POINTS`` points nearest each
boundary (valley to valley, as vendor software draws a manual baseline; a
median, so one spike at the boundary does not tilt it). Every member of the
peak group (analyte quantifier and qualifier, IS quantifier and qualifier) is
integrated between the same two times, as the automatic group integration does.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from asnmon.assay import Assay
from asnmon.calibrate import fit_calibration
from asnmon.errors import ReviewError
from asnmon.integrate import GROUP_ROLES
from asnmon.integrate.boundaries import MIN_QUIET_POINTS
from asnmon.integrate.group import compare_shape, measure
from asnmon.integrate.noise import auto_window, median
from asnmon.records import (
    Calibration,
    CalibrationPoint,
    Chromatogram,
    Peak,
    Role,
    Sample,
    SampleType,
)


class ActorLike(Protocol):
    """Who makes a change: ``asnmon.users.Actor`` (name and role)."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Person:
    """An actor where ``asnmon.users`` is not installed (a database without accounts)."""

    name: str
    role: str


BENCH = Person("bench (no accounts)", "bench")


def require_may(actor: ActorLike, action: str) -> None:
    """``asnmon.users.require`` (AccessDenied in words) where accounts exist in this install.

    Without the accounts module every change is the single bench's, which may edit.
    """
    try:
        users = importlib.import_module("asnmon.users")
    except ImportError:
        return
    users.require(actor, action)


def bench_actor() -> ActorLike:
    """The single bench without accounts, as ``asnmon.users`` names it (else ``BENCH``)."""
    try:
        actor: ActorLike = importlib.import_module("asnmon.users").BENCH_ACTOR
        return actor
    except ImportError:
        return BENCH


MANUAL_BASELINE_POINTS = 5  # points around each manual boundary whose median is the baseline
MIN_MANUAL_POINTS = 3  # a manual peak needs at least this many points of the quantifier

# batch-table fields a reviewer may correct, and what each must be
EDITABLE_FIELDS: tuple[str, ...] = ("sample_type", "level", "nominal", "dilution", "matrix")
MAX_TEXT = 100


@dataclass(frozen=True, slots=True)
class Reintegration:
    """A peak group integrated between a reviewer's boundaries."""

    start_rt: float
    end_rt: float
    peaks: Mapping[str, Peak | None]  # every group member; None where it has no trace
    notes: tuple[str, ...] = ()


def _window(params_points: int, auto: Peak | None, dt: float) -> int:
    """Smoothing for the apex and S/N: the assay's, else sized to the automatic peak."""
    if params_points:
        return params_points
    if auto is not None and auto.fwhm and dt > 0:
        return auto_window(auto.fwhm / dt)
    return auto_window(0)


def _around(rt: np.ndarray, at: float) -> tuple[float, float]:
    """The RT span of the MANUAL_BASELINE_POINTS points nearest ``at``."""
    k = int(np.argmin(np.abs(rt - at)))
    half = MANUAL_BASELINE_POINTS // 2
    lo, hi = max(0, k - half), min(rt.size - 1, k + half)
    return float(rt[lo]), float(rt[hi])


def reintegrate(
    traces: Mapping[str, Chromatogram],
    assay: Assay,
    start_rt: float,
    end_rt: float,
    auto: Mapping[str, Peak | None] | None = None,
) -> Reintegration:
    """The peak group of one injection between ``start_rt`` and ``end_rt`` (minutes).

    ``traces``: the stored trace windows; ``auto``: the automatic peaks (for the
    smoothing width only: the areas are measured afresh). Raises ReviewError
    when the boundaries cannot give a peak (reversed, not finite, outside the
    stored traces, fewer than MIN_MANUAL_POINTS points).
    """
    if not (math.isfinite(start_rt) and math.isfinite(end_rt)):
        raise ReviewError("Start and end must be numbers (minutes).")
    if not end_rt > start_rt:
        raise ReviewError(
            f"The end ({end_rt:.3f} min) must be after the start ({start_rt:.3f} min)."
        )
    auto = auto or {}
    params = assay.integration
    roles = {t.id: t.role for t in assay.transitions}
    members = [t.id for t in assay.transitions if t.role in GROUP_ROLES]
    quant = [t for t in members if roles[t] in (Role.ANALYTE_QUANT, Role.IS_QUANT)]
    for t in quant:
        tr = traces.get(t)
        if tr is None or tr.rt.size < 3:
            continue
        inside = int(((tr.rt >= start_rt) & (tr.rt <= end_rt)).sum())
        if inside < MIN_MANUAL_POINTS:
            raise ReviewError(
                f"Only {inside} point(s) of {t} lie between {start_rt:.3f} and {end_rt:.3f} "
                f"min (stored trace {tr.rt[0]:.3f}-{tr.rt[-1]:.3f} min); a peak needs at "
                f"least {MIN_MANUAL_POINTS}. Widen the boundaries."
            )
    if not any(t in traces and traces[t].rt.size >= 3 for t in quant):
        raise ReviewError(
            "No stored quantifier trace to integrate: this injection has no chromatograms "
            "(unreadable file?)."
        )
    peaks: dict[str, Peak | None] = dict.fromkeys(members)
    extra: dict[str, tuple[np.ndarray, tuple[float, float]]] = {}
    notes: list[str] = []
    for t in members:
        tr = traces.get(t)
        if tr is None or tr.rt.size < 3:
            continue
        dt = median(np.diff(tr.rt))
        if start_rt < tr.rt[0] or end_rt > tr.rt[-1]:
            notes.append(
                f"{t}: boundaries beyond the stored trace ({tr.rt[0]:.3f}-{tr.rt[-1]:.3f} "
                "min); integrated over what is stored"
            )
        peak, smoothed, base = measure(
            t,
            tr,
            (start_rt, end_rt),
            (_around(tr.rt, start_rt), _around(tr.rt, end_rt)),
            ((start_rt, start_rt), (end_rt, end_rt)),  # no search: the reviewer's baseline
            MIN_QUIET_POINTS,
            0.0,
            (False, False),
            _window(params.smoothing_points, auto.get(t), dt),
            params,
            require_signal=False,  # the reviewer says there is a peak; its area says how much
        )
        peaks[t] = peak
        extra[t] = (smoothed, base)
    ref = next((t for t in quant if roles[t] is Role.IS_QUANT and peaks.get(t)), None)
    ref_peak = peaks.get(ref) if ref else None
    if ref is not None and ref_peak is not None:
        for t, p in peaks.items():
            if p is not None and t != ref:
                peaks[t] = compare_shape(
                    p, traces[t], *extra[t], ref_peak, traces[ref], *extra[ref]
                )
    return Reintegration(start_rt, end_rt, peaks, tuple(notes))


def manual_note(name: str, reason: str, comment: str = "") -> str:
    """What a result says about its integration: "manually integrated by NAME because …"."""
    text = f"manually integrated by {name} because {reason}"
    return f"{text} ({comment})" if comment.strip() else text


def require_reason(reason: str | None, allowed: tuple[str, ...], what: str) -> str:
    """The reason, from the configured list; an empty one is refused (ALCOA+: attributable,
    justified). 'other' reasons need the comment to say what."""
    text = (reason or "").strip()
    if not text:
        raise ReviewError(f"Choose a reason for the {what}: it is recorded in the audit trail.")
    if allowed and text not in allowed:
        raise ReviewError(
            f"{text!r} is not one of the configured reasons for a {what}: "
            + "; ".join(allowed)
            + "."
        )
    return text


def check_comment(reason: str, comment: str | None) -> str:
    """An 'other' reason says nothing without a comment."""
    text = (comment or "").strip()
    if reason.lower().startswith("other") and not text:
        raise ReviewError("'Other' needs a comment saying what the reason is.")
    return text


# ---------------------------------------------------------------- batch-table edits


def parse_field(name: str, text: object) -> str | float | None:
    """A reviewer's typed value for a batch-table field, checked; '' clears a text field."""
    if name not in EDITABLE_FIELDS:
        raise ReviewError(f"{name!r} cannot be edited; editable: {', '.join(EDITABLE_FIELDS)}.")
    raw = "" if text is None else str(text).strip()
    if name == "sample_type":
        allowed = [t.value for t in SampleType]
        if raw not in allowed:
            raise ReviewError(f"Sample type must be one of {', '.join(allowed)}; got {raw!r}.")
        return raw
    if name in ("level", "matrix"):
        if len(raw) > MAX_TEXT:
            raise ReviewError(f"{name} is at most {MAX_TEXT} characters.")
        return raw or None
    if raw == "" and name == "nominal":
        return None
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        raise ReviewError(f"{name} must be a number; got {raw!r}.") from None
    if not math.isfinite(value):
        raise ReviewError(f"{name} must be a finite number; got {raw!r}.")
    if name == "dilution" and not value >= 1.0:
        raise ReviewError(f"Dilution is a factor >= 1 (1 = undiluted); got {value:g}.")
    if name == "nominal" and value < 0:
        raise ReviewError(f"A nominal concentration cannot be negative; got {value:g}.")
    return value


def edited_sample(sample: Sample, name: str, value: str | float | None) -> Sample:
    """The sample with one field corrected (the caller checked it with ``parse_field``)."""
    if name == "sample_type":
        return replace(sample, sample_type=SampleType(str(value)))
    if name == "dilution":
        return replace(sample, dilution=float(value) if value is not None else 1.0)
    if name == "nominal":
        return replace(sample, nominal=float(value) if value is not None else None)
    text = None if value is None else str(value)
    return replace(sample, level=text) if name == "level" else replace(sample, matrix=text)


def sample_value(sample: Sample, name: str) -> str | float | None:
    """The current value of an editable field (for the audit trail's old value)."""
    if name == "sample_type":
        return sample.sample_type.value
    value = getattr(sample, name)
    return value if value is None or isinstance(value, str | float) else float(value)


def affects_curve(before: Sample, after: Sample) -> bool:
    """A change to or from a calibrator, or of a calibrator's nominal: the curve is refitted."""
    cal = SampleType.CALIBRATOR
    if before.sample_type is not after.sample_type:
        return cal in (before.sample_type, after.sample_type)
    return before.sample_type is cal and (
        before.nominal != after.nominal or before.level != after.level
    )


# ---------------------------------------------------------------- calibrator exclusion


def exclusion_text(name: str, reason: str, comment: str = "") -> str:
    """The point's reason as the curve and report show it."""
    text = f"excluded by {name}: {reason}"
    return f"{text} ({comment})" if comment.strip() else text


def apply_exclusions(
    points: list[CalibrationPoint], ids: list[int], excluded: Mapping[int, str]
) -> list[CalibrationPoint]:
    """Points marked excluded (with the reviewer's reason) where their injection is excluded."""
    return [
        replace(p, excluded=True, reason=excluded[i]) if i in excluded else p
        for p, i in zip(points, ids, strict=True)
    ]


def refit_with_exclusions(
    points: list[CalibrationPoint],
    ids: list[int],
    excluded: Mapping[int, str],
    assay: Assay,
    version: int,
) -> Calibration:
    """The curve without the reviewer's exclusions, judged by the same ICH M10 rules."""
    return fit_calibration(
        apply_exclusions(points, ids, excluded), assay.calibration, version, unit=assay.unit
    )
