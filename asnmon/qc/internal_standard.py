"""The internal standard: its window against a causal reference, CUSUM drift, bias."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from asnmon.assay import Assay
from asnmon.drift import DriftEpisode, cusum_episodes
from asnmon.qc._base import (
    IS_BEARING,
    SRC_BIAS,
    SRC_DRIFT,
    SRC_IS,
    _flag,
    _fmt,
    _who,
    drift_settings,
)
from asnmon.records import Flag, HistoryPoint, SampleType
from asnmon.records import Severity as S


@dataclass(frozen=True, slots=True)
class IsContext:
    """The IS-bearing injections of the run and each one's reference, as of its arrival."""

    points: tuple[HistoryPoint, ...]
    reference: tuple[float | None, ...]  # mean IS of the reference injections before it
    n_reference: tuple[int, ...]
    pct: tuple[float | None, ...]  # IS as % of that reference
    outside: tuple[bool, ...]


def is_context(points: Sequence[HistoryPoint], assay: Assay) -> IsContext:
    """Causal IS reference: each injection is judged against those before it only.

    Reference injections (``Limits.is_reference``): calibrators and QCs
    ("cal_qc"), calibrators only, or every IS-bearing injection ("all"); one
    that was itself outside the window never enters the reference.
    """
    lim = assay.limits
    mode = lim.is_reference
    kinds = {
        "cal_qc": (SampleType.CALIBRATOR, SampleType.QC),
        "calibrators": (SampleType.CALIBRATOR,),
    }.get(mode, IS_BEARING)
    pts = [
        p
        for p in points
        if p.sample_type in IS_BEARING and not p.error and p.is_area is not None and p.is_area > 0
    ]
    total, n = 0.0, 0
    refs: list[float | None] = []
    ns: list[int] = []
    pcts: list[float | None] = []
    outs: list[bool] = []
    for p in pts:
        ref = total / n if n else None
        pct = 100.0 * p.is_area / ref if ref and p.is_area is not None else None
        out = pct is not None and not lim.is_low_pct <= pct <= lim.is_high_pct
        refs.append(ref)
        ns.append(n)
        pcts.append(pct)
        outs.append(out)
        if p.sample_type in kinds and not out and p.is_area is not None:
            total += p.is_area
            n += 1
    return IsContext(tuple(pts), tuple(refs), tuple(ns), tuple(pcts), tuple(outs))


def _is_window_flag(ctx: IsContext, assay: Assay) -> list[Flag]:
    lim = assay.limits
    p, ref, n, pct = ctx.points[-1], ctx.reference[-1], ctx.n_reference[-1], ctx.pct[-1]
    if ref is None or pct is None:
        return [
            _flag(
                "IS_NO_REFERENCE",
                S.INFO,
                f"IS area {_fmt(p.is_area)}: no reference yet (no earlier calibrator or QC "
                "with an IS peak), so the 50-150 % window cannot be judged for this injection.",
                "Nothing to do; the window applies from the first calibrator/QC on.",
                p.is_area,
                source=SRC_IS,
            )
        ]
    if lim.is_low_pct <= pct <= lim.is_high_pct:
        return []
    low = pct < lim.is_low_pct
    limit = lim.is_low_pct if low else lim.is_high_pct
    return [
        _flag(
            "IS_LOW" if low else "IS_HIGH",
            S.FAIL,
            f"IS area {_fmt(p.is_area)} is {pct:.0f} % of the run's reference "
            f"({_fmt(ref)}, mean of {n} {lim.is_reference.replace('_', '/')} injections); "
            f"the window is {lim.is_low_pct:g}-{lim.is_high_pct:g} %.",
            "Investigate (short injection, IS spiking, matrix suppression, clog) and re-inject; "
            "report nothing from this injection until then."
            if low
            else "Check for IS added twice, a co-eluting interference or a wrong dilution; "
            "re-inject.",
            pct,
            limit,
            SRC_IS,
            reference=ref,
            n_reference=n,
        )
    ]


def drift_episodes(ctx: IsContext, assay: Assay) -> list[DriftEpisode]:
    return cusum_episodes(
        [p.order for p in ctx.points],
        [math.log(p.is_area) if p.is_area else math.nan for p in ctx.points],
        drift_settings(assay),
        excluded=ctx.outside,
    )


