"""A second peak on one member inside the group's boundaries: separated, or said.

The IS is spiked clean; the analyte transitions can carry a compound sharing
the precursor and a fragment (an isobar eluting 0.2-0.3 min away). Inside the
shared boundaries it adds its area to the analyte's and the ratio with it.
What a stable-isotope IS allows is to see it: the member should be its
reference's profile scaled (``rho``, from the top of the peak), so the
*excess* ``member - rho x reference`` is flat noise on a clean group and a
peak where something else elutes.

The thresholds are the assay's ``[integration.interference]`` settings
(``asnmon.assay.InterferenceLimits``: defaults and sources). An excess peak
``apex_gap_fwhm`` from the group apex, standing ``min_sn`` noise SDs and
carrying ``excess_share`` of the member's signal there,
is an interferent. Where the member dips to a valley between its own apex and
the interferent's (``integration.valley_depth`` of the interferent's height),
the member is integrated only up to that valley and its area scaled by the
reference's share of its own peak inside the same interval: the IS has the
analyte's shape, so the part of the analyte's peak under the interferent is
the part of the IS's peak there (the ratio of the two areas over the clean
interval is the ratio of the whole peaks). No valley, or less than
``min_clean_share`` of the reference inside the clean interval, and the
member keeps the whole-boundary area and says it cannot be separated.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from asnmon.assay import InterferenceLimits
from asnmon.integrate.noise import median, smoothing_gain
from asnmon.integrate.small import amax, amin, count, interp, mean, nonzero, std, trapezoid
from asnmon.records import Chromatogram, FloatArray, Interference

MIN_POINTS = 8  # member points inside the boundaries needed to look at all
PROFILE_POINTS = 5  # points on the top (a quarter of the reference's apex) to fit a ratio slope
DEFAULT = InterferenceLimits()


class Smoothed(NamedTuple):
    """A group member as the checks see it: its trace, smoothed, and its baseline line."""

    trace: Chromatogram
    s: FloatArray
    base: tuple[float, float]


class RefAt(NamedTuple):
    """The reference above its baseline at a member's times, and what the checks take from it.

    It depends on the times alone, so the members acquired on the same ones share it.
    """

    zr: FloatArray
    zr_top: float
    top25: np.ndarray | None  # where zr >= a quarter of its top (None: zr_top is not > 0)
    zr25: FloatArray | None  # zr there, and the times there about their mean, ...
    x25: FloatArray | None  # ... when there are 5 points or more (else None)
    sxx25: float


class Inside(NamedTuple):
    """A member's points inside the bounds, above its baseline, beside its reference's there.

    Worked out once for the checks that all look at them (``inside``).
    """

    idx: np.ndarray  # indices into the member's trace
    t: FloatArray  # their times
    z: FloatArray  # the member's smoothed signal above its baseline
    ref: RefAt  # the reference's, interpolated at t


def _line(base: tuple[float, float], t: FloatArray) -> FloatArray:
    return base[0] + base[1] * t


def reference_at(t: FloatArray, ref: Smoothed) -> RefAt:
    """``RefAt`` for times ``t``."""
    ref_trace, ref_s, ref_base = ref
    zr = interp(t, ref_trace.rt, ref_s) - _line(ref_base, t)
    zr_top = amax(zr)
    if not zr_top > 0:
        return RefAt(zr, zr_top, None, None, None, 0.0)
    top = zr >= 0.25 * zr_top
    if count(top) < PROFILE_POINTS:
        return RefAt(zr, zr_top, top, None, None, 0.0)
    tt = t[top]
    x = tt - mean(tt)
    return RefAt(zr, zr_top, top, zr[top], x, float(x.dot(x)))


def inside(
    member: Smoothed,
    bounds: tuple[float, float],
    ref: Smoothed,
    shared: dict[bytes, RefAt] | None = None,
) -> Inside | None:
    """The member's points inside ``bounds``; None when there are too few to look at.

    ``shared``: the reference at times already seen, by their bytes (a group's members
    acquired on the same time points look it up once).
    """
    trace, s, base = member
    rt = trace.rt
    idx = nonzero((rt >= bounds[0]) & (rt <= bounds[1]))
    if idx.size < MIN_POINTS:
        return None
    t = rt[idx]
    z = s[idx] - _line(base, t)
    key = t.tobytes() if shared is not None else b""
    at = shared.get(key) if shared is not None else None
    if at is None:
        at = reference_at(t, ref)
        if shared is not None:
            shared[key] = at
    return Inside(idx, t, z, at)


def area_between(trace: Chromatogram, lo: float, hi: float, base: tuple[float, float]) -> float:
    """Trapezoid of the raw trace minus its baseline over [lo, hi], ends interpolated."""
    rt, y = trace.rt, trace.intensity
    lo, hi = max(lo, float(rt[0])), min(hi, float(rt[-1]))
    if not hi > lo:
        return 0.0
    i0, i1 = int(rt.searchsorted(lo, "left")), int(rt.searchsorted(hi, "right"))
    x = np.concatenate(([lo], rt[i0:i1], [hi]))
    v = interp(x, rt, y) - _line(base, x)
    return trapezoid(v, x)


def find_interference(
    member: Smoothed,
    bounds: tuple[float, float],
    ref: Smoothed,
    group_apex: float,
    fwhm: float,
    window: int,
    sd0: float,
    rel: float,
    valley_depth: float,
    *,
    limits: InterferenceLimits = DEFAULT,
    points: Inside | None = None,
) -> Interference | None:
    """The member's excess peak over its reference inside ``bounds``, or None (clean).

    ``points``: ``inside(member, bounds, ref)``, when the caller has it already.
    """
    trace, s, base = member
    ref_trace, _, ref_base = ref
    pts = inside(member, bounds, ref) if points is None else points
    if pts is None or fwhm <= 0.0:
        return None
    idx, t, z, (zr, zr_top, *_) = pts
    top = zr >= 0.5 * zr_top
    if not zr_top > 0 or count(top) < 2:
        return None
    rho = max(0.0, median(z[top] / zr[top]))
    excess = z - rho * zr
    far = np.abs(t - group_apex) >= limits.apex_gap_fwhm * fwhm
    cand = nonzero(far)
    if not cand.size:  # nothing far enough from the apex
        return None
    q = int(cand[excess[cand].argmax()])
    x_q, z_q = float(excess[q]), float(z[q])
    if x_q < limits.excess_share * z_q:  # too small a share of the member there (the
        return None  # usual answer on a clean member, so asked before the noise is worked out)
    gain = smoothing_gain(window)
    # the noise there: the model's, or the raw scatter about the smoothed trace nearby if
    # larger (counting noise at a few hundred counts is neither the baseline's nor the top's)
    near = idx[max(0, q - window) : q + window + 1]
    local = std(trace.intensity[near] - s[near]) if near.size >= 3 else 0.0
    noise = gain * max(math.hypot(sd0, rel * max(z_q, 0.0)), local)
    sn = x_q / noise if noise > 0 else float("inf")
    if sn < limits.min_sn:
        return None
    # a peak, not a spike: as wide as a third of the group's peak above half its height
    above = excess >= 0.5 * x_q
    a = q
    while a > 0 and above[a - 1]:
        a -= 1
    e = q
    while e < above.size - 1 and above[e + 1]:
        e += 1
    at_edge = a == 0 or e == above.size - 1  # it goes on past the boundary: width unseen
    if float(t[e] - t[a]) < fwhm / 3.0 and not at_edge:
        return None
    k = int(np.abs(t - group_apex).argmin())
    side = "right" if q > k else "left"
    lo, hi = (k, q) if q > k else (q, k)
    v = lo + int(z[lo : hi + 1].argmin())
    cut = float(t[v])
    clean = (bounds[0], cut) if side == "right" else (cut, bounds[1])
    whole_ref = area_between(ref_trace, bounds[0], bounds[1], ref_base)
    clean_ref = area_between(ref_trace, clean[0], clean[1], ref_base)
    share = clean_ref / whole_ref if whole_ref > 0 else 0.0
    clean_area = area_between(trace, clean[0], clean[1], base)
    whole = area_between(trace, bounds[0], bounds[1], base)
    dips = float(z[q]) - float(z[v]) >= valley_depth * float(z[q]) and v not in (lo, hi)
    separated = dips and share >= limits.min_clean_share
    if separated:
        estimate = clean_area / share
    else:  # what the excess adds, far from the apex, as the interferent's share
        estimate = whole - trapezoid(np.where(far, np.maximum(excess, 0.0), 0.0), t)
    excess_pct = 100.0 * (whole - estimate) / estimate if estimate > 0 else float("inf")
    if excess_pct < limits.min_excess_pct:  # nothing the area would notice
        return None
    return Interference(
        side=side,
        apex_rt=float(t[q]),
        cut_rt=cut,
        separated=separated,
        clean_share=share,
        excess_pct=excess_pct,
        excess_sn=sn,
    )


def find_tail(
    member: Smoothed,
    bounds: tuple[float, float],
    ref: Smoothed,
    window: int,
    sd0: float,
    rel: float,
    *,
    limits: InterferenceLimits = DEFAULT,
    points: Inside | None = None,
    ref_profile: tuple[FloatArray, float] | None = None,
) -> tuple[Interference, float] | None:
    """An earlier peak's tail running under the member's peak: (what was seen, area to skim).

    The member is still well up where the group starts while its reference is
    not: the decay of the member's own points before the start (log-linear, the
    exponential tail of a chromatographic peak) is extended under the peak and
    its area taken off -- the exponential skim of chromatography data systems.
    ``points``: ``inside(member, bounds, ref)`` when the caller has it;
    ``ref_profile``: ``reference_profile(ref)`` (the group's members share it).
    """
    trace, s, base = member
    ref_trace = ref.trace
    rt = trace.rt
    t_s, t_e = bounds
    idx = nonzero((rt >= t_s) & (rt <= t_e)) if points is None else points.idx
    pre = nonzero(rt < t_s)
    if idx.size < MIN_POINTS or pre.size < 4:
        return None
    z = s - _line(base, rt)
    top = amax(z[idx]) if points is None else amax(points.z)  # the same points, the same z
    zr, ref_top = reference_profile(ref) if ref_profile is None else ref_profile
    if not top > 0 or not ref_top > 0:
        return None
    at_start = float(interp(t_s, rt, z))
    ref_start = float(interp(t_s, ref_trace.rt, zr)) / ref_top
    noise = smoothing_gain(window) * math.hypot(sd0, rel * max(at_start, 0.0))
    if at_start / top - ref_start < limits.tail_share or at_start < limits.tail_sn * noise:
        return None
    # the member's decay before the start: back from the start while it rises (to the
    # earlier peak's apex), the first few points after that apex left out (its top)
    k = int(pre[-1])
    j = k
    while j > 0 and z[j - 1] >= z[j] and z[j - 1] > 0:
        j -= 1
    run = np.arange(j + max(1, (k - j) // 4), k + 1)
    run = run[z[run] > 0]
    if run.size < 3:
        return None
    slope, icpt = np.polyfit(rt[run] - t_s, np.log(z[run]), 1, w=np.sqrt(z[run]))
    apex = float(rt[j])
    if not slope < 0:
        seen = Interference("left", apex, t_s, False, 1.0, float("inf"), at_start / noise, "tail")
        return seen, 0.0
    tau = -1.0 / float(slope)
    amp = math.exp(float(icpt))
    skim = amp * tau * (1.0 - math.exp(-(t_e - t_s) / tau))
    area = area_between(trace, t_s, t_e, base)
    ok = area > 0 and skim < limits.max_skim_share * area
    pct = 100.0 * skim / (area - skim) if ok else float("inf")
    if pct < limits.min_excess_pct:
        return None
    seen = Interference("left", apex, t_s, ok, 1.0, pct, at_start / noise, "tail")
    return seen, skim if ok else 0.0


def reference_profile(ref: Smoothed) -> tuple[FloatArray, float]:
    """The reference's smoothed trace above its baseline, and its top."""
    zr = ref.s - _line(ref.base, ref.trace.rt)
    return zr, amax(zr)


def find_profile_skew(
    member: Smoothed,
    bounds: tuple[float, float],
    ref: Smoothed,
    fwhm: float,
    window: int,
    sd0: float,
    *,
    limits: InterferenceLimits = DEFAULT,
    points: Inside | None = None,
) -> Interference | None:
    """Something co-eluting too closely to split: the member/reference ratio slopes across the top.

    Over the points where the reference stands above a quarter of its apex, a
    clean member is the reference scaled, so their ratio is flat; a compound
    eluting a little earlier or later makes it climb or fall. A change of
    ``profile_change`` per FWHM, ``profile_t`` standard errors from flat, is
    an interference that cannot be separated; its share of the area is at
    least what the ratio gains over its lowest value on the top. ``points``: as for
    ``find_interference``.
    """
    pts = inside(member, bounds, ref) if points is None else points
    if pts is None or fwhm <= 0.0:
        return None
    _, t, z, (_, zr_top, top, zr_top25, x, sxx) = pts
    if not zr_top > 0 or amax(z) < limits.profile_sn * smoothing_gain(window) * sd0:
        return None
    if zr_top25 is None or x is None:  # fewer than PROFILE_POINTS on the top
        return None
    r = z[top] / zr_top25
    mid = median(r)
    if not mid > 0:
        return None
    r_mean = mean(r)
    slope = float(x.dot(r - r_mean)) / sxx
    resid = r - r_mean - slope * x
    se = math.sqrt(float(resid.dot(resid)) / max(r.size - 2, 1) / sxx)
    change = abs(slope) * fwhm / mid
    t_stat = abs(slope) / se if se > 0 else float("inf")
    if change < limits.profile_change or t_stat < limits.profile_t:
        return None
    low = min(r_mean + slope * amin(x), r_mean + slope * amax(x))
    share = 100.0 * (r_mean / low - 1.0) if low > 0 else float("inf")
    side = "right" if slope > 0 else "left"
    return Interference(side, float(t[int(z.argmax())]), float("nan"), False, 1.0, share,
                        t_stat, "profile")  # fmt: skip
