"""QC rules: results and the run's history in, ``Flag``s with reasons out.

Every flag says, in words a person reads at 3 a.m., what was measured, what
the limit is, where the limit comes from and what to do. Rules are pure
functions of the run's history (earlier injections, in order) and the current
injection; the pipeline decides when to run them. Because the history is
recomputed from scratch each time, every rule that must raise *once* (IS
drift, IS bias) is written so that a prefix of the run always gives the same
answer.

Which rule runs where, and why:

- ``evaluate_injection`` (once, at ingestion): NO_PEAK, peak quality, the IS
  window, IS drift and bias, retention time, ion ratio, carryover -- none of
  these depends on the curve, so they are never recomputed.
- ``evaluate_range`` (at ingestion and again on every re-quantification):
  only the codes in ``store.QUANT_CODES`` (BLQ, ALQ, NO_CALIBRATION, REF_LOW,
  REF_HIGH, QC_FAIL, DEPLETED), because the store replaces exactly those.
- ``evaluate_calibration``: CAL_FAIL (run level, replaced per curve version).
- ``evaluate_run``: the verdict and RUN_FAIL, recomputed after every change.

Limits come from ``assay.limits`` (sourced defaults in ``asnmon/assay.py``);
limits the lead has not added to ``Limits`` yet are read with their default
through ``_lim`` so the TOML can override them as soon as the field exists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asnmon.assay import Assay
from asnmon.calibrate import back_calculate
from asnmon.drift import DriftEpisode, DriftSettings, cusum_episodes
from asnmon.errors import AsnmonError
from asnmon.quantify import suggested_dilution
from asnmon.records import Calibration, Flag, HistoryPoint, Peak, Result, Role, Sample, SampleType
from asnmon.records import Severity as S

_QUANTIFIED = (SampleType.CALIBRATOR, SampleType.QC, SampleType.SAMPLE)
IS_BEARING = (SampleType.ZERO, SampleType.CALIBRATOR, SampleType.QC, SampleType.SAMPLE)
_BLANKS_NO_IS = (SampleType.BLANK, SampleType.DOUBLE_BLANK)  # ICH M10: no IS added
_REL = 1e-9
_FRACTION_TOL = 1e-3  # "2/3" is written 0.667 in the TOML: 2 of 3 must still pass

SRC_IS = "lab convention 50-150 % of the cal/QC mean; FDA 2019 IS Q&A"
SRC_DRIFT = "FDA 2019 IS Q&A (gradual drift); CUSUM k = 0.5, h = 5 SD as in Panorama"
SRC_BIAS = "FDA 2019 IS Q&A (sample IS consistently higher/lower than cal/QC)"

# New flag codes this module adds to the contract (ARCHITECTURE.md table).
NEW_CODES = frozenset(
    {"IS_NO_REFERENCE", "IS_BIAS", "FEW_POINTS", "TRUNCATED_PEAK", "DEPLETED", "CAL_EXCLUDED"}
)
# Run-level codes the pipeline replaces wholesale after every evaluation.
RUN_LEVEL_CODES = frozenset({"RUN_FAIL"})
# Run-level codes of a curve version; pass ``report_exclusions=True`` once the pipeline
# replaces all of these (not only CAL_FAIL) after each refit.
CALIBRATION_CODES = frozenset({"CAL_FAIL", "CAL_EXCLUDED"})


def _lim(assay: Assay, name: str, default: Any) -> Any:
    """A limit from ``assay.limits``, or its proposed default until the field exists."""
    return getattr(assay.limits, name, default)


def drift_settings(assay: Assay) -> DriftSettings:
    return DriftSettings(
        k=assay.limits.cusum_k,
        h=assay.limits.cusum_h,
        baseline_n=int(_lim(assay, "is_drift_baseline_n", 8)),
        min_cv=float(_lim(assay, "is_drift_min_cv_pct", 3.0)) / 100.0,
        clip=float(_lim(assay, "is_drift_clip_sd", 3.0)),
        slope_window=int(_lim(assay, "is_drift_slope_window", 10)),
        min_rate_pct=assay.limits.is_drift_min_rate_pct,
    )


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _flag(
    code: str,
    severity: S,
    message: str,
    action: str,
    value: float | None = None,
    limit: float | None = None,
    source: str = "",
    **details: object,
) -> Flag:
    return Flag(code, severity, message, action, value, limit, source, details)


def _who(p: HistoryPoint) -> str:
    return f"injection {p.order} ({p.sample_id})"


def error_flag(error: AsnmonError) -> Flag:
    """READ_ERROR / CONVERT_ERROR / INCOMPLETE from an error the pipeline caught."""
    actions = {
        "READ_ERROR": "Check the file (re-export or re-convert it); the run goes on without it.",
        "CONVERT_ERROR": "Check the converter command and the raw file; convert it by hand.",
    }
    return Flag(
        code=error.code,
        severity=S.FAIL,
        message=str(error),
        action=actions.get(error.code, "Check the file."),
        details={"error": type(error).__name__},
    )


# ---------------------------------------------------------------- peaks


def evaluate_peaks(peaks: Mapping[str, Peak | None], sample: Sample, assay: Assay) -> list[Flag]:
    """NO_PEAK: the IS must be there (except in blanks); the analyte in standards."""
    flags: list[Flag] = []
    is_t = assay.is_quant
    an_t = assay.analyte_quant
    rt = assay.retention
    window = f"{rt.expected_rt - rt.window:.2f}-{rt.expected_rt + rt.window:.2f} min"
    if sample.sample_type in IS_BEARING and peaks.get(is_t.id) is None:
        flags.append(
            _flag(
                "NO_PEAK",
                S.FAIL,
                f"No internal-standard peak ({is_t.name}) in {window}: no result possible.",
                "Check the injection (vial, needle, IS spiking) and re-inject.",
                transition=is_t.id,
            )
        )
    if sample.sample_type in (SampleType.CALIBRATOR, SampleType.QC) and peaks.get(an_t.id) is None:
        flags.append(
            _flag(
                "NO_PEAK",
                S.FAIL,
                f"No {assay.analyte} peak ({an_t.name}) in this "
                f"{sample.sample_type.value} {sample.level or sample.sample_id}.",
                "Check the standard's preparation and the injection; re-inject.",
                transition=an_t.id,
            )
        )
    return flags


def evaluate_peak_quality(
    peaks: Mapping[str, Peak | None], sample: Sample, result: Result, assay: Assay
) -> list[Flag]:
    """LOW_SN, SATURATION, FEW_POINTS, TRUNCATED_PEAK on the peaks a result rests on.

    The analyte of a study sample is judged only when it is reported as a number
    (status ok): a weak peak below the LLOQ is already a BLQ.
    """
    stype = sample.sample_type
    if stype not in IS_BEARING:
        return []
    integ = assay.integration
    checked: list[tuple[str, str]] = [(assay.is_quant.id, assay.is_quant.name)]
    analyte_judged = stype in (SampleType.CALIBRATOR, SampleType.QC) or (
        stype is SampleType.SAMPLE and result.status == "ok"
    )
    if analyte_judged:
        checked.append((assay.analyte_quant.id, assay.analyte_quant.name))
    flags: list[Flag] = []
    for tid, name in checked:
        p = peaks.get(tid)
        if p is None:
            continue
        if p.sn is not None and p.sn < integ.min_sn:
            flags.append(
                _flag(
                    "LOW_SN",
                    S.WARNING,
                    f"{name}: S/N {p.sn:.1f} is below {integ.min_sn:g}; the peak is too weak to "
                    "quantify reliably.",
                    "Review the peak; re-inject or concentrate the sample if the value matters.",
                    p.sn,
                    integ.min_sn,
                    "ICH M10 / CLSI C62-A (LLOQ S/N >= 10); integration.min_sn",
                    transition=tid,
                )
            )
        if p.points < integ.min_points_across:
            flags.append(
                _flag(
                    "FEW_POINTS",
                    S.WARNING,
                    f"{name}: only {p.points} data points across the peak (minimum "
                    f"{integ.min_points_across}); the area is imprecise.",
                    "Shorten the dwell/cycle time or widen the peak in the method.",
                    float(p.points),
                    float(integ.min_points_across),
                    "common LC-MS practice (>= 8-10 points); integration.min_points_across",
                    transition=tid,
                )
            )
        if p.truncated:
            flags.append(
                _flag(
                    "TRUNCATED_PEAK",
                    S.WARNING,
                    f"{name}: the peak (apex {p.apex_rt:.2f} min) is cut off by the end of the "
                    "acquisition window; its area is too small.",
                    "Check the retention time and the acquisition window; re-inject.",
                    p.apex_rt,
                    source="peak integrity",
                    transition=tid,
                )
            )
    for tid in {assay.is_quant.id, assay.analyte_quant.id} | {
        t.id for t in assay.transitions if t.role in (Role.ANALYTE_QUAL, Role.IS_QUAL)
    }:
        p = peaks.get(tid)
        if p is not None and p.saturated:
            flags.append(
                _flag(
                    "SATURATION",
                    S.FAIL if tid in (assay.is_quant.id, assay.analyte_quant.id) else S.WARNING,
                    f"{tid}: detector saturated (apex {_fmt(p.height)} counts, ceiling "
                    f"{_fmt(integ.saturation_intensity)}); the area is underestimated.",
                    "Dilute and re-inject (or use a less sensitive transition).",
                    p.height,
                    integ.saturation_intensity,
                    "detector ceiling; integration.saturation_intensity",
                    transition=tid,
                )
            )
    return flags


# ---------------------------------------------------------------- internal standard


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
    n = int(_lim(assay, "is_bias_n", 10))
    limit = float(_lim(assay, "is_bias_pct", 20.0))
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
    """IS window, drift and bias for the last of ``points`` (history + current)."""
    if not points:
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


# ---------------------------------------------------------------- retention, ion ratio


def evaluate_retention(
    point: HistoryPoint,
    peaks: Mapping[str, Peak | None],
    history: Sequence[HistoryPoint],
    assay: Assay,
) -> list[Flag]:
    """RT_SHIFT: IS apex vs the calibrators' mean, and analyte vs IS apex (co-elution)."""
    if point.sample_type not in IS_BEARING or point.is_rt is None:
        return []
    lim = assay.limits
    cal_rts = [
        h.is_rt
        for h in history
        if h.sample_type is SampleType.CALIBRATOR and h.is_rt is not None and not h.error
    ]
    if cal_rts:
        ref, basis = sum(cal_rts) / len(cal_rts), f"the mean of {len(cal_rts)} calibrators"
    else:
        ref, basis = assay.retention.expected_rt, "the method's expected RT (no calibrator yet)"
    tol = ref * lim.rt_tolerance_pct / 100.0
    flags: list[Flag] = []
    shift = point.is_rt - ref
    if abs(shift) > tol:
        flags.append(
            _flag(
                "RT_SHIFT",
                S.WARNING,
                f"IS apex at {point.is_rt:.3f} min is {shift:+.3f} min from {basis} "
                f"({ref:.3f} min); tolerance ±{lim.rt_tolerance_pct:g} % = ±{tol:.3f} min.",
                "Check the column, mobile phase and pump pressure; confirm the peak identity "
                "(ornithine shares the precursor) before reporting.",
                point.is_rt,
                ref,
                "CLSI C62-A; limits.rt_tolerance_pct",
                kind="is_rt",
                shift=shift,
            )
        )
    an = peaks.get(assay.analyte_quant.id)
    if (
        point.sample_type in _QUANTIFIED
        and an is not None
        and (an.sn is None or an.sn >= assay.integration.min_sn)
    ):
        gap = an.apex_rt - point.is_rt
        if abs(gap) > lim.coelution_tolerance:
            flags.append(
                _flag(
                    "RT_SHIFT",
                    S.WARNING,
                    f"Analyte apex {an.apex_rt:.3f} min and IS apex {point.is_rt:.3f} min are "
                    f"{abs(gap):.3f} min apart (limit {lim.coelution_tolerance:g} min): they "
                    "should co-elute.",
                    "Check for an interference on the analyte transition (ornithine, "
                    "aspartate isotope) and the integration.",
                    abs(gap),
                    lim.coelution_tolerance,
                    "stable-isotope IS co-elution; limits.coelution_tolerance",
                    kind="coelution",
                )
            )
    return flags