def _is_drift_flag(ctx: IsContext, assay: Assay) -> list[Flag]:
    """IS_DRIFT on the injection where a CUSUM episode raises its alarm, and only there."""
    last = len(ctx.points) - 1
    episodes = drift_episodes(ctx, assay)
    if not episodes or episodes[-1].alarm != last:
        return []
    e = episodes[-1]
    lim = assay.limits
    start = ctx.points[e.start]
    pct = ctx.pct[-1]
    falling = e.direction == "down"
    where = f"{pct:.0f} % of the reference" if pct is not None else "no reference yet"
    eta = ""
    target = lim.is_low_pct if falling else lim.is_high_pct
    if pct is not None and e.rate_pct != 0 and (e.rate_pct < 0) == falling:
        steps = math.log(target / pct) / math.log1p(e.rate_pct / 100.0)
        if steps > 0:
            eta = f" At this rate it crosses {target:g} % in about {steps:.0f} injection(s)."
    return [
        _flag(
            "IS_DRIFT",
            S.WARNING,
            f"IS response {'falling' if falling else 'rising'} since {_who(start)}: about "
            f"{e.rate_pct:+.1f} % per injection, now {e.level_pct:.0f} % of its in-control "
            f"level ({where}; still inside the {lim.is_low_pct:g}-{lim.is_high_pct:g} % window; "
            f"CUSUM {e.cusum:.1f} > h = {lim.cusum_h:g} SD, SD {100 * e.sd:.1f} %).{eta}",
            "Check the ion source and spray (fouling), the IS solution and the autosampler; plan "
            "a source clean before the next QC set. Area ratios stay valid while analyte and IS "
            "move together: watch the QCs.",
            e.rate_pct,
            lim.cusum_h,
            SRC_DRIFT,
            started_at=start.order,
            started_sample=start.sample_id,
            level_pct=e.level_pct,
            sd_pct=100 * e.sd,
        )
    ]


def _bias_at(ctx: IsContext, idx: int, n: int, m: int) -> tuple[float, float, float] | None:
    """(% difference, mean of the last n samples, mean of the last m cal/QC) at ``idx``."""
    samples: list[float] = []
    refs: list[float] = []
    for p, out in zip(ctx.points[idx::-1], ctx.outside[idx::-1], strict=True):
        if p.is_area is None:
            continue
        if p.sample_type is SampleType.SAMPLE and len(samples) < n:
            samples.append(p.is_area)
        elif p.sample_type in (SampleType.CALIBRATOR, SampleType.QC) and not out and len(refs) < m:
            refs.append(p.is_area)
        if len(samples) >= n and len(refs) >= m:
            break
    if len(samples) < n or len(refs) < m:
        return None
    s_mean, r_mean = sum(samples) / n, sum(refs) / m
    return 100.0 * (s_mean / r_mean - 1.0), s_mean, r_mean


def _is_bias_flag(ctx: IsContext, assay: Assay) -> list[Flag]:
    """IS_BIAS: the last N samples' mean IS vs the nearest cal/QC; raised once per episode.

    Compared with the *nearest* calibrators/QCs (the last ``m`` = 3, one QC set)
    rather than the run's mean, so a drift that moves everything together is left
    to IS_DRIFT; what remains is a matrix effect the standards do not share.
    """
    p = ctx.points[-1]
    if p.sample_type is not SampleType.SAMPLE:
        return []
    n = assay.limits.is_bias_n
    limit = assay.limits.is_bias_pct
    m = 3
    now = _bias_at(ctx, len(ctx.points) - 1, n, m)
    if now is None or abs(now[0]) <= limit:
        return []
    prev_idx = next(
        (
            i
            for i in range(len(ctx.points) - 2, -1, -1)
            if ctx.points[i].sample_type is SampleType.SAMPLE
        ),
        None,
    )
    before = _bias_at(ctx, prev_idx, n, m) if prev_idx is not None else None
    if before is not None and abs(before[0]) > limit and (before[0] > 0) == (now[0] > 0):
        return []  # the same episode was raised on an earlier sample
    diff, s_mean, r_mean = now
    return [
        _flag(
            "IS_BIAS",
            S.WARNING,
            f"The last {n} samples' IS averages {_fmt(s_mean)}, {diff:+.0f} % against the "
            f"nearest {m} calibrators/QCs ({_fmt(r_mean)}); limit ±{limit:g} %. The samples "
            "behave differently from the standards.",
            "Investigate a matrix effect (suppression, anticoagulant, hemolysis) or an IS "
            "spiking difference between samples and standards before reporting.",
            diff,
            limit,
            SRC_BIAS,
            samples_mean=s_mean,
            standards_mean=r_mean,
        )
    ]


def evaluate_is(points: Sequence[HistoryPoint], assay: Assay) -> list[Flag]:
    """IS window, drift and bias for the last of ``points`` (history + current).

    An external calibration has no IS: nothing to judge here (the pipeline says so
    on every result with an EXTERNAL_CALIBRATION flag).
    """
    if not points or assay.is_quant is None:
        return []
    p = points[-1]
    if p.sample_type not in IS_BEARING or p.error or not p.is_area or p.is_area <= 0:
        return []
    ctx = is_context(points, assay)
    flags = _is_window_flag(ctx, assay)
    if not ctx.outside[-1]:
        flags += _is_drift_flag(ctx, assay)
    flags += _is_bias_flag(ctx, assay)
    return flags
