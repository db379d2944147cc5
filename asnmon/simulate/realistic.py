"""The realistic mode: traces as real SCIEX MRM files show them, measured, not imagined.

Every constant below comes from ``benchmarks/real_noise.py`` run on the shared
real files (``../shared/realdata/``): ``smartpeak_misc/RawDataProcessor_mzML_1.mzML``
(QTRAP 5500, negative mode, scheduled MRM: asn 131>114, qualifier 131>95, 13C IS
135>118) and the SGI standards ``sgi_cations_aa_mrm/Stds_*uM.mzML`` (QTRAP 5500,
positive mode, 3,288 points). What they show, and what is rendered here:

- **counts**: intensities are ions x (1 / dwell): steps of 66.1 cps on the asn
  and IS traces (83 cps median over the file's traces, 100 cps in the SGI files).
- **noise grows with the signal**: ``sigma^2 = q * I + (c * I)^2`` fitted over all
  313 SRM traces of the smartpeak file gives q = 131 cps (1.58 x the quantum:
  more than Poisson) and c = 0.037 (spray flicker; 0.056-0.063 on the tops of
  the asn and IS peaks, 0.084 on the qualifier's); the SGI files give q = 286,
  c = 0.012. The noise of one compound's traces moves together (correlation
  of relative residuals 0.51 between the real asn and IS tops, 15 points; 0.34
  between the SGI ``_Iso`` file's isotopologues, 473 points), that of
  different compounds does not (0.02 over 33,745 points).
- **sampling**: 0.72 s median between points across the asn peak, 0.45-0.86 s
  over the file as scheduled windows open and close; 15-20 points above 5 % of
  the apex (SGI, unscheduled: 0.345 s, 25-33 points).
- **shape**: an EMG fitted to 135>118 and 131>114 (baseline held at 250 cps):
  sigma 0.0096-0.0106 min, tau 0.069-0.071 min -- a steep rise, a long tail.
- **scheduled windows**: each trace is acquired only in its window; the IS
  window ends at 1.18 min while its peak (apex 0.947) is at 4 % of its apex; the
  qualifier's first non-zero point comes when the quantifier is at 40 % of its
  apex; the asn trace starts at 6 % of its apex, decaying, and a 4-7 % plateau
  sits 0.04-0.17 min before the peak on both asn and IS.

Randomness: an injection's peak parameters and scenario draws come from
``(seed, position)`` -- drawn in a fixed order whichever scenarios are on, so
switching one on changes only what it touches -- its noise from
``(seed, position, 7[, trace])``, the cycle times from ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from asnmon.records import FloatArray
from asnmon.simulate.config import TRACES, SimConfig
from asnmon.simulate.plan import PlannedInjection
from asnmon.simulate.signals import AcquiredTrace, TrueSignal, _apex_offset, _areas, _emg

ANALYTE, QUAL, IS, IS_QUAL = 0, 1, 2, 3  # indices into TRACES


@dataclass(frozen=True, slots=True)
class Realism:
    """The measured model (module docstring for the measurements behind each number)."""

    cycle_s: float = 0.72  # s between points, median across the real asn peak
    cycle_swing: float = 0.12  # +/- slow variation (0.60-0.86 s across the real peak)
    cycle_jitter: float = 0.01  # relative point-to-point jitter of the spacing
    low_points_cycle_s: float = 1.15  # "low-points": about 12 points above 5 % of the apex
    sigma: float = 0.010  # min, EMG Gaussian part (fit: 0.0096-0.0106)
    tau: float = 0.070  # min, EMG tail (fit: 0.069-0.071)
    quantum: float = 66.1  # cps of one ion on the asn and IS traces
    poisson_gain: float = 1.58  # variance / (quantum x level): fitted q 131 cps / quantum 83
    flicker: float = 0.037  # relative spray noise per point (fit over all traces)
    spiky_flicker: float = 0.063  # "spiky": the top half of the real asn peak
    flicker_common: float = 0.40  # share of flicker variance common to one compound's traces
    baseline: float = 250.0  # cps, quiet level beside the real asn and IS peaks
    # [chosen] the clean mode's IS apex; within the SGI Asn standards' 1e5-4e6 cps
    is_apex: float = 1.0e6
    window_before: float = 0.30  # min before the method RT each window opens (real: 0.28)
    window_after: float = 0.45  # min after it closes (real asn: 0.39)
    is_end_pct: tuple[float, float] = (2.0, 8.0)  # "truncated-is" cut (real: 4 %)
    qual_start_pct: tuple[float, float] = (10.0, 40.0)  # "late-qualifier" start (real: ~10-40 %)
    interferent_offset: tuple[float, float] = (0.18, 0.30)  # min from the Asn apex, either side
    interferent_height: tuple[float, float] = (0.3, 1.0)  # x the analyte's area
    drift_start_pct: tuple[float, float] = (2.0, 6.0)  # decaying start (real: 6 %)
    hump_pct: tuple[float, float] = (2.0, 6.0)  # broad hump before the peak (real: 4-7 %)
    hump_before: tuple[float, float] = (0.10, 0.18)  # min before the apex
    slope_pct: float = 5.0  # +/- % of the apex per minute


REALISM = Realism()


@cache
def _unit_apex(sigma: float, tau: float) -> float:
    """Height of the unit-area EMG: turns the measured apex into an area."""
    t = np.linspace(-5 * sigma, 5 * sigma + 10 * tau, 40001)
    return float(_emg(t, 0.0, sigma, tau).max())


def cycle_s(config: SimConfig, realism: Realism = REALISM) -> float:
    return realism.low_points_cycle_s if "low-points" in config.scenarios else realism.cycle_s


@cache
def _axis(run_minutes: float, cycle: float, swing: float, jitter: float, seed: int) -> FloatArray:
    rng = np.random.default_rng((seed, 0xC1C))
    n = int(run_minutes * 60 / (cycle * (1 - swing))) + 2
    k = np.arange(n)
    period = max(8.0, 90.0 / cycle)  # the cycle changes over about 1.5 min
    dt = cycle * (1 + swing * np.sin(2 * np.pi * k / period + rng.uniform(0, 2 * np.pi)))
    dt *= 1 + jitter * rng.standard_normal(n)
    t = np.concatenate(([0.0], np.cumsum(dt) / 60.0))
    t = t[t <= run_minutes]
    t.setflags(write=False)
    return t


def realistic_axis(config: SimConfig, realism: Realism = REALISM) -> FloatArray:
    """The instrument's cycle times (min): every trace's points are a window of these."""
    return _axis(
        config.run_minutes,
        cycle_s(config, realism),
        realism.cycle_swing,
        realism.cycle_jitter,
        config.seed,
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """One injection's noise-free signal: areas, apex, windows, interferent, drift."""

    areas: tuple[float, ...]  # per TRACES, counts x min
    mu: float  # EMG location of the Asn/IS peak (apex at mu + offset)
    windows: tuple[tuple[float, float], ...]  # per TRACES, acquisition (start, end), min
    is_end_pct: float
    qual_start_pct: float
    interferent: tuple[float, float]  # (offset min, area x analyte); area 0 = none
    drift: tuple[tuple[float, float, float, float, float], ...]  # per trace: see _background
    base: tuple[float, ...]  # per trace quiet level, cps