def evaluate_ion_ratio(
    point: HistoryPoint,
    peaks: Mapping[str, Peak | None],
    history: Sequence[HistoryPoint],
    assay: Assay,
) -> list[Flag]:
    """ION_RATIO: qualifier/quantifier vs the calibrators' mean (relative tolerance)."""
    if point.sample_type not in _QUANTIFIED or point.analyte_area is None:
        return []
    an = peaks.get(assay.analyte_quant.id)
    if an is None or (an.sn is not None and an.sn < assay.integration.min_sn):
        return []  # too weak for its qualifier to mean anything
    if assay.by_role(Role.ANALYTE_QUAL) is None:
        return []
    refs = [
        h.ion_ratio
        for h in history
        if h.sample_type is SampleType.CALIBRATOR and h.ion_ratio is not None and not h.error
    ]
    if not refs:
        return []
    lim = assay.limits
    ref = sum(refs) / len(refs)
    weak = ref < lim.weak_qualifier_ratio
    tol = lim.ion_ratio_weak_tolerance_pct if weak else lim.ion_ratio_tolerance_pct
    ratio = point.ion_ratio if point.ion_ratio is not None else 0.0
    dev = 100.0 * (ratio / ref - 1.0) if ref > 0 else math.inf
    if abs(dev) <= tol:
        return []
    return [
        _flag(
            "ION_RATIO",
            S.WARNING,
            f"Ion ratio {ratio:.3f} is {dev:+.0f} % from the calibrators' mean {ref:.3f} "
            f"(tolerance ±{tol:g} %"
            + (
                f", wider because the qualifier is < {lim.weak_qualifier_ratio:g} of the quantifier"
                if weak
                else ""
            )
            + ")"
            + (": no qualifier peak." if point.ion_ratio is None else "."),
            "Suspect an interference on one transition; review both traces before reporting.",
            ratio,
            tol,
            "CLSI C62-A; limits.ion_ratio_tolerance_pct / ion_ratio_weak_tolerance_pct",
            reference=ref,
            deviation_pct=dev,
        )
    ]


