"""A simulated triple-quadrupole run: mzML files written as an instrument writes them.

The demo, the tests and the benchmarks need runs with *known* answers, so the
simulator plans a whole sequence first (``plan_run``: pure, seeded) and then
renders each injection to mzML with psims, the PSI writer, in msconvert's
layout for SCIEX SRM data. Faults are switched on one by one (``Faults``) and
every injection's ground truth records which faults touched it, and the
noise-free areas and area ratio its file was rendered from.

Two modes (``SimConfig.mode``): ``clean`` (the API default: smooth peaks on a
0.2 s grid, every trace acquired for the whole run) and ``realistic`` (the
default of ``asnmon simulate`` and the demo: noise, sampling and scheduled
windows measured on real files, see ``realistic.py``), whose traps of real
files are switched on by name (``SCENARIOS``: truncated-is, late-qualifier,
low-points, spiky, interferent, drift).

Modules, one job each: ``config`` (levels, traces, faults, scenarios),
``plan`` (the sequence), ``signals`` (clean traces, shared pieces),
``realistic`` (the measured model), ``acquire`` (mode dispatch), ``writer``
(mzML bytes), ``run`` (files, worklist and truth in a folder, in time).

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

from asnmon.simulate.acquire import render_acquisition, true_signal
from asnmon.simulate.config import (
    CAL_LEVELS,
    DEFAULT_SCENARIOS,
    FAULT_SPECS,
    LLOQ,
    MODES,
    QC_LEVELS,
    SCENARIOS,
    TRACES,
    TRUTH_HEADER,
    WORKLIST_HEADER,
    Faults,
    Mode,
    SimConfig,
    Trace,
    apply_faults,
    check_scenarios,
    parse_fault,
)
from asnmon.simulate.plan import PlannedInjection, plan_run
from asnmon.simulate.realistic import REALISM, Realism, realistic_axis
from asnmon.simulate.run import (
    SimulatedRun,
    injection_bytes,
    simulate_run,
    write_ground_truth,
    write_injection,
    write_worklist,
)
from asnmon.simulate.signals import AcquiredTrace, TrueSignal, render_traces, time_axis
from asnmon.simulate.writer import render_mzml

__all__ = [
    "CAL_LEVELS",
    "DEFAULT_SCENARIOS",
    "FAULT_SPECS",
    "LLOQ",
    "MODES",
    "QC_LEVELS",
    "REALISM",
    "SCENARIOS",
    "TRACES",
    "TRUTH_HEADER",
    "WORKLIST_HEADER",
    "AcquiredTrace",
    "Faults",
    "Mode",
    "PlannedInjection",
    "Realism",
    "SimConfig",
    "SimulatedRun",
    "Trace",
    "TrueSignal",
    "apply_faults",
    "check_scenarios",
    "injection_bytes",
    "parse_fault",
    "plan_run",
    "realistic_axis",
    "render_acquisition",
    "render_mzml",
    "render_traces",
    "simulate_run",
    "time_axis",
    "true_signal",
    "write_ground_truth",
    "write_injection",
    "write_worklist",
]