def _time_at(shape_t: FloatArray, shape: FloatArray, frac: float, after: bool) -> float:
    """Time on the tail (after) or the rise (before the apex) where shape = frac x apex."""
    k = int(np.argmax(shape))
    top = shape[k]
    if after:
        below = np.flatnonzero(shape[k:] <= frac * top)
        return float(shape_t[k + int(below[0])]) if below.size else float(shape_t[-1])
    below = np.flatnonzero(shape[: k + 1] <= frac * top)
    return float(shape_t[int(below[-1])]) if below.size else float(shape_t[0])


def _plan(inj: PlannedInjection, config: SimConfig, realism: Realism) -> _Plan:
    rng = np.random.default_rng((config.seed, inj.position))
    clean_areas = _areas(inj, config, rng)  # the clean mode's proportions, same draws
    scale = realism.is_apex / _unit_apex(realism.sigma, realism.tau) / config.is_area
    areas = tuple(a * scale for a in clean_areas)
    shift = inj.rt_shift + rng.normal(0.0, config.rt_jitter)
    offset = _apex_offset(realism.sigma, realism.tau)
    mu = TRACES[ANALYTE].rt + shift - offset
    # scenario draws, always in this order
    is_end = float(rng.uniform(*realism.is_end_pct))
    qual_start = float(rng.uniform(*realism.qual_start_pct))
    side = 1.0 if rng.random() < 0.5 else -1.0
    i_off = side * float(rng.uniform(*realism.interferent_offset))
    i_area = float(rng.uniform(*realism.interferent_height))
    drift = tuple(
        (
            float(rng.uniform(*realism.drift_start_pct)),
            float(rng.uniform(*realism.hump_pct)),
            float(rng.uniform(*realism.hump_before)),
            float(rng.uniform(-realism.slope_pct, realism.slope_pct)),
            float(rng.uniform(0.02, 0.05)),  # min, decay of the elevated start
        )
        for _ in TRACES
    )
    base = tuple(realism.baseline * float(rng.uniform(0.7, 1.3)) for _ in TRACES)

    windows = [
        (
            max(tr.rt - realism.window_before, 0.0),
            min(tr.rt + realism.window_after, config.run_minutes),
        )
        for tr in TRACES
    ]
    fine = np.linspace(mu - 0.1, mu + 1.0, 11001)
    shape = _emg(fine, mu, realism.sigma, realism.tau)
    if "truncated-is" in config.scenarios:
        end = _time_at(fine, shape, is_end / 100, after=True)
        windows[IS] = (windows[IS][0], end)
        windows[IS_QUAL] = (windows[IS_QUAL][0], end)
    if "late-qualifier" in config.scenarios:
        windows[QUAL] = (_time_at(fine, shape, qual_start / 100, after=False), windows[QUAL][1])
    return _Plan(
        areas=areas,
        mu=mu,
        windows=tuple(windows),
        is_end_pct=is_end,
        qual_start_pct=qual_start,
        interferent=(i_off, i_area if "interferent" in config.scenarios else 0.0),
        drift=drift,
        base=base,
    )