# ---------------------------------------------------------------- blanks


def _is_high(p: HistoryPoint, history: Sequence[HistoryPoint], assay: Assay) -> bool:
    uloq = assay.calibration.uloq
    if p.sample_type is SampleType.CALIBRATOR and p.nominal is not None:
        return p.nominal >= uloq * (1 - _REL)
    if p.status == "ALQ":
        return True
    top = [
        h.analyte_area
        for h in history
        if h.sample_type is SampleType.CALIBRATOR
        and h.nominal is not None
        and h.nominal >= uloq * (1 - _REL)
        and h.analyte_area
    ]
    return bool(top and p.analyte_area and p.analyte_area >= min(top))


def evaluate_carryover(
    point: HistoryPoint, history: Sequence[HistoryPoint], assay: Assay
) -> list[Flag]:
    """CARRYOVER in a blank after a high injection; IS or analyte in any double blank."""
    stype = point.sample_type
    if stype not in (*_BLANKS_NO_IS, SampleType.ZERO) or point.error:
        return []
    lim = assay.limits
    prev = next((h for h in reversed(history) if not h.error), None)
    after_high = prev is not None and _is_high(prev, history, assay)
    if not after_high and stype is not SampleType.DOUBLE_BLANK:
        return []
    lloq = assay.calibration.lloq
    lloq_cals = [
        h
        for h in history
        if h.sample_type is SampleType.CALIBRATOR
        and h.nominal is not None
        and h.nominal <= lloq * (1 + _REL)
        and not h.error
    ]
    context = f"after {_who(prev)}" if after_high and prev is not None else "in a double blank"
    src = "ICH M10; CLSI C62-A; limits.carryover_analyte_pct_lloq / carryover_is_pct"
    flags: list[Flag] = []
    # analyte: area in blanks without IS; area ratio in a zero sample (it has IS)
    use_ratio = stype is SampleType.ZERO
    lloq_vals = [h.area_ratio if use_ratio else h.analyte_area for h in lloq_cals]
    lloq_vals_ok = [v for v in lloq_vals if v]
    value = point.area_ratio if use_ratio else point.analyte_area
    if lloq_vals_ok and value:
        lloq_resp = sum(lloq_vals_ok) / len(lloq_vals_ok)
        pct = 100.0 * value / lloq_resp
        if pct > lim.carryover_analyte_pct_lloq:
            flags.append(
                _flag(
                    "CARRYOVER",
                    S.FAIL,
                    f"Analyte in this {stype.value} {context}: "
                    f"{'area ratio' if use_ratio else 'area'} {_fmt(value)} = {pct:.0f} % of the "
                    f"LLOQ response ({_fmt(lloq_resp)}); limit "
                    f"{lim.carryover_analyte_pct_lloq:g} %.",
                    "Add needle washes / extra blanks after high samples; samples that followed "
                    "high injections may be biased high: re-inject them.",
                    pct,
                    lim.carryover_analyte_pct_lloq,
                    src,
                    kind="analyte",
                )
            )
    if stype in _BLANKS_NO_IS and point.is_area:
        ctx = is_context([*history, point], assay)
        ref = ctx.reference[-1] if ctx.points and ctx.points[-1] is point else None
        if ref is None:
            refs = [
                h.is_area
                for h in history
                if h.sample_type in (SampleType.CALIBRATOR, SampleType.QC) and h.is_area
            ]
            ref = sum(refs) / len(refs) if refs else None
        if ref:
            pct = 100.0 * point.is_area / ref
            if pct > lim.carryover_is_pct:
                flags.append(
                    _flag(
                        "CARRYOVER",
                        S.FAIL if after_high else S.WARNING,
                        f"IS in this {stype.value} {context}: area {_fmt(point.is_area)} = "
                        f"{pct:.1f} % of the mean IS ({_fmt(ref)}); limit "
                        f"{lim.carryover_is_pct:g} %.",
                        "Check the blank's preparation (IS added by mistake?) and the wash.",
                        pct,
                        lim.carryover_is_pct,
                        src,
                        kind="is",
                    )
                )
    return flags


