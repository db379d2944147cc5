"""Planning a run: the sequence, what truly went into each vial, and where the faults land.

Pure and seeded (``config.seed``): the same config plans the same run, so a
file can be re-rendered alone and the ground truth written before any file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from asnmon.records import Sample, SampleType
from asnmon.simulate.config import CAL_LEVELS, MODES, QC_LEVELS, SimConfig, check_scenarios


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
    if config.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {config.mode!r}")
    if config.scenarios and config.mode != "realistic":
        raise ValueError(f"scenarios {config.scenarios} need mode 'realistic', not {config.mode!r}")
    check_scenarios(config.scenarios)
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