def _background(
    t: FloatArray,
    base: float,
    drift: tuple[float, float, float, float, float],
    apex_rt: float,
    apex_height: float,
    start: float,
) -> FloatArray:
    """Quiet level, plus (scenario "drift") a decaying start, a hump and a slope."""
    start_pct, hump_pct, hump_before, slope_pct, decay = drift
    ref = max(apex_height, 20.0 * base)  # a tiny peak still sees the column's drift
    level = (
        base
        + start_pct / 100 * ref * np.exp(-(t - start) / decay)
        + hump_pct / 100 * ref * np.exp(-0.5 * ((t - apex_rt + hump_before) / 0.03) ** 2)
        + slope_pct / 100 * ref * (t - apex_rt)
    )
    return np.maximum(level, 0.0)


def _signals(
    t: FloatArray, plan: _Plan, config: SimConfig, realism: Realism
) -> list[tuple[FloatArray, FloatArray]]:
    """Per trace: (noise-free peak signal, noise-free background) on ``t``."""
    sigma, tau = realism.sigma, realism.tau
    offset = _apex_offset(sigma, tau)
    unit = _unit_apex(sigma, tau)
    apex_rt = plan.mu + offset
    shapes: dict[float, FloatArray] = {}
    out = []
    for i, (trace, area) in enumerate(zip(TRACES, plan.areas, strict=True)):
        mu = plan.mu + (trace.rt - TRACES[ANALYTE].rt)  # the neighbours move with Asn
        if mu not in shapes:
            shapes[mu] = _emg(t, mu, sigma, tau)
        signal = area * shapes[mu]
        if trace.name == "asp_quant":  # Asn M+1 (13C) passes Q1 134.05 and gives m/z 74
            signal = signal + 0.02 * plan.areas[ANALYTE] * shapes[plan.mu]
        i_off, i_area = plan.interferent
        if i_area > 0 and i <= QUAL:  # shares the Asn precursor and both its fragments
            frac = 1.0 if i == ANALYTE else 0.2  # its own, different ion ratio
            size = i_area * max(plan.areas[ANALYTE], 0.02 * plan.areas[IS])
            signal = signal + frac * size * _emg(t, plan.mu + i_off, sigma, tau)
        if "drift" in config.scenarios:
            background = _background(
                t,
                plan.base[i],
                plan.drift[i],
                trace.rt + (apex_rt - TRACES[0].rt),
                area * unit,
                plan.windows[i][0],
            )
        else:
            background = np.full(t.size, plan.base[i])
        out.append((signal, background))
    return out