# ---------------------------------------------------------------- range and QCs


def qc_tolerance(nominal: float | None, calibration: Calibration, assay: Assay) -> float:
    """±15 %, or ±20 % for a QC at the LLOQ (ICH M10)."""
    lim = assay.limits
    at_lloq = nominal is not None and nominal <= calibration.lloq * (1 + 1e-6)
    return lim.qc_accuracy_lloq_pct if at_lloq else lim.qc_accuracy_pct


def _qc_fail(result: Result, sample: Sample, calibration: Calibration, assay: Assay) -> list[Flag]:
    tol = qc_tolerance(sample.nominal, calibration, assay)
    name = f"{sample.level or 'QC'} {sample.sample_id}"
    unit = assay.unit
    src = "ICH M10; limits.qc_accuracy_pct / qc_accuracy_lloq_pct"
    if result.accuracy_pct is None:
        return [
            _flag(
                "QC_FAIL",
                S.FAIL,
                f"{name} (nominal {_fmt(sample.nominal)} {unit}) gave no value "
                f"({result.status}): it counts as a failed QC.",
                "Check the QC's preparation and the injection; re-inject if the run allows.",
                limit=tol,
                source=src,
                level=sample.level,
            )
        ]
    dev = result.accuracy_pct - 100.0
    if abs(dev) <= tol:
        return []
    return [
        _flag(
            "QC_FAIL",
            S.FAIL,
            f"{name} reads {result.accuracy_pct:.1f} % of nominal ({_fmt(sample.nominal)} {unit}), "
            f"{dev:+.1f} %: outside ±{tol:g} %.",
            "Check this QC (preparation, injection) and the curve; the run fails if fewer than "
            "2/3 of all QCs or half of this level pass.",
            result.accuracy_pct,
            tol,
            src,
            level=sample.level,
            deviation_pct=dev,
        )
    ]


