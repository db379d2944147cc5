"""Calibration: weighted least squares, back-calculation and ICH M10 acceptance.

The curve is ``ratio = c0 + c1*x + c2*x^2`` (``c2 = 0`` when linear), x the
nominal concentration in the vial. Acceptance follows ICH M10 (2022):

- every non-zero standard is back-calculated; it passes within
  ±``accuracy_pct`` (±``accuracy_lloq_pct`` at the lowest nominal level);
- failing standards are excluded one at a time and the curve refitted, until
  all remaining standards pass. "Worst" is judged leave-one-out: the standard
  deviating most (relative to its limit) from the curve fitted without it, so
  that a heavily weighted outlier at the LLOQ cannot bend the curve and push
  out a good neighbour instead;
- a level passes when at least half of its replicates pass (ICH M10, for
  replicated levels); the curve is accepted when >= ``min_pass_fraction`` of
  all standards pass and >= ``min_levels`` levels pass;
- if the lowest or highest level fails, the range (``lloq``/``uloq``) shrinks
  to the lowest/highest passing level, as ICH M10 allows, and the reason says so;
  the ±20 % limit stays with the original lowest level;
- r² below ``r2_min`` (CLSI C62-A) is mentioned, never a reason to reject.

Points with zero nominal (blank, zero sample) are not standards: they are kept
in the record, marked excluded, and never fitted. A standard without a finite
area ratio (no peak) counts as failed. A point passed in already ``excluded``
(a reviewer's exclusion, ``asnmon.review``) is never fitted, keeps its reason,
is back-calculated against the final curve for the record, and counts as a
standard that did not pass (conservative: the 75 % is of all standards run).
``CalibrationPoint.accuracy_pct`` is
``100 * back_calculated / nominal`` (100 = exact), the same as
``Result.accuracy_pct``; reasons quote the deviation (accuracy - 100).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from asnmon.assay import CalibrationSpec
from asnmon.records import Calibration, CalibrationPoint

MODELS = ("linear", "quadratic")
WEIGHTINGS = ("1/x^2", "1/x", "none")
_NAN3 = (math.nan, math.nan, math.nan)


def weights(x: npt.ArrayLike, weighting: str) -> npt.NDArray[np.float64]:
    """Per-point weights; 1/x and 1/x^2 need x > 0."""
    xs = np.asarray(x, dtype=np.float64)
    if weighting == "1/x^2":
        return 1.0 / xs**2
    if weighting == "1/x":
        return 1.0 / xs
    if weighting == "none":
        return np.ones_like(xs)
    raise ValueError(f"unknown weighting {weighting!r}; use one of {', '.join(WEIGHTINGS)}")


def fit_curve(
    x: npt.ArrayLike, y: npt.ArrayLike, *, model: str, weighting: str, zero_intercept: bool
) -> tuple[tuple[float, float, float], float]:
    """Weighted least squares -> ((c0, c1, c2), r²).

    r² is the weighted coefficient of determination about the weighted mean,
    ``1 - sum w (y - yhat)^2 / sum w (y - ybar_w)^2``, also with a zero
    intercept (so it compares across models; it can then be below 0).
    Raises ValueError when the data cannot determine the curve.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError("x and y must be 1-D arrays of the same length")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise ValueError("x and y must be finite")
    if weighting != "none" and (xs <= 0).any():
        raise ValueError(f"weighting {weighting} needs concentrations > 0")
    w = weights(xs, weighting)
    powers = [
        p
        for p in (0, 1, 2)
        if not (p == 0 and zero_intercept) and not (p == 2 and model == "linear")
    ]
    if np.unique(xs).size < len(powers):
        raise ValueError(
            f"a {model} curve needs at least {len(powers)} distinct "
            f"concentrations; got {np.unique(xs).size}"
        )
    design = np.stack([xs**p for p in powers], axis=1)
    sw = np.sqrt(w)
    beta, _, rank, _ = np.linalg.lstsq(design * sw[:, None], ys * sw, rcond=None)
    if rank < len(powers):
        raise ValueError("the concentrations do not determine the curve (singular fit)")
    coef = [0.0, 0.0, 0.0]
    for p, b in zip(powers, beta, strict=True):
        coef[p] = float(b)
    fitted = design @ beta
    ybar = float(np.sum(w * ys) / np.sum(w))
    ss_tot = float(np.sum(w * (ys - ybar) ** 2))
    ss_res = float(np.sum(w * (ys - fitted) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return (coef[0], coef[1], coef[2]), r2


def back_calculate(ratio: float, coefficients: Sequence[float], model: str) -> float | None:
    """Concentration for an area ratio; None when the curve never reaches it.

    For a quadratic the root on the rising branch (slope c1 + 2 c2 x > 0) is
    taken, written as ``2 (r - c0) / (c1 + sqrt(D))`` so that a tiny c2 loses
    no precision.
    """
    c0, c1, c2 = (float(c) for c in coefficients)
    if not (math.isfinite(ratio) and math.isfinite(c0) and math.isfinite(c1)):
        return None
    if model == "linear" or c2 == 0.0:
        return (ratio - c0) / c1 if c1 != 0.0 else None
    if not math.isfinite(c2):
        return None
    disc = c1 * c1 + 4.0 * c2 * (ratio - c0)
    if disc < 0.0:
        return None
    root = math.sqrt(disc)
    if c1 + root > 0.0:
        return 2.0 * (ratio - c0) / (c1 + root)
    return (-c1 + root) / (2.0 * c2)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _label(p: CalibrationPoint, rep: int | None) -> str:
    name = p.level or p.sample_id
    return f"{name} (rep {rep})" if rep is not None else name


def _rejected(
    points: Sequence[CalibrationPoint],
    spec: CalibrationSpec,
    version: int,
    reason: str,
    lloq: float,
    uloq: float,
) -> Calibration:
    return Calibration(
        version=version,
        model=spec.model,
        weighting=spec.weighting,
        coefficients=_NAN3,
        r2=math.nan,
        points=tuple(points),
        accepted=False,
        reason=f"rejected: {reason}",
        lloq=lloq,
        uloq=uloq,
        zero_intercept=spec.zero_intercept,
    )


def _worst(
    pts: Sequence[CalibrationPoint],
    included: list[int],
    limit: dict[int, float],
    spec: CalibrationSpec,
    n_params: int,
) -> int | None:
    """The standard that deviates most from the curve fitted *without* it.

    Judging each standard against the others keeps a heavily weighted outlier
    (1/x^2 at the LLOQ) from bending the curve and pushing out a good neighbour.
    None when no standard fails against the others.
    """
    best, score = None, 1.0
    for i in included:
        rest = [j for j in included if j != i]
        if len({pts[j].nominal for j in rest}) < n_params:
            continue
        try:
            coef, _ = fit_curve(
                [pts[j].nominal for j in rest],
                [pts[j].area_ratio for j in rest],
                model=spec.model,
                weighting=spec.weighting,
                zero_intercept=spec.zero_intercept,
            )
        except ValueError:
            continue
        bc = back_calculate(pts[i].area_ratio, coef, spec.model)
        s = math.inf if bc is None else abs(bc - pts[i].nominal) / pts[i].nominal * 100.0
        s /= limit[i]
        if s > score:
            best, score = i, s
    return best


def fit_calibration(
    points: Sequence[CalibrationPoint], spec: CalibrationSpec, version: int, *, unit: str = ""
) -> Calibration:
    """Fit, exclude failing standards worst-first, and judge the curve (ICH M10).

    Never raises on bad data: degenerate input gives a rejected Calibration
    whose reason says why. ``unit`` only decorates the reason.
    """
    u = f" {unit}" if unit else ""
    pts = list(points)
    std_idx: list[int] = []
    manual: set[int] = set()  # excluded by a reviewer before the fit
    for i, p in enumerate(pts):
        if not math.isfinite(p.nominal) or p.nominal < 0:
            pts[i] = replace(p, excluded=True, reason="invalid nominal concentration")
        elif p.nominal == 0:
            pts[i] = replace(p, excluded=True, reason="zero concentration: not fitted")
        elif not math.isfinite(p.area_ratio):
            pts[i] = replace(p, excluded=True, reason="no area ratio (peak missing)")
            std_idx.append(i)
        else:
            std_idx.append(i)
            if p.excluded:
                manual.add(i)
    nominal_all = sorted({pts[i].nominal for i in std_idx})
    lo_default = nominal_all[0] if nominal_all else spec.lloq
    hi_default = nominal_all[-1] if nominal_all else spec.uloq
    fit_idx = [i for i in std_idx if not pts[i].excluded]
    n_std = len(std_idx)
    if n_std == 0:
        return _rejected(
            pts, spec, version, "no non-zero calibration standards", lo_default, hi_default
        )
    if len(fit_idx) < 2:
        return _rejected(
            pts,
            spec,
            version,
            f"only {len(fit_idx)} standard(s) with an area ratio ({n_std} non-zero standards)",
            lo_default,
            hi_default,
        )

    lloq_level = nominal_all[0]
    limit = {
        i: spec.accuracy_lloq_pct if pts[i].nominal == lloq_level else spec.accuracy_pct
        for i in std_idx
    }
    # replicate numbers, for the reason ("CAL02 (rep 2)")
    reps: dict[int, int | None] = {}
    for nom in nominal_all:
        same = [i for i in std_idx if pts[i].nominal == nom]
        for k, i in enumerate(same, start=1):
            reps[i] = k if len(same) > 1 else None

    included = list(fit_idx)
    n_params = 3 - (spec.model == "linear") - int(spec.zero_intercept)
    coef: tuple[float, float, float] = _NAN3
    r2 = math.nan
    dev: dict[int, float] = {}
    while True:
        try:
            coef, r2 = fit_curve(
                [pts[i].nominal for i in included],
                [pts[i].area_ratio for i in included],
                model=spec.model,
                weighting=spec.weighting,
                zero_intercept=spec.zero_intercept,
            )
        except ValueError as exc:
            return _rejected(
                pts, spec, version, f"the curve cannot be fitted ({exc})", lo_default, hi_default
            )
        dev = {}
        for i in fit_idx:
            bc = back_calculate(pts[i].area_ratio, coef, spec.model)
            dev[i] = math.inf if bc is None else 100.0 * (bc - pts[i].nominal) / pts[i].nominal
        failing = [i for i in included if abs(dev[i]) > limit[i]]
        if not failing:
            break
        worst = _worst(pts, included, limit, spec, n_params)
        if worst is None:
            worst = max(failing, key=lambda i: abs(dev[i]) / limit[i])
        rest = [i for i in included if i != worst]
        if len({pts[i].nominal for i in rest}) < n_params:
            break  # too few left to refit: judge what we have
        included = rest

    for i in fit_idx:
        bc = back_calculate(pts[i].area_ratio, coef, spec.model)
        d = dev[i]
        passed = i in included and abs(d) <= limit[i]
        why = None
        if not passed:
            shown = "no real root" if bc is None else f"{d:+.1f} %"
            why = f"{shown} (limit ±{limit[i]:g} %)"
        pts[i] = replace(
            pts[i],
            back_calculated=bc,
            accuracy_pct=None if bc is None else 100.0 + d,
            excluded=not passed,
            reason=why,
        )

    for i in manual:  # the record shows where a reviewer's excluded standard would fall
        bc = back_calculate(pts[i].area_ratio, coef, spec.model)
        acc = None if bc is None else 100.0 * bc / pts[i].nominal
        pts[i] = replace(pts[i], back_calculated=bc, accuracy_pct=acc)

    passing = [i for i in std_idx if not pts[i].excluded]
    level_pass = []  # a level passes when >= half its replicates (and at least one) pass
    for nom in nominal_all:
        same = [i for i in std_idx if pts[i].nominal == nom]
        ok = sum(1 for i in same if not pts[i].excluded)
        if ok and 2 * ok >= len(same):
            level_pass.append(nom)
    n_pass = len(passing)
    frac = n_pass / n_std
    lloq = level_pass[0] if level_pass else lo_default
    uloq = level_pass[-1] if level_pass else hi_default

    problems = []
    if frac < spec.min_pass_fraction:
        problems.append(
            f"only {n_pass}/{n_std} standards within limits ({spec.min_pass_fraction:.0%} required)"
        )
    if len(level_pass) < spec.min_levels:
        problems.append(f"only {len(level_pass)} levels pass ({spec.min_levels} required)")
    accepted = not problems
    summary = f"{n_pass}/{n_std} standards within limits, {len(level_pass)} levels, r²={r2:.4f}"
    notes = []
    if math.isfinite(r2) and r2 < spec.r2_min:
        notes.append(f"r² below {spec.r2_min:g} (CLSI C62-A recommendation)")
    if level_pass and lloq > nominal_all[0]:
        notes.append(
            f"LLOQ raised to {_fmt(lloq)}{u} (lowest standard {_fmt(nominal_all[0])}{u} failed)"
        )
    if level_pass and uloq < nominal_all[-1]:
        notes.append(
            f"ULOQ lowered to {_fmt(uloq)}{u} (highest standard {_fmt(nominal_all[-1])}{u} failed)"
        )
    failed = [i for i in std_idx if pts[i].excluded]
    if failed:
        listed = ", ".join(
            f"{_label(pts[i], reps[i])}: "
            + (
                f"{pts[i].reason}"
                if i in manual
                else "no area ratio"
                if i not in fit_idx
                else "no real root"
                if pts[i].back_calculated is None
                else f"{dev[i]:+.1f} %"
            )
            + f" at {_fmt(pts[i].nominal)}{u}"
            for i in failed
        )
        notes.append(f"excluded {listed}")
    head = "accepted: " + summary if accepted else "rejected: " + "; ".join(problems)
    if not accepted:
        notes.insert(0, summary)
    reason = head + ("; " + "; ".join(notes) if notes else "")
    return Calibration(
        version=version,
        model=spec.model,
        weighting=spec.weighting,
        coefficients=coef,
        r2=r2,
        points=tuple(pts),
        accepted=accepted,
        reason=reason,
        lloq=lloq,
        uloq=uloq,
        zero_intercept=spec.zero_intercept,
    )