def render_realistic(
    inj: PlannedInjection, config: SimConfig, realism: Realism = REALISM
) -> tuple[AcquiredTrace, ...]:
    """Every trace on its scheduled window of the cycle axis, with the measured noise."""
    axis = realistic_axis(config, realism)
    plan = _plan(inj, config, realism)
    c = realism.spiky_flicker if "spiky" in config.scenarios else realism.flicker
    # the spray, seen alike by the traces of one compound (Asn and its IS; Orn; Asp)
    spray = np.random.default_rng((config.seed, inj.position, 7)).standard_normal((3, axis.size))
    compound = (0, 0, 0, 0, 1, 1, 2, 2)  # per TRACES
    rho = realism.flicker_common
    q = realism.quantum * realism.poisson_gain
    out = []
    for i, (trace, (lo, hi), (signal, background)) in enumerate(
        zip(TRACES, plan.windows, _signals(axis, plan, config, realism), strict=True)
    ):
        rng = np.random.default_rng((config.seed, inj.position, 7, i))  # one stream per trace
        idx = np.flatnonzero((axis >= lo) & (axis <= hi))
        mean = (signal + background)[idx]
        own = rng.standard_normal(idx.size)
        e = np.sqrt(rho) * spray[compound[i], idx] + np.sqrt(1 - rho) * own
        flickered = mean * np.maximum(1.0 + c * e, 0.0)
        ions = rng.poisson(flickered / q)
        counts = np.round(ions * realism.poisson_gain) * realism.quantum
        out.append(AcquiredTrace(trace, axis[idx], counts.astype(np.float64)))
    return tuple(out)


def true_realistic(
    inj: PlannedInjection, config: SimConfig, realism: Realism = REALISM
) -> TrueSignal:
    plan = _plan(inj, config, realism)
    axis = realistic_axis(config, realism)
    sigma, tau = realism.sigma, realism.tau

    def pct(at: float) -> float:
        top = _unit_apex(sigma, tau)
        return 100.0 * float(_emg(np.array([at]), plan.mu, sigma, tau)[0]) / top

    lo, hi = plan.windows[ANALYTE]
    acquired = axis[(axis >= lo) & (axis <= hi)]
    shape = _emg(acquired, plan.mu, sigma, tau)
    is_t = axis[(axis >= plan.windows[IS][0]) & (axis <= plan.windows[IS][1])]
    q_t = axis[(axis >= plan.windows[QUAL][0]) & (axis <= plan.windows[QUAL][1])]
    return TrueSignal(
        analyte_area=plan.areas[ANALYTE],
        is_area=plan.areas[IS],
        points_across=int(np.count_nonzero(shape > 0.05 * _unit_apex(sigma, tau))),
        is_window_end=float(is_t[-1]) if is_t.size else float("nan"),
        is_end_pct=pct(float(is_t[-1])) if is_t.size else float("nan"),
        qual_window_start=float(q_t[0]) if q_t.size else float("nan"),
        qual_start_pct=pct(float(q_t[0])) if q_t.size else float("nan"),
    )


def true_background(
    inj: PlannedInjection, config: SimConfig, realism: Realism = REALISM
) -> list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]]:
    """Per trace (time, its own peak, other peaks on it, baseline), noise-free: for oracles."""
    plan = _plan(inj, config, realism)
    axis = realistic_axis(config, realism)
    sigma, tau = realism.sigma, realism.tau
    out = []
    for i, ((lo, hi), (signal, background)) in enumerate(
        zip(plan.windows, _signals(axis, plan, config, realism), strict=True)
    ):
        m = (axis >= lo) & (axis <= hi)
        own = plan.areas[i] * _emg(axis, plan.mu, sigma, tau) if i <= IS_QUAL else signal
        out.append((axis[m], own[m], (signal - own)[m], background[m]))
    return out