def evaluate_range(
    result: Result, sample: Sample, calibration: Calibration | None, assay: Assay
) -> list[Flag]:
    """QUANT_CODES only: NO_CALIBRATION, QC_FAIL, BLQ, ALQ, REF_LOW/REF_HIGH, DEPLETED.

    Re-run on every re-quantification; the store replaces exactly these codes.
    """
    if sample.sample_type not in (SampleType.QC, SampleType.SAMPLE):
        return []
    flags: list[Flag] = []
    unit = assay.unit
    matrix = assay.matrix(sample.matrix)
    if result.status == "provisional":
        why = (
            f"calibration v{calibration.version} was rejected "
            f"({calibration.reason.removeprefix('rejected: ')})"
            if calibration is not None and not calibration.accepted
            else "no calibration curve has been accepted yet"
        )
        return [
            _flag(
                "NO_CALIBRATION",
                S.WARNING,
                f"Provisional: {why}; area ratio {_fmt(result.area_ratio)}. It is "
                "re-quantified automatically when a curve is accepted.",
                "Nothing yet; check the calibrators if this persists.",
                result.area_ratio,
                source="ICH M10 (no result without an accepted curve)",
            )
        ]
    if calibration is None or not calibration.accepted:
        return flags
    if sample.sample_type is SampleType.QC:
        return _qc_fail(result, sample, calibration, assay)
    depleted_below = matrix.depleted_below if matrix is not None else None
    if result.status == "BLQ":
        lloq_sample = calibration.lloq * sample.dilution
        depleted = depleted_below is not None and lloq_sample <= depleted_below * (1 + _REL)
        flags.append(
            _flag(
                "BLQ",
                S.INFO if depleted else S.WARNING,
                f"Below the LLOQ ({_fmt(calibration.lloq)} {unit} in the vial): report "
                f"'< {_fmt(lloq_sample)} {unit}', never an extrapolated number.",
                "Report as < LLOQ."
                + (
                    " Expected on asparaginase therapy."
                    if depleted
                    else " Concentrate or re-assay with a lower range if a number is needed."
                ),
                result.conc_vial,
                calibration.lloq,
                "ICH M10 (range)",
            )
        )
        if depleted and matrix is not None and depleted_below is not None:
            flags.append(_depleted(None, matrix.name, depleted_below, unit))
    elif result.status == "ALQ":
        est = (
            back_calculate(result.area_ratio, calibration.coefficients, calibration.model)
            if result.area_ratio is not None
            else None
        )
        factor = suggested_dilution(est, calibration.uloq) if est and est > 0 else 10
        about = (
            f" (about {_fmt(est)} {unit} by extrapolation, used only for the dilution)"
            if est
            else ""
        )
        flags.append(
            _flag(
                "ALQ",
                S.WARNING,
                f"Above the ULOQ of {_fmt(calibration.uloq)} {unit} in the vial{about}. "
                f"Dilute 1:{factor} and re-inject.",
                f"Dilute 1:{factor} in blank matrix and re-inject (dilution integrity ±15 %).",
                est,
                calibration.uloq,
                "ICH M10 (range, dilution integrity)",
                dilution=factor,
            )
        )
    elif result.status == "ok" and matrix is not None and result.conc is not None:
        conc = result.conc
        rng = f"{_fmt(matrix.ref_low)}-{_fmt(matrix.ref_high)} {unit}"
        if depleted_below is not None and conc < depleted_below:
            flags.append(_depleted(conc, matrix.name, depleted_below, unit))
        elif matrix.ref_low is not None and conc < matrix.ref_low:
            flags.append(
                _flag(
                    "REF_LOW",
                    S.WARNING,
                    f"{_fmt(conc)} {unit} is below the {matrix.name} reference interval ({rng}).",
                    "Check the sample's history and handling (asparaginase keeps working in "
                    "the tube unless quenched).",
                    conc,
                    matrix.ref_low,
                    "matrix reference interval (assay TOML [[matrices]])",
                )
            )
        elif matrix.ref_high is not None and conc > matrix.ref_high:
            flags.append(
                _flag(
                    "REF_HIGH",
                    S.WARNING,
                    f"{_fmt(conc)} {unit} is above the {matrix.name} reference interval ({rng}).",
                    "Check the sample identity and dilution; in a treated patient a high value "
                    "is suspicious.",
                    conc,
                    matrix.ref_high,
                    "matrix reference interval (assay TOML [[matrices]])",
                )
            )
    return flags


