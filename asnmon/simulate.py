"""A simulated triple-quadrupole run: mzML files written as an instrument writes them.

The demo, the tests and the benchmarks need runs with *known* answers, so the
simulator plans a whole sequence first (``plan_run``: pure, seeded) and then
renders each injection to mzML with psims, the PSI writer, in msconvert's
layout for SCIEX SRM data. Faults are switched on one by one (``Faults``) and
every injection's ground truth records which faults touched it.

Randomness: the plan (concentrations, sample mix) comes from ``config.seed``;
each file's noise from ``(seed, position)``, so one file can be rewritten alone
and come out byte-identical. Timestamps derive from ``config.start_time``
unless real-time pacing is requested, then they are the wall clock.

Fault specs (``parse_fault``; ``N`` = injection position, 1-based)::

    is-drift[:N[:PCT]]        IS response x (1 - PCT/100)^k from injection N (k = N' - N)
    rt-step[:N[:MIN]]         every peak shifted by +MIN minutes from injection N on
    short[:N]                 half-volume injection: analyte and IS areas x 0.3
    over-curve                a media sample at 900 µM, undiluted (above the ULOQ)
    depleted                  a plasma sample on asparaginase, 0.4 µM (below the LLOQ)
    biased-qc[:LEVEL[:PCT[:all]]]  one QC of LEVEL (or all of them) reads +PCT %
    carryover[:PCT]           the blank after the ULOQ shows PCT % of the LLOQ response
    truncated[:N]             injection N's file cut at 60 % of its bytes
    junk[:N]                  injection N's file is random bytes named .mzML
    broken-curve              first calibration set's levels 2-7 prepared in reverse order
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from psims.controlled_vocabulary.controlled_vocabulary import ControlledVocabulary, OBOCache
from psims.mzml.writer import IndexedMzMLWriter, PlainMzMLWriter
from scipy.special import erfc, erfcx

from asnmon.records import FloatArray, Sample, SampleType
from asnmon.worklist import COLUMNS as WORKLIST_COLUMNS

CAL_LEVELS: tuple[tuple[str, float], ...] = (
    ("CAL01", 1.0),
    ("CAL02", 2.5),
    ("CAL03", 10.0),
    ("CAL04", 25.0),
    ("CAL05", 50.0),
    ("CAL06", 100.0),
    ("CAL07", 250.0),
    ("CAL08", 500.0),
)
QC_LEVELS: tuple[tuple[str, float], ...] = (("QC-L", 3.0), ("QC-M", 200.0), ("QC-H", 400.0))
LLOQ = CAL_LEVELS[0][1]

WORKLIST_HEADER = tuple(c for c in WORKLIST_COLUMNS if c != "position")  # the reader's own
TRUTH_HEADER = (
    "file",
    "sample_id",
    "true_conc_vial",
    "true_conc",
    "is_factor",
    "rt_shift",
    "faults",
)


@dataclass(frozen=True, slots=True)
class Trace:
    """One SRM transition the instrument acquires (the assay's four plus neighbours)."""

    name: str
    q1: float
    q3: float
    rt: float  # apex, minutes
    ce: float  # collision energy, eV


# Order = transition index in the chromatogram ids, as in the acquisition method.
TRACES: tuple[Trace, ...] = (
    Trace("asn_quant", 133.1, 87.1, 3.2, 15.0),
    Trace("asn_qual", 133.1, 74.0, 3.2, 21.0),
    Trace("is_quant", 139.1, 92.1, 3.2, 15.0),
    Trace("is_qual", 139.1, 77.0, 3.2, 21.0),
    Trace("orn_quant", 133.1, 70.1, 2.6, 25.0),  # ornithine shares the Asn precursor
    Trace("orn_qual", 133.1, 116.1, 2.6, 12.0),
    Trace("asp_quant", 134.05, 74.0, 3.55, 19.0),  # Asn's 13C isotope falls in this Q1
    Trace("asp_qual", 134.05, 88.0, 3.55, 13.0),
)

FAULT_SPECS = (
    "is-drift[:N[:PCT]]",
    "rt-step[:N[:MIN]]",
    "short[:N]",
    "over-curve",
    "depleted",
    "biased-qc[:LEVEL[:PCT[:all]]]",
    "carryover[:PCT]",
    "truncated[:N]",
    "junk[:N]",
    "broken-curve",
)


@dataclass(frozen=True, slots=True)
class Faults:
    """Faults to inject; each is off by default. Positions are 1-based injection numbers."""

    # (from injection N, % loss per injection): a sensitivity loss (source fouling), so the
    # analyte falls with the IS and the area ratio stays true; only the IS checks can see it
    is_drift: tuple[int, float] | None = None
    short_injection: int | None = None  # position of a half-volume injection (areas x0.3)
    rt_step: tuple[int, float] | None = None  # (from injection N, +minutes)
    over_curve: bool = False  # a 900 µM undiluted media sample
    depleted: bool = False  # a 0.4 µM plasma sample (asparaginase)
    biased_qc: tuple[str, float, bool] | None = None  # (level, +%, all QCs of that level?)
    carryover: float | None = None  # % of the LLOQ response in the blank after the ULOQ
    truncated: int | None = None  # position whose file is cut at 60 % of its bytes
    junk: int | None = None  # position whose file is random bytes
    broken_curve: bool = False  # first calibrator set prepared in the wrong order


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes a simulated run; the defaults give a realistic clean run.

    CLI mapping: ``--samples`` -> n_samples, ``--seed`` -> seed, ``--fault SPEC``
    (repeatable) -> ``apply_faults(config, specs)``, ``--seconds`` -> time_unit.
    """

    seed: int = 7  # plan and noise; same seed, same bytes
    n_samples: int = 60  # study samples (plasma, media, lysates), >= 1
    qc_every: int = 15  # a QC-L/M/H set after every this many samples (plus start and end)
    plasma_fraction: float = 0.5  # the rest are culture pairs (media + lysate)
    faults: Faults = field(default_factory=Faults)
    # detector and chromatography
    is_area: float = 1.5e5  # nominal IS peak area, counts x min (apex ~ 1e6 counts)
    is_cv: float = 0.04  # injection-to-injection IS response variation
    slope: float = 0.005  # area ratio per µM in the vial
    intercept: float = 0.0005  # area ratio at 0 µM (endogenous traces in the surrogate matrix)
    ratio_cv: float = 0.03  # analytical imprecision of the area ratio
    ion_ratio: float = 0.45  # asn 133.1>74.0 / 133.1>87.1
    is_ion_ratio: float = 0.5  # IS 139.1>77.0 / 139.1>92.1
    ion_ratio_cv: float = 0.03
    peak_sigma: float = 0.06  # min, Gaussian part of the EMG
    peak_tau: float = 0.03  # min, exponential tail of the EMG
    rt_jitter: float = 0.01  # min, SD of the per-injection apex shift
    baseline: float = 300.0  # counts, chemical background offset
    noise_sd: float = 40.0  # counts, Gaussian read noise (shot noise comes on top)
    run_minutes: float = 6.0
    cycle_s: float = 0.2  # one point per transition per cycle: 6 min -> 1,801 points
    time_unit: Literal["minute", "second"] = "minute"
    include_tic: bool = True  # msconvert writes a TIC first
    indexed: bool = True  # <indexedmzML> with offsets and SHA-1, as msconvert writes
    # metadata
    start_time: str = "2024-05-06T08:00:00Z"  # first injection's startTimeStamp
    injection_minutes: float = 8.0  # cycle between injections, for the timestamps
    run_name: str = "ASNSIM"  # prefix of each file's run id
    instrument: str = "Triple Quad 6500+"  # a PSI-MS instrument model term


@dataclass(frozen=True, slots=True)
class PlannedInjection:
    """One injection: its worklist row and what truly went into the vial."""

    position: int
    sample: Sample  # the worklist row (file = stem)
    true_conc_vial: float  # µM of asparagine in the vial
    true_conc: float  # x dilution
    is_factor: float  # fault multiplier of the IS response (1 = none; random CV on top)
    rt_shift: float  # fault shift of every apex, min (random jitter on top)
    faults: tuple[str, ...]
    has_is: bool  # blanks have no internal standard
    endogenous: bool  # plasma/media/lysate: ornithine and aspartate present
    carryover_pct: float | None  # blank after the ULOQ: analyte as % of the LLOQ response
    output: Literal["mzml", "truncated", "junk"] = "mzml"

    @property
    def stem(self) -> str:
        return self.sample.file


@dataclass(frozen=True, slots=True)
class SimulatedRun:
    out_dir: Path
    paths: tuple[Path, ...]  # files written, in acquisition order
    worklist_path: Path
    truth_path: Path
    injections: tuple[PlannedInjection, ...]
    seconds: float  # wall time spent writing


# ---------------------------------------------------------------- faults


def parse_fault(spec: str) -> dict[str, Any]:
    """Turn one ``--fault`` string into ``Faults`` field values; ValueError names valid specs."""
    name, *args = spec.strip().split(":")
    name = name.lower()
    valid = "valid fault specs: " + ", ".join(FAULT_SPECS)

    def num(i: int, default: float, kind: type = float, signed: bool = False) -> Any:
        if len(args) <= i or args[i] == "":
            return kind(default)
        try:
            value = kind(args[i])
        except ValueError:
            raise ValueError(
                f"fault {spec!r}: {args[i]!r} is not a valid {kind.__name__}; {valid}"
            ) from None
        if value < 0 and not signed:
            raise ValueError(f"fault {spec!r}: {args[i]!r} must not be negative; {valid}")
        return value

    def arity(n: int) -> None:
        if len(args) > n:
            raise ValueError(f"fault {spec!r} takes at most {n} argument(s); {valid}")

    if name == "is-drift":
        arity(2)
        return {"is_drift": (num(0, 40, int), num(1, 2.5))}
    if name == "rt-step":
        arity(2)
        return {"rt_step": (num(0, 30, int), num(1, 0.2))}
    if name == "short":
        arity(1)
        return {"short_injection": num(0, 25, int)}
    if name in ("over-curve", "depleted", "broken-curve"):
        arity(0)
        return {name.replace("-", "_"): True}
    if name == "biased-qc":
        arity(3)
        level = args[0] if args and args[0] else "QC-M"
        if level not in dict(QC_LEVELS):
            raise ValueError(
                f"fault {spec!r}: QC level must be one of "
                f"{', '.join(dict(QC_LEVELS))}, not {level!r}; {valid}"
            )
        if len(args) > 2 and args[2] not in ("all", "one"):
            raise ValueError(f"fault {spec!r}: the last argument must be 'all' or 'one'; {valid}")
        return {"biased_qc": (level, num(1, 25.0, signed=True), len(args) > 2 and args[2] == "all")}
    if name == "carryover":
        arity(1)
        return {"carryover": num(0, 40.0)}
    if name == "truncated":
        arity(1)
        return {"truncated": num(0, 20, int)}
    if name == "junk":
        arity(1)
        return {"junk": num(0, 35, int)}
    raise ValueError(f"unknown fault {spec!r}; {valid}")


def apply_faults(config: SimConfig, specs: Iterable[str]) -> SimConfig:
    """``config`` with every fault spec switched on (later specs win)."""
    updates: dict[str, Any] = {}
    for spec in specs:
        updates.update(parse_fault(spec))
    return dataclasses.replace(config, faults=dataclasses.replace(config.faults, **updates))


# ---------------------------------------------------------------- planning


def _sample(stem: str, sample_id: str, kind: SampleType, position: int, **kw: Any) -> Sample:
    return Sample(file=stem, sample_id=sample_id, sample_type=kind, position=position, **kw)


def _study_samples(config: SimConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Plasma singletons and culture pairs (media + lysate of one culture), shuffled."""
    n_pairs = round(config.n_samples * (1.0 - config.plasma_fraction) / 2)
    n_plasma = config.n_samples - 2 * n_pairs
    units: list[list[dict[str, Any]]] = []
    for _ in range(n_plasma):
        conc = float(np.clip(rng.normal(55.0, 10.0), 28.0, 90.0))
        units.append([{"matrix": "plasma", "conc": conc, "dilution": 1.0}])
    counts = {"ctrl": 0, "asnase": 0}
    for i in range(n_pairs):
        cond = "asnase" if i % 3 == 2 else "ctrl"
        counts[cond] += 1
        group = f"{cond}-{counts[cond]}"
        if cond == "ctrl":
            media = float(rng.uniform(300.0, 420.0))  # RPMI 380 µM, some consumed
            dilution = 1.0 if rng.random() < 0.15 and media < 450 else 2.0
            per_mg = float(rng.uniform(8.0, 25.0))  # nmol/mg protein
        else:
            media = float(rng.uniform(15.0, 120.0))  # asparaginase-conditioned
            dilution = 1.0
            per_mg = float(rng.uniform(1.0, 5.0))
        mg = round(float(rng.uniform(0.1, 0.5)), 3)
        volume = 100.0
        lysate = per_mg * mg / (volume * 1e-6) / 1e3  # nmol / L -> µM
        units.append(
            [
                {"matrix": "media", "conc": media, "dilution": dilution, "group": group},
                {
                    "matrix": "intracellular",
                    "conc": lysate,
                    "dilution": 1.0,
                    "group": group,
                    "normalizer": mg,
                    "normalizer_unit": "mg protein",
                    "volume_ul": volume,
                },
            ]
        )
    order = rng.permutation(len(units))
    return [s for i in order for s in units[int(i)]]


def plan_run(config: SimConfig) -> list[PlannedInjection]:
    """The whole sequence with true concentrations and faults; pure and seeded."""
    if config.n_samples < 1:
        raise ValueError(f"n_samples must be >= 1; got {config.n_samples}")
    if config.qc_every < 1:
        raise ValueError(f"qc_every must be >= 1; got {config.qc_every}")
    if not 0.0 <= config.plasma_fraction <= 1.0:
        raise ValueError(f"plasma_fraction must be within 0-1; got {config.plasma_fraction}")
    if config.time_unit not in ("minute", "second"):
        raise ValueError(f"time_unit must be 'minute' or 'second'; got {config.time_unit!r}")
    rng = np.random.default_rng(config.seed)
    study = _study_samples(config, rng)
    f = config.faults
    taken: set[int] = set()
    for wanted, where, replacement in (
        (
            f.over_curve,
            1 / 3,
            {"matrix": "media", "conc": 900.0, "dilution": 1.0, "fault": "over-curve"},
        ),
        (
            f.depleted,
            1 / 2,
            {"matrix": "plasma", "conc": 0.4, "dilution": 1.0, "fault": "depleted"},
        ),
    ):
        if wanted:  # replaces a plasma sample, so n_samples and culture pairs stay whole
            start = int(len(study) * where)
            free = [i for i in range(len(study)) if i not in taken]
            plasma = [i for i in free if i >= start and study[i]["matrix"] == "plasma"]
            at = plasma[0] if plasma else free[min(start, len(free) - 1)]
            study[at] = replacement
            taken.add(at)

    rows: list[dict[str, Any]] = []  # in acquisition order, before numbering

    def add(sample_id: str, kind: SampleType, conc: float = 0.0, **kw: Any) -> None:
        rows.append({"sample_id": sample_id, "kind": kind, "conc": conc, **kw})

    def cal_set(suffix: str, broken: bool) -> None:
        nominal = [c for _, c in CAL_LEVELS]
        true = nominal[:1] + nominal[1:-1][::-1] + nominal[-1:] if broken else nominal
        for (level, nom), conc in zip(CAL_LEVELS, true, strict=True):
            add(
                level + suffix,
                SampleType.CALIBRATOR,
                conc,
                level=level,
                nominal=nom,
                matrix="surrogate",
                fault="broken-curve" if broken and conc != nom else None,
            )

    qc_count = {name: 0 for name, _ in QC_LEVELS}

    def qc_set() -> None:
        for level, nom in QC_LEVELS:
            qc_count[level] += 1
            add(
                f"{level}-{qc_count[level]:02d}",
                SampleType.QC,
                nom,
                level=level,
                nominal=nom,
                matrix="surrogate",
            )

    add("SOLVENT", SampleType.DOUBLE_BLANK, has_is=False)
    add("DBLANK", SampleType.DOUBLE_BLANK, has_is=False, matrix="surrogate")
    add("ZERO", SampleType.ZERO, matrix="surrogate")
    cal_set("", f.broken_curve)
    add(
        "BLANK",
        SampleType.BLANK,
        has_is=False,
        matrix="surrogate",
        carryover=f.carryover if f.carryover is not None else 3.0,
        fault="carryover" if f.carryover is not None else None,
    )
    qc_set()
    for i, s in enumerate(study, start=1):
        add(
            f"S{i:04d}",
            SampleType.SAMPLE,
            s["conc"] / s["dilution"],
            matrix=s["matrix"],
            dilution=s["dilution"],
            group=s.get("group"),
            normalizer=s.get("normalizer"),
            normalizer_unit=s.get("normalizer_unit"),
            volume_ul=s.get("volume_ul"),
            fault=s.get("fault"),
            endogenous=True,
        )
        if i % config.qc_every == 0 or i == len(study):
            qc_set()
    cal_set("-b", False)

    if f.biased_qc is not None:
        level, pct, every = f.biased_qc
        qcs = [r for r in rows if r.get("level") == level]
        for r in qcs if every else qcs[1:2] or qcs[:1]:
            r["conc"] *= 1 + pct / 100
            r["fault"] = "biased-qc"

    n = len(rows)
    for name, pos in (
        ("short", f.short_injection),
        ("truncated", f.truncated),
        ("junk", f.junk),
        ("is-drift", f.is_drift and f.is_drift[0]),
        ("rt-step", f.rt_step and f.rt_step[0]),
    ):
        if pos is not None and not 1 <= pos <= n:
            raise ValueError(f"fault {name}: injection {pos} is outside this run's 1-{n}")

    planned: list[PlannedInjection] = []
    for pos, r in enumerate(rows, start=1):
        faults = [r["fault"]] if r.get("fault") else []
        has_is = r.get("has_is", True)
        is_factor, rt_shift = 1.0, 0.0
        if f.is_drift is not None and pos >= f.is_drift[0] and has_is:
            is_factor *= (1 - f.is_drift[1] / 100) ** (pos - f.is_drift[0])
            faults.append("is-drift")
        if f.short_injection == pos:
            is_factor *= 0.3
            faults.append("short")
        if f.rt_step is not None and pos >= f.rt_step[0]:
            rt_shift = f.rt_step[1]
            faults.append("rt-step")
        output: Literal["mzml", "truncated", "junk"] = "mzml"
        if f.truncated == pos:
            output = "truncated"
            faults.append("truncated")
        if f.junk == pos:
            output = "junk"
            faults.append("junk")
        sample_id = r["sample_id"]
        stem = f"{pos:03d}_{sample_id}"
        sample = _sample(
            stem,
            sample_id,
            r["kind"],
            pos,
            level=r.get("level"),
            nominal=r.get("nominal"),
            matrix=r.get("matrix"),
            dilution=r.get("dilution", 1.0),
            normalizer=r.get("normalizer"),
            normalizer_unit=r.get("normalizer_unit"),
            volume_ul=r.get("volume_ul"),
            group=r.get("group"),
        )
        planned.append(
            PlannedInjection(
                position=pos,
                sample=sample,
                true_conc_vial=r["conc"],
                true_conc=r["conc"] * sample.dilution,
                is_factor=is_factor,
                rt_shift=rt_shift,
                faults=tuple(faults),
                has_is=has_is,
                endogenous=r.get("endogenous", False),
                carryover_pct=r.get("carryover"),
                output=output,
            )
        )
    return planned


# ---------------------------------------------------------------- signals


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


# ---------------------------------------------------------------- mzML


def _vendored_obo(name: str) -> Callable[[OBOCache], ControlledVocabulary]:
    def load(cache_: OBOCache) -> ControlledVocabulary:
        ref = resources.files("psims.controlled_vocabulary.vendor").joinpath(name)
        with ref.open("rb") as raw, gzip.GzipFile(fileobj=raw) as fh:
            return ControlledVocabulary.from_obo(fh, import_resolver=cache_.load)

    return load


@cache
def _vocabularies() -> OBOCache:
    """psims' bundled CVs, never the network: offline labs, reproducible bytes, no fd leak."""
    resolver = OBOCache(enabled=False, use_remote=False)
    resolver.set_resolver(
        "http://purl.obolibrary.org/obo/ms/psi-ms.obo", _vendored_obo("psi-ms.obo.gz")
    )
    resolver.set_resolver("http://purl.obolibrary.org/obo/uo.obo", _vendored_obo("unit.obo.gz"))
    return resolver


def _timestamp(config: SimConfig, position: int) -> str:
    start = datetime.fromisoformat(config.start_time.replace("Z", "+00:00"))
    at = start + timedelta(minutes=config.injection_minutes * (position - 1))
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_mzml(
    inj: PlannedInjection, config: SimConfig, *, started_at: str | None = None
) -> bytes:
    """The injection's complete mzML document, as bytes (msconvert's layout for SCIEX SRM)."""
    traces = render_traces(inj, config)
    t = time_axis(config)
    if config.time_unit == "second":
        t = t * 60.0
    buf = io.BytesIO()
    cls = IndexedMzMLWriter if config.indexed else PlainMzMLWriter
    w = cls(buf, close=False, vocabulary_resolver=_vocabularies())
    win = {"lower": 0.5, "upper": 0.5}
    with w:
        w.controlled_vocabularies()
        source = w.SourceFile(
            location="file://instrument/data",
            name=f"{inj.stem}.wiff",
            id="WIFF",
            params=["WIFF nativeID format", "ABI WIFF format"],
        )
        w.file_description(["selected reaction monitoring chromatogram"], [source])
        w.software_list(
            [
                {"id": "Analyst", "version": "1.7.3", "params": ["Analyst"]},
                {
                    "id": "asnmon_simulate",
                    "version": "0.1.0",
                    "params": ["custom unreleased software tool"],
                },
            ]
        )
        w.instrument_configuration_list(
            [
                w.InstrumentConfiguration(
                    id="IC1",
                    params=[config.instrument],
                    software_reference="Analyst",
                    component_list=w.ComponentList(
                        [
                            w.Source(1, ["electrospray ionization"]),
                            w.Analyzer(2, ["quadrupole"]),
                            w.Analyzer(3, ["quadrupole"]),
                            w.Detector(4, ["electron multiplier"]),
                        ]
                    ),
                )
            ]
        )
        w.data_processing_list(
            [
                w.DataProcessing(
                    [
                        w.ProcessingMethod(
                            order=0,
                            software_reference="asnmon_simulate",
                            params=["Conversion to mzML"],
                        )
                    ],
                    id="simulation",
                )
            ]
        )
        with w.run(
            id=f"{config.run_name}_{inj.stem}",
            instrument_configuration="IC1",
            start_time=started_at or _timestamp(config, inj.position),
        ):
            n = len(TRACES) + int(config.include_tic)
            with w.chromatogram_list(count=n):
                if config.include_tic:
                    w.write_chromatogram(
                        t,
                        np.sum(traces, axis=0),
                        id="TIC",
                        chromatogram_type="total ion current chromatogram",
                        encoding=64,
                        time_unit=config.time_unit,
                    )
                for i, (trace, y) in enumerate(zip(TRACES, traces, strict=True)):
                    chrom = w.chromatogram(
                        t,
                        y,
                        chromatogram_type="selected reaction monitoring chromatogram",
                        id=f"SRM SIC Q1={trace.q1:g} Q3={trace.q3:g} sample=1 period=1 "
                        f"experiment=1 transition={i}",
                        precursor_information={
                            "mz": None,
                            "isolation_window_args": {"target": trace.q1, **win},
                            "activation": [
                                "collision-induced dissociation",
                                {"collision energy": trace.ce},
                            ],
                        },
                        params=["positive scan"],
                        encoding=64,
                        time_unit=config.time_unit,
                    )
                    chrom.product = w.Product(isolation_window={"target": trace.q3, **win})
                    chrom.write(w.writer)
    return buf.getvalue()


# ---------------------------------------------------------------- writing


def _write_progressively(
    path: Path, data: bytes, write_seconds: float, stop: threading.Event | None = None
) -> None:
    """Write ``data`` to its final name in chunks over ``write_seconds``, as an instrument does."""
    if write_seconds <= 0:
        path.write_bytes(data)
        return
    n_chunks = max(2, min(20, int(write_seconds / 0.05)))
    bounds = np.linspace(0, len(data), n_chunks + 1).astype(int)
    pause = write_seconds / n_chunks
    with path.open("wb") as fh:
        for a, b in itertools.pairwise(bounds):
            fh.write(data[a:b])
            fh.flush()
            os.fsync(fh.fileno())
            if b < len(data):
                if stop is not None:
                    stop.wait(pause)
                else:
                    time.sleep(pause)


def injection_bytes(
    inj: PlannedInjection, config: SimConfig, *, started_at: str | None = None
) -> bytes:
    """What the instrument leaves on disk for this injection, faults included."""
    if inj.output == "junk":
        rng = np.random.default_rng((config.seed, inj.position, 1))
        return rng.bytes(48_000)
    data = render_mzml(inj, config, started_at=started_at)
    if inj.output == "truncated":
        return data[: int(len(data) * 0.6)]
    return data


def write_injection(
    planned: PlannedInjection,
    path: Path,
    config: SimConfig | None = None,
    *,
    write_seconds: float = 0.0,
    started_at: str | None = None,
    stop: threading.Event | None = None,
) -> Path:
    """Write one injection's file (rendered in memory first, then streamed to ``path``)."""
    data = injection_bytes(planned, config or SimConfig(), started_at=started_at)
    _write_progressively(path, data, write_seconds, stop)
    return path


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_worklist(planned: Iterable[PlannedInjection], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(WORKLIST_HEADER)
        for p in planned:
            s = p.sample
            out.writerow(
                [
                    _fmt(v)
                    for v in (
                        s.file,
                        s.sample_id,
                        s.sample_type.value,
                        s.level,
                        s.nominal,
                        s.matrix,
                        s.dilution,
                        s.normalizer,
                        s.normalizer_unit,
                        s.volume_ul,
                        s.group,
                    )
                ]
            )
    return path


def write_ground_truth(planned: Iterable[PlannedInjection], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(TRUTH_HEADER)
        for p in planned:
            out.writerow(
                [
                    p.stem,
                    p.sample.sample_id,
                    f"{p.true_conc_vial:.6g}",
                    f"{p.true_conc:.6g}",
                    f"{p.is_factor:.6g}",
                    f"{p.rt_shift:.6g}",
                    ";".join(p.faults),
                ]
            )
    return path


def simulate_run(
    out_dir: Path,
    config: SimConfig,
    *,
    interval: float = 0.0,
    write_seconds: float = 0.0,
    progress: bool = False,
    on_written: Callable[[Path], None] | None = None,
    stop: threading.Event | None = None,
) -> SimulatedRun:
    """Write a whole run into ``out_dir``: worklist and ground truth first, then each file.

    ``interval`` is the time from one injection's start to the next; each file
    takes ``write_seconds`` to appear. With pacing, startTimeStamps are the wall
    clock; without, they derive from ``config``. ``stop`` ends the run early.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    planned = plan_run(config)
    worklist = write_worklist(planned, out_dir / "worklist.csv")
    truth = write_ground_truth(planned, out_dir / "truth.csv")
    paced = interval > 0 or write_seconds > 0
    files: list[Path] = []
    began = time.monotonic()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(planned), unit="inj", desc="simulating")
    try:
        for k, inj in enumerate(planned):
            if stop is not None and stop.is_set():
                break
            wait = began + k * interval - time.monotonic()
            if wait > 0:
                if stop is not None:
                    if stop.wait(wait):
                        break
                else:
                    time.sleep(wait)
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if paced else None
            path = write_injection(
                inj,
                out_dir / f"{inj.stem}.mzML",
                config,
                write_seconds=write_seconds,
                started_at=stamp,
                stop=stop,
            )
            files.append(path)
            if on_written is not None:
                on_written(path)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return SimulatedRun(
        out_dir=out_dir,
        paths=tuple(files),
        worklist_path=worklist,
        truth_path=truth,
        injections=tuple(planned),
        seconds=time.monotonic() - began,
    )
