"""Do the analyte's and the IS's baselines agree? The intercept of one profile on the other.

A stable-isotope IS co-elutes with its analyte and has its shape, so inside
the shared boundaries the analyte, above its baseline, is the IS above its
baseline scaled: ``a(t) = rho * i(t)``. A baseline misplaced on one of them
(a quiet stretch that was a hump or a tail, a drifting start) adds a constant
``c`` -- ``a(t) = rho * i(t) + c`` -- which the area ratio carries as
``c x width / analyte area``. Fitted on the points of the peak, ``c`` and its
standard error say by how much the ratio is off, and whether that is more
than noise. A baseline off on both alike in proportion (the ratio unharmed)
gives no intercept.
"""

from __future__ import annotations

import math

import numpy as np

from asnmon.integrate.small import count, interp, total
from asnmon.records import BaselineDoubt, Chromatogram

MIN_POINTS = 6  # points of the peak needed for a fit with an intercept


def baseline_offset(
    trace: Chromatogram,
    base: tuple[float, float],
    ref_trace: Chromatogram,
    ref_base: tuple[float, float],
    bounds: tuple[float, float],
    area: float,
    noise: tuple[float, float, float],
    reference: str,
) -> BaselineDoubt | None:
    """The member's baseline offset against its reference's, as % of its area (None: no fit).

    On the raw points (smoothed ones would make the residuals correlated and
    the standard error too small), the member interpolated on the reference's
    time points. Weighted by the noise model (``noise``: the member's and the
    reference's baseline SD, and the share that grows with the signal): the
    top's scatter is spray flicker, the tails are where an offset shows.
    """
    t = ref_trace.rt[(ref_trace.rt >= bounds[0]) & (ref_trace.rt <= bounds[1])]
    width = bounds[1] - bounds[0]
    if t.size < MIN_POINTS or not area > 0 or not width > 0:
        return None
    a = interp(t, trace.rt, trace.intensity) - (base[0] + base[1] * t)
    i = interp(t, ref_trace.rt, ref_trace.intensity) - (ref_base[0] + ref_base[1] * t)
    sd_a, sd_i, rel = noise
    ii = float(i.dot(i))
    rho = float(a.dot(i)) / ii if ii > 0 else 0.0  # first guess, through 0
    var = (
        sd_a**2
        + (rel * np.maximum(a, 0.0)) ** 2
        + rho**2 * (sd_i**2 + (rel * np.maximum(i, 0.0)) ** 2)
    )
    if count(var > 0) < var.size:  # (np.all: NaN is not > 0 either)
        return None
    w = 1.0 / var
    sw = total(w)
    im, am = float(w.dot(i)) / sw, float(w.dot(a)) / sw
    x = i - im
    sxx = float(w.dot(x * x))
    if not sxx > 0:
        return None
    rho = float(w.dot(x * (a - am))) / sxx
    c = am - rho * im
    resid = a - (rho * i + c)
    dof = t.size - 2
    chi2 = float(w.dot(resid * resid)) / dof  # > 1: more scatter than the model says
    se = math.sqrt(max(chi2, 1.0) * (1.0 / sw + im**2 / sxx))
    pct = 100.0 * c * width / area
    return BaselineDoubt(
        offset_pct=pct,
        t=abs(c) / se if se > 0 else float("inf"),
        reference=reference,
        profile_ratio=rho,
    )