def _depleted(conc: float | None, matrix: str, below: float, unit: str) -> Flag:
    what = f"{_fmt(conc)} {unit}" if conc is not None else "Below the LLOQ, so"
    return _flag(
        "DEPLETED",
        S.INFO,
        f"{what} below {_fmt(below)} {unit} in {matrix}: consistent with asparaginase "
        "depletion. Information, not an alarm.",
        "Report as usual; confirm the patient is on asparaginase. A value this low without "
        "treatment suggests in-tube depletion (sample not quenched).",
        conc,
        below,
        "DCOG ALL-11 / COG AALL07P4 (depletion); matrices.depleted_below",
    )


# ---------------------------------------------------------------- calibration


def evaluate_calibration(
    calibration: Calibration, *, report_exclusions: bool = False
) -> list[Flag]:
    """CAL_FAIL with the reason and the excluded standards listed.

    ``report_exclusions`` adds a CAL_EXCLUDED info flag for an accepted curve
    that dropped standards; switch it on only when the pipeline replaces
    ``CALIBRATION_CODES`` after each refit (else the info flags accumulate).
    """
    excluded = [p for p in calibration.points if p.excluded and p.nominal > 0]
    listed = "; ".join(f"{p.level or p.sample_id} ({p.reason})" for p in excluded)
    names = [p.level or p.sample_id for p in excluded]
    src = "ICH M10 (calibration curve acceptance)"
    if calibration.accepted:
        if report_exclusions and excluded:
            return [
                _flag(
                    "CAL_EXCLUDED",
                    S.INFO,
                    f"Calibration v{calibration.version} accepted without {len(excluded)} "
                    f"standard(s): {listed}.",
                    "Nothing required; check those standards' preparation if it recurs.",
                    float(len(excluded)),
                    source=src,
                    version=calibration.version,
                    excluded=names,
                )
            ]
        return []
    return [
        _flag(
            "CAL_FAIL",
            S.FAIL,
            f"Calibration v{calibration.version} failed: {calibration.reason}"
            + (f" Excluded: {listed}." if listed else ""),
            "Check the calibrators (preparation, injection order); samples stay provisional "
            "until a curve is accepted.",
            source=src,
            version=calibration.version,
            excluded=names,
        )
    ]


