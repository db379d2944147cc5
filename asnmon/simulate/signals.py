"""Signals of the clean mode, and the pieces both modes share (EMG, time axis, areas).

The clean mode: every trace acquired on one 0.2 s grid for the whole run, a
smooth EMG peak, Gaussian read noise plus shot noise. Kept byte-for-byte as it
was so that tests pinning its numbers keep their meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.special import erfc, erfcx

from asnmon.records import FloatArray, SampleType
from asnmon.simulate.config import LLOQ, TRACES, SimConfig, Trace
from asnmon.simulate.plan import PlannedInjection


@dataclass(frozen=True, slots=True)
class AcquiredTrace:
    """One trace as the instrument stores it: its own time points (a scheduled window)."""

    trace: Trace
    rt: FloatArray  # minutes
    intensity: FloatArray  # counts per second


@dataclass(frozen=True, slots=True)
class TrueSignal:
    """What an injection's file holds, noise-free: the answers an integrator is judged on."""

    analyte_area: float  # asn quantifier, whole peak, counts x min
    is_area: float  # IS quantifier, whole peak
    points_across: int  # acquired points with the true analyte signal > 5 % of its apex
    is_window_end: float  # min, last acquired IS point
    is_end_pct: float  # true IS signal there, % of its apex
    qual_window_start: float  # min, first acquired analyte-qualifier point
    qual_start_pct: float  # true qualifier signal there, % of its apex

    @property
    def area_ratio(self) -> float | None:
        return self.analyte_area / self.is_area if self.is_area > 0 else None


@cache
def _time_axis(run_minutes: float, cycle_s: float) -> FloatArray:
    n = round(run_minutes * 60 / cycle_s) + 1
    t = np.arange(n, dtype=np.float64) * (cycle_s / 60.0)
    t.setflags(write=False)
    return t


def time_axis(config: SimConfig) -> FloatArray:
    """The acquisition's time points in minutes (read-only, shared between files)."""
    return _time_axis(config.run_minutes, config.cycle_s)


def _emg(t: FloatArray, mu: float, sigma: float, tau: float) -> FloatArray:
    """Exponentially modified Gaussian of unit area (per minute), overflow-safe."""
    x = t - mu
    z = (sigma / tau - x / sigma) / np.sqrt(2.0)
    with np.errstate(over="ignore", under="ignore"):
        stable = np.exp(-0.5 * (x / sigma) ** 2) * erfcx(np.maximum(z, 0.0))
        tail = np.exp(0.5 * (sigma / tau) ** 2 - x / tau) * erfc(np.minimum(z, 0.0))
    return np.where(z >= 0, stable, tail) / (2.0 * tau)


@cache
def _apex_offset(sigma: float, tau: float) -> float:
    """How far the EMG's apex lies after mu: subtracted so apexes land on the set RT."""
    t = np.linspace(-5 * sigma, 5 * sigma + 10 * tau, 20001)
    return float(t[np.argmax(_emg(t, 0.0, sigma, tau))])


def _areas(inj: PlannedInjection, config: SimConfig, rng: np.random.Generator) -> list[float]:
    """Peak area per trace (same order as TRACES), counts x min."""
    is_area = config.is_area * inj.is_factor * max(rng.normal(1.0, config.is_cv), 0.05)
    ratio = config.slope * inj.true_conc_vial + config.intercept
    ratio *= max(rng.normal(1.0, config.ratio_cv), 0.05)
    if inj.sample.sample_type == SampleType.DOUBLE_BLANK:
        ratio = 0.0
    analyte = ratio * is_area
    if not inj.has_is:
        is_area = 0.0
        analyte = 0.0
        if inj.carryover_pct is not None:  # what the ULOQ left behind in the needle/column
            lloq_response = (config.slope * LLOQ + config.intercept) * config.is_area
            analyte = lloq_response * inj.carryover_pct / 100 * rng.normal(1.0, 0.05)
            is_area = config.is_area * 0.002 * inj.is_factor
    qual = analyte * config.ion_ratio * rng.normal(1.0, config.ion_ratio_cv)
    is_qual = is_area * config.is_ion_ratio * rng.normal(1.0, config.ion_ratio_cv)
    if inj.endogenous:
        orn = config.is_area * float(rng.uniform(0.1, 0.8)) * inj.is_factor
        asp = config.is_area * float(rng.uniform(0.05, 0.4)) * inj.is_factor
    else:
        orn = asp = 0.0
    return [analyte, qual, is_area, is_qual, orn, orn * 0.6, asp, asp * 0.7]


def render_traces(inj: PlannedInjection, config: SimConfig) -> list[FloatArray]:
    """Intensity arrays (counts) for TRACES, on the time axis of ``config``.

    The noise depends on (seed, position) only, not on the faults, so a faulted
    file differs from its clean twin by the fault alone.
    """
    rng = np.random.default_rng((config.seed, inj.position))
    t = time_axis(config)
    areas = _areas(inj, config, rng)
    shift = inj.rt_shift + rng.normal(0.0, config.rt_jitter)
    offset = _apex_offset(config.peak_sigma, config.peak_tau)
    shapes: dict[float, FloatArray] = {}
    out: list[FloatArray] = []
    for trace, area in zip(TRACES, areas, strict=True):
        if trace.rt not in shapes:
            mu = trace.rt + shift - offset
            shapes[trace.rt] = _emg(t, mu, config.peak_sigma, config.peak_tau)
        signal = area * shapes[trace.rt]
        if trace.name == "asp_quant":  # Asn M+1 (13C) passes Q1 134.05 and gives m/z 74
            signal = signal + 0.02 * areas[0] * shapes[TRACES[0].rt]
        level = config.baseline * (1.0 + 0.1 * t / config.run_minutes) + signal
        noisy = level + rng.normal(0.0, 1.0, t.size) * np.sqrt(config.noise_sd**2 + level)
        out.append(np.maximum(noisy, 0.0))
    return out


def render_clean(inj: PlannedInjection, config: SimConfig) -> tuple[AcquiredTrace, ...]:
    t = time_axis(config)
    return tuple(
        AcquiredTrace(trace, t, y)
        for trace, y in zip(TRACES, render_traces(inj, config), strict=True)
    )


def true_clean(inj: PlannedInjection, config: SimConfig) -> TrueSignal:
    """The clean mode's areas: the same draws render_traces makes first."""
    rng = np.random.default_rng((config.seed, inj.position))
    areas = _areas(inj, config, rng)
    shift = inj.rt_shift + rng.normal(0.0, config.rt_jitter)
    t = time_axis(config)
    mu = TRACES[0].rt + shift - _apex_offset(config.peak_sigma, config.peak_tau)
    shape = _emg(t, mu, config.peak_sigma, config.peak_tau)
    top = float(shape.max())
    return TrueSignal(
        analyte_area=areas[0],
        is_area=areas[2],
        points_across=int(np.count_nonzero(shape > 0.05 * top)) if top > 0 else 0,
        is_window_end=float(t[-1]),
        is_end_pct=100.0 * float(shape[-1]) / top if top > 0 else 0.0,
        qual_window_start=float(t[0]),
        qual_start_pct=100.0 * float(shape[0]) / top if top > 0 else 0.0,
    )
