"""What a simulated run is made of: the sequence's levels, the traces, faults and scenarios.

Two modes render the same planned run. ``clean`` is the original simulator:
a smooth EMG on a 0.2 s grid with Gaussian + shot noise, every trace acquired
for the whole run. ``realistic`` renders what real SCIEX MRM files look like
(noise, sampling and windows measured by ``benchmarks/real_noise.py``, see
``realistic.py``), and switches on the traps of real files one by one as
*scenarios* (``SCENARIOS``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

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
    # what was rendered into the file: noise-free peak areas (counts x min) over the whole
    # peak, acquired or not, and their ratio -- the number an integrator should return
    "true_analyte_area",
    "true_is_area",
    "true_area_ratio",
    "mode",
    "scenarios",
    "points_across",  # acquired points where the true analyte signal is > 5 % of its apex
    "is_window_end",  # min, where the IS trace's acquisition ends
    "is_end_pct",  # true IS signal there, % of its apex (the cut tail)
    "qual_window_start",  # min, where the analyte qualifier's acquisition starts
    "qual_start_pct",  # true qualifier signal there, % of its apex
)

Mode = Literal["clean", "realistic"]
MODES: tuple[str, ...] = ("clean", "realistic")

# The traps of real MRM files (issue 10), each switched on by name in the realistic mode.
SCENARIOS: dict[str, str] = {
    "truncated-is": "the IS trace's scheduled window ends while its peak tails (2-8 % of apex)",
    "late-qualifier": "the analyte qualifier's window starts on the peak's rise (10-40 % of apex)",
    "low-points": "a longer cycle: about 12 points across the peak instead of about 19",
    "spiky": "the spikiest tops measured on real files (flicker CV 6.3 % instead of 3.7 %)",
    "interferent": "a compound sharing the Asn precursor elutes 0.18-0.30 min from Asn",
    "drift": "baseline drift: a decaying start, a slope and a broad hump before the peak",
}
# What the demo and `asnmon simulate` show by default: the measured noise and sampling,
# with the drift the real files show. The scheduled-window traps of the shared real file
# ("truncated-is", "late-qualifier") cut *every* injection of a run, so as a default they
# put PEAK_TRUNCATED on every row -- a flag on everything is one the night shift learns to
# ignore; they are opt-in (--scenario), like "interferent". The demo cuts a window where
# its RT step says so (the windows stay where the method put them; the peak moves).
DEFAULT_SCENARIOS: tuple[str, ...] = ("drift",)


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
    """Everything that shapes a simulated run; the defaults give the clean mode.

    The API default stays ``clean`` (tests pin its exact numbers); the demo and
    ``asnmon simulate`` default to ``realistic`` with ``DEFAULT_SCENARIOS``.
    CLI mapping: ``--mode`` -> mode, ``--scenario NAME`` (repeatable) -> scenarios,
    ``--samples`` -> n_samples, ``--seed`` -> seed, ``--fault SPEC`` (repeatable) ->
    ``apply_faults(config, specs)``, ``--seconds`` -> time_unit.
    """

    seed: int = 7  # plan and noise; same seed, same bytes
    mode: Mode = "clean"
    scenarios: tuple[str, ...] = ()  # realistic mode only: names from SCENARIOS
    n_samples: int = 60  # study samples (plasma, media, lysates), >= 1
    qc_every: int = 15  # a QC-L/M/H set after every this many samples (plus start and end)
    plasma_fraction: float = 0.5  # the rest are culture pairs (media + lysate)
    faults: Faults = field(default_factory=Faults)
    # detector and chromatography (clean mode; realistic.py holds the measured model)
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


def check_scenarios(names: Iterable[str]) -> tuple[str, ...]:
    """Scenario names validated and deduplicated (order kept); ValueError lists the valid ones."""
    out: list[str] = []
    for name in names:
        key = name.strip().lower()
        if key in ("", "none"):
            continue
        if key == "all":
            out.extend(n for n in SCENARIOS if n not in out)
            continue
        if key not in SCENARIOS:
            raise ValueError(
                f"unknown scenario {name!r}; valid scenarios: {', '.join(SCENARIOS)}, all, none"
            )
        if key not in out:
            out.append(key)
    return tuple(out)