# ---------------------------------------------------------------- one injection


def evaluate_injection(
    peaks: Mapping[str, Peak | None],
    result: Result,
    sample: Sample,
    calibration: Calibration | None,
    assay: Assay,
    history: Sequence[HistoryPoint] = (),
) -> list[Flag]:
    """All per-injection rules. ``history``: earlier injections of the run, in order."""
    point = history_point(-1, len(history) + 1, sample, peaks, result, assay)
    flags = evaluate_peaks(peaks, sample, assay)
    flags += evaluate_peak_quality(peaks, sample, result, assay)
    flags += evaluate_is([*history, point], assay)
    flags += evaluate_retention(point, peaks, history, assay)
    flags += evaluate_ion_ratio(point, peaks, history, assay)
    flags += evaluate_carryover(point, history, assay)
    flags += evaluate_range(result, sample, calibration, assay)
    return flags


# ---------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class RunEvaluation:
    """The run's verdict as of now, and the run-level flags that support it."""

    verdict: str  # "pending" | "pass" | "at risk" | "fail"
    reasons: tuple[str, ...]
    flags: tuple[Flag, ...] = ()  # run-level flags (no injection), codes in RUN_LEVEL_CODES


@dataclass(frozen=True, slots=True)
class QcTally:
    level: str
    n: int
    passed: int


def qc_tally(
    history: Sequence[HistoryPoint], calibration: Calibration, assay: Assay
) -> list[QcTally]:
    """Pass counts per QC level against the current curve (no value = failed)."""
    levels: dict[str, list[bool]] = {}
    for h in history:
        if h.sample_type is not SampleType.QC or h.status == "provisional":
            continue
        name = h.level or (f"{_fmt(h.nominal)}" if h.nominal is not None else "QC")
        if h.error or h.accuracy_pct is None:
            ok = False
        else:
            ok = abs(h.accuracy_pct - 100.0) <= qc_tolerance(h.nominal, calibration, assay)
        levels.setdefault(name, []).append(ok)
    return [QcTally(k, len(v), sum(v)) for k, v in levels.items()]


def evaluate_run(
    history: Sequence[HistoryPoint], calibration: Calibration | None, assay: Assay
) -> RunEvaluation:
    """Pass / at risk / fail with reasons, kept current as injections arrive.

    ICH M10 run acceptance on the QCs so far: >= 2/3 of all QCs and >= 50 % at
    each level within tolerance. "at risk": one more failure (overall or at any
    level) would fail the run, a file could not be read, or the IS is drifting.
    The verdict applies the rules to what has arrived: a run that fails early can
    recover as more QCs pass, exactly as the final ICH M10 count would.
    """
    lim = assay.limits
    src = "ICH M10 (run acceptance); limits.run_qc_pass_fraction / run_qc_level_pass_fraction"
    if calibration is None:
        return RunEvaluation("pending", ("no calibration curve yet",))
    if not calibration.accepted:
        reason = f"calibration v{calibration.version} rejected: {calibration.reason}"
        return RunEvaluation(
            "fail",
            (reason,),
            (
                _flag(
                    "RUN_FAIL",
                    S.FAIL,
                    f"Run fails: {reason}",
                    "Fix or re-prepare the calibrators; the run's results cannot be reported.",
                    source="ICH M10 (calibration curve acceptance)",
                ),
            ),
        )
    tallies = qc_tally(history, calibration, assay)
    n = sum(t.n for t in tallies)
    passed = sum(t.passed for t in tallies)
    fails: list[str] = []
    risks: list[str] = []
    frac, level_frac = lim.run_qc_pass_fraction - _FRACTION_TOL, lim.run_qc_level_pass_fraction
    if n and passed / n < frac:
        fails.append(f"{passed} of {n} QCs pass (< {lim.run_qc_pass_fraction:.0%} required)")
    elif n and passed / (n + 1) < frac:
        risks.append(f"{passed} of {n} QCs pass: one more failure fails the run")
    for t in tallies:
        if t.passed / t.n < level_frac - _FRACTION_TOL:
            fails.append(f"{t.level}: {t.passed} of {t.n} pass (< {level_frac:.0%})")
        elif t.passed / (t.n + 1) < level_frac - _FRACTION_TOL:
            risks.append(f"{t.level}: {t.passed} of {t.n} pass: one more failure fails the level")
    errors = sum(h.error for h in history)
    if errors:
        risks.append(f"{errors} file(s) could not be read")
    ctx = is_context(history, assay)
    if ctx.points:
        episodes = drift_episodes(ctx, assay)
        if episodes and episodes[-1].end is None:
            e = episodes[-1]
            risks.append(
                f"IS {'falling' if e.direction == 'down' else 'rising'} {e.rate_pct:+.1f} % per "
                f"injection since injection {ctx.points[e.start].order}"
            )
    cal = f"calibration v{calibration.version} accepted"
    if fails:
        return RunEvaluation(
            "fail",
            tuple(fails + risks),
            (
                _flag(
                    "RUN_FAIL",
                    S.FAIL,
                    "Run fails ICH M10 QC acceptance: " + "; ".join(fails) + ".",
                    "Do not report this run's samples; investigate the failed QCs and re-run.",
                    passed / n if n else None,
                    lim.run_qc_pass_fraction,
                    src,
                    qc=[(t.level, t.n, t.passed) for t in tallies],
                ),
            ),
        )
    if not n:
        return RunEvaluation("pending", (cal, "no QC result yet", *risks))
    summary = f"{passed} of {n} QCs pass"
    if risks:
        return RunEvaluation("at risk", (summary, *risks))
    return RunEvaluation("pass", (cal, summary))


def history_point(
    injection_id: int,
    order: int,
    sample: Sample,
    peaks: Mapping[str, Peak | None],
    result: Result,
    assay: Assay,
    error: bool = False,
) -> HistoryPoint:
    """The summary of one injection that later rules look back on."""

    def peak(role: Role) -> Peak | None:
        t = assay.by_role(role)
        return peaks.get(t.id) if t else None

    quant, qual = peak(Role.ANALYTE_QUANT), peak(Role.ANALYTE_QUAL)
    is_peak = peak(Role.IS_QUANT)
    return HistoryPoint(
        injection_id=injection_id,
        order=order,
        sample_id=sample.sample_id,
        sample_type=sample.sample_type,
        level=sample.level,
        nominal=sample.nominal,
        analyte_area=quant.area if quant else None,
        is_area=is_peak.area if is_peak else None,
        analyte_rt=quant.apex_rt if quant else None,
        is_rt=is_peak.apex_rt if is_peak else None,
        ion_ratio=qual.area / quant.area if qual is not None and quant and quant.area else None,
        area_ratio=result.area_ratio,
        conc_vial=result.conc_vial,
        accuracy_pct=result.accuracy_pct,
        status=result.status,
        error=error,
    )
