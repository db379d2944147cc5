"""Area-ratio accuracy on realistic simulated files, beside pyopenms, and on the real file.

    pip install -e ".[bench]"          # pyopenms, for the side-by-side columns
    python benchmarks/accuracy.py [--seeds 20] [--first-seed 0] [--scenario NAME ...] [--keep DIR]

What it does, in one run and on the same files:

* **simulated**: for each scenario of the realistic simulator (``base`` = the
  measured noise and sampling with no trap, each trap of ``SCENARIOS`` alone,
  and ``all`` of them at once) x ``--seeds`` seeds, the injections of four
  quantifiable levels (10, 50, 200, 500 µM) are written as mzML. Each file's
  true area ratio (noise-free analyte / IS area, from the ground truth) is
  compared with
    - **asnmon**: ``read_injection`` + ``integrate_injection`` (the shipped assay);
    - **pyopenms**: ``MzMLFile.load`` + ``MRMTransitionGroupPicker`` with one
      transition group per compound (analyte quantifier + qualifier; IS
      quantifier + qualifier), as SmartPeak runs it, trapezoid integration with
      base-to-base background subtraction, smoothing tuned (``OpenMS``); the
      largest feature within the assay's RT window;
    - **oracle**: a trapezoid over the true peak's extent within the common
      acquired interval, of the raw signal minus the true baseline and every
      other peak: the error noise alone leaves (no integrator does much better).
    - **bounds**: the same trapezoid above the true baseline only, other peaks
      left in: what perfect shared boundaries give (the interferent's share).
  A missing peak counts as a 100 % error (and is counted); ``silent`` counts
  asnmon errors over 5 % that no warning or fail flag of the pipeline marks.
* **real**: the shared real negative-mode file with an analyte/IS pair
  (``smartpeak_misc/RawDataProcessor_mzML_1.mzML``: asn 131>114, IS 135>118),
  asnmon's and pyopenms's ratio against a trapezoid over the common bounds.
* **speed**: per injection, asnmon read + integrate vs pyopenms load + picker
  (medians over the same files), and asnmon's whole pipeline (``RunIngestor``)
  vs the decoding floor (``baselines.floor_read``, as ``benchmarks/ingest.py``).

Goals (issue 10): asnmon's median |error| <= 2 % and p95 <= 5 % in every
scenario, and no worse than pyopenms's in any (within 0.1 percentage point);
read + integrate no slower than pyopenms's load + picker; the whole pipeline
within 10x the floor. Whether a 0.1-point difference from pyopenms is real:
the last column, the median difference with its 95 % bootstrap interval over
seeds (``--seeds 100 --first-seed 20`` for fresh ones).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


from peer_openms import Measured, OpenMS

from asnmon.assay import Assay, load_assay
from asnmon.integrate import integrate_injection
from asnmon.mzml import read_injection
from asnmon.pipeline import order_paths, process_file
from asnmon.records import Injection, Sample, Severity
from asnmon.simulate import (
    DEFAULT_SCENARIOS,
    SCENARIOS,
    SimConfig,
    plan_run,
    render_acquisition,
    simulate_run,
    true_signal,
    write_injection,
)
from asnmon.simulate.realistic import true_background
from asnmon.worklist import load_worklist

ROOT = Path(__file__).resolve().parent.parent
ROWS = ("base", *SCENARIOS, "all")
LEVELS = ("CAL03", "CAL05", "QC-M-01", "CAL08")  # 10, 50, 200, 500 µM
GOAL_MEDIAN, GOAL_P95 = 2.0, 5.0  # % (issue 10)
TIE = 0.1  # percentage points: "no worse than pyopenms" within this (seed noise)
REAL_FILE = "smartpeak_misc/RawDataProcessor_mzML_1.mzML"
# The real file's method as a lab would write it (negative mode, early HILIC elution)
NEG_ASSAY = """
[assay]
name = "Asparagine (negative ESI MRM, 13C4-Asn IS)"
analyte = "asparagine"
internal_standard = "13C4-asparagine"
unit = "µM"
polarity = "negative"
acquisition = "mrm"
mz_tolerance = 0.3

[[transitions]]
id = "asn_quant"
name = "Asn 131>114"
q1 = 131.0
q3 = 114.0
role = "analyte_quant"

[[transitions]]
id = "asn_qual"
name = "Asn 131>95"
q1 = 131.0
q3 = 95.0
role = "analyte_qual"

[[transitions]]
id = "is_quant"
name = "13C4-Asn 135>118"
q1 = 135.0
q3 = 118.0
role = "is_quant"

[retention]
expected_rt = 0.98
window = 0.25
analyte_window = 0.1

[calibration]
lloq = 1.0
uloq = 500.0
"""


@dataclass(frozen=True, slots=True)
class Case:
    scenario: str
    seed: int
    sample_id: str
    path: Path
    truth: float  # true area ratio
    oracle: float | None  # noise is the only error left
    bounds: float | None  # perfect shared boundaries and baseline; other peaks left in
    sample: Sample


# ---------------------------------------------------------------- the simulated files


def _oracles(inj: Any, config: SimConfig) -> tuple[float | None, float | None]:
    """Trapezoids over the true peak (> 1 % of apex) in the common interval, of the raw
    signal minus (a) the true baseline and every other peak -- noise is all that is left --
    and (b) the true baseline only: what perfect shared boundaries give."""
    acquired = render_acquisition(inj, config)
    parts = true_background(inj, config)
    lo_c = max(acquired[i].rt[0] for i in (0, 2))
    hi_c = min(acquired[i].rt[-1] for i in (0, 2))
    noise_only, bounds_only = [], []
    for i in (0, 2):
        t, own, others, baseline = parts[i]
        raw = acquired[i].intensity
        if own.max() <= 0:
            return None, None
        m = (own > 0.01 * own.max()) & (t >= lo_c) & (t <= hi_c)
        noise_only.append(float(np.trapezoid(raw[m] - others[m] - baseline[m], t[m])))
        bounds_only.append(float(np.trapezoid(raw[m] - baseline[m], t[m])))
    ratios = [a[0] / a[1] if a[1] > 0 else None for a in (noise_only, bounds_only)]
    return ratios[0], ratios[1]


def simulate_cases(folder: Path, rows: tuple[str, ...], seeds: int, first: int = 0) -> list[Case]:
    cases = []
    for row in rows:
        scenarios = () if row == "base" else tuple(SCENARIOS) if row == "all" else (row,)
        for seed in range(first, first + seeds):
            config = SimConfig(mode="realistic", scenarios=scenarios, seed=seed, n_samples=1)
            planned = {p.sample.sample_id: p for p in plan_run(config)}
            for sample_id in LEVELS:
                inj = planned[sample_id]
                truth = true_signal(inj, config).area_ratio
                if truth is None:
                    continue
                path = write_injection(inj, folder / f"{row}_s{seed:02d}_{inj.stem}.mzML", config)
                oracle, bounds = _oracles(inj, config)
                cases.append(Case(row, seed, sample_id, path, truth, oracle, bounds, inj.sample))
    return cases


# ---------------------------------------------------------------- asnmon


def _ratio(peaks: dict[str, Any], assay: Assay) -> float | None:
    if assay.is_quant is None:
        return None
    an, is_ = peaks.get(assay.analyte_quant.id), peaks.get(assay.is_quant.id)
    if an is None or is_ is None or not is_.area > 0:
        return None
    return float(an.area / is_.area)


def asnmon_measure(path: Path, assay: Assay) -> tuple[Measured, Injection]:
    t0 = time.perf_counter()
    injection = read_injection(path, assay)
    read = time.perf_counter()
    peaks = integrate_injection(injection, assay)
    ms = (time.perf_counter() - t0) * 1000
    return Measured(_ratio(peaks, assay), ms, (read - t0) * 1000), injection


def asnmon_flags(case: Case, assay: Assay) -> tuple[str, ...]:
    """The warning/fail flags the pipeline raises on the file (no calibration yet: ignored)."""
    outcome = process_file(case.path, "", case.sample, assay, None)
    return tuple(
        sorted(
            {
                f.code
                for f in outcome.flags
                if f.severity is not Severity.INFO and f.code != "NO_CALIBRATION"
            }
        )
    )


# ---------------------------------------------------------------- statistics


def _errors(measured: list[float | None], truth: list[float]) -> np.ndarray:
    """|ratio / truth - 1| in %, a missing peak as 100 %."""
    return np.array(
        [100.0 if m is None else abs(m / t - 1) * 100 for m, t in zip(measured, truth, strict=True)]
    )


def _stats(err: np.ndarray) -> tuple[float, float]:
    return float(np.median(err)), float(np.percentile(err, 95))


def median_diff_ci(
    ours: np.ndarray, theirs: np.ndarray, seeds: np.ndarray, n: int = 2000
) -> tuple[float, float, float]:
    """median(ours) - median(theirs) and its 95 % bootstrap interval, resampling whole seeds.

    A seed's four files share its cycle axis and draws, so they are resampled
    together. An interval that spans 0 says the difference is seed noise.
    """
    rng = np.random.default_rng(0)
    groups = [np.flatnonzero(seeds == s) for s in np.unique(seeds)]
    diffs = np.empty(n)
    for k in range(n):
        pick = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        diffs[k] = np.median(ours[pick]) - np.median(theirs[pick])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(np.median(ours) - np.median(theirs)), float(lo), float(hi)


def _p(ms: list[float]) -> float:
    return statistics.median(ms)


def _parts(measured: list[Measured], first_stage: str, second_stage: str) -> str:
    """The two stages' medians: which side of the work a gap is on (reading or integrating)."""
    first = _p([m.first_ms for m in measured])
    rest = _p([m.ms - m.first_ms for m in measured])
    return f"{first_stage} {first:.2f} + {second_stage} {rest:.2f}"


# ---------------------------------------------------------------- the real file


def _trapezoid(trace: Any, lo: float, hi: float, quiet: tuple[float, float]) -> float:
    base = float(np.median(trace.intensity[(trace.rt >= quiet[0]) & (trace.rt <= quiet[1])]))
    m = (trace.rt >= lo - 1e-9) & (trace.rt <= hi + 1e-9)
    return float(np.trapezoid(trace.intensity[m] - base, trace.rt[m]))


def real_file(root: Path, openms: Any) -> None:
    path = root / REAL_FILE
    print(f"\n== real file: {REAL_FILE} (asn 131>114 / IS 135>118)")
    if not path.is_file():
        print(f"   not found under {root}: set ASNMON_REALDATA")
        return
    with tempfile.TemporaryDirectory() as tmp:
        assay_path = Path(tmp) / "asn_negative.toml"
        assay_path.write_text(NEG_ASSAY, encoding="utf-8")
        assay = load_assay(assay_path)
    ours, injection = asnmon_measure(path, assay)
    peaks = integrate_injection(injection, assay)
    an_t, is_t = injection.traces["asn_quant"], injection.traces["is_quant"]
    # independent common bounds: the IS's rise (last point below 10 % of its apex before
    # it) to where the first of the two traces stops; baseline: the quietest 8 points
    apex_i = int(np.argmax(is_t.intensity))
    rise = np.flatnonzero(is_t.intensity[:apex_i] < 0.1 * is_t.intensity[apex_i])
    lo = float(is_t.rt[int(rise[-1])]) if rise.size else float(is_t.rt[0])
    hi = float(min(an_t.rt[-1], is_t.rt[-1]))
    start = max(an_t.rt[0], is_t.rt[0])
    before = is_t.rt[(is_t.rt >= start) & (is_t.rt < lo - 0.05)]
    medians = [
        (float(np.median(is_t.intensity[np.searchsorted(is_t.rt, t0) :][:8])), t0)
        for t0 in before[:-8]
    ]
    t_q = min(medians)[1] if medians else float(start)
    i_q = int(np.searchsorted(is_t.rt, t_q))
    quiet = (float(is_t.rt[i_q]), float(is_t.rt[min(i_q + 7, is_t.rt.size - 1)]))
    trap = _trapezoid(an_t, lo, hi, quiet) / _trapezoid(is_t, lo, hi, quiet)
    print(
        f"   common bounds {lo:.3f}-{hi:.3f} min (IS acquisition ends at {is_t.rt[-1]:.3f}); "
        f"quiet stretch {quiet[0]:.3f}-{quiet[1]:.3f} min"
    )
    print(f"   {'':<12}{'ratio':>8}{'vs trapezoid':>14}   bounds")
    print(f"   {'trapezoid':<12}{trap:>8.3f}{'':>14}   {lo:.3f}-{hi:.3f}")
    an, is_ = peaks.get("asn_quant"), peaks.get("is_quant")
    if ours.ratio is not None and an is not None and is_ is not None:
        print(
            f"   {'asnmon':<12}{ours.ratio:>8.3f}{(ours.ratio / trap - 1) * 100:>+13.1f}%   "
            f"analyte {an.start_rt:.3f}-{an.end_rt:.3f}, IS {is_.start_rt:.3f}-{is_.end_rt:.3f}"
        )
    else:
        print(f"   {'asnmon':<12}{'none':>8}   (no analyte or IS peak)")
    if openms is not None:
        with tempfile.TemporaryDirectory() as tmp:
            assay_path = Path(tmp) / "asn_negative.toml"
            assay_path.write_text(NEG_ASSAY, encoding="utf-8")
            theirs = OpenMS(load_assay(assay_path)).measure(path)
        if theirs.ratio is not None:
            print(
                f"   {'pyopenms':<12}{theirs.ratio:>8.3f}{(theirs.ratio / trap - 1) * 100:>+13.1f}%"
            )
        else:
            print(f"   {'pyopenms':<12}{'none':>8}")


# ---------------------------------------------------------------- the whole pipeline


def pipeline_vs_floor(folder: Path, config: SimConfig, rounds: int) -> tuple[float, float, int]:
    """The whole pipeline over the floor, as ``benchmarks/ingest.py`` measures it.

    (one transaction per file, group commits) ratios, medians over interleaved
    rounds of each round's own floor, and the number of injections.
    """
    from ingest import pipeline_rounds, round_ratio

    sim = simulate_run(folder, config)
    worklist = load_worklist(sim.worklist_path)
    paths = order_paths(list(sim.paths), worklist)
    floors, single, grouped = pipeline_rounds(paths, load_assay(), worklist, folder, rounds)
    return round_ratio(single, floors), round_ratio(grouped, floors), len(paths)


# ---------------------------------------------------------------- main


def _realdata(given: Path | None) -> Path:
    env = os.environ.get("ASNMON_REALDATA")
    return given or (Path(env) if env else ROOT.parent / "shared" / "realdata")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds per scenario (default 20)")
    ap.add_argument(
        "--first-seed", type=int, default=0, help="first seed (fresh seeds: e.g. 20 or 1000)"
    )
    ap.add_argument("--scenario", action="append", choices=ROWS, help="only these rows")
    ap.add_argument("--keep", type=Path, help="write the simulated files here and keep them")
    ap.add_argument("--realdata", type=Path, help="the real files (default ../shared/realdata)")
    ap.add_argument("--worst", type=int, default=8, help="list asnmon's N worst cases")
    ap.add_argument("--pipeline-samples", type=int, default=160, help="samples of the timed run")
    ap.add_argument("--pipeline-rounds", type=int, default=3, help="interleaved timing rounds")
    args = ap.parse_args(argv)
    rows = tuple(args.scenario or ROWS)
    try:
        openms: Any = OpenMS(load_assay())
    except ImportError:
        openms = None
        print("pyopenms not installed (pip install -e '.[bench]'): asnmon columns only")

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="asnmon-accuracy-") as tmp:
        folder = args.keep or Path(tmp) / "files"
        folder.mkdir(parents=True, exist_ok=True)
        print(
            f"simulating {len(rows)} scenarios x {args.seeds} seeds (from {args.first_seed}) x "
            f"{len(LEVELS)} levels ...",
            flush=True,
        )
        cases = simulate_cases(folder, rows, args.seeds, args.first_seed)
        assay = load_assay()
        for c in cases[:3]:  # warm-up: imports, caches
            asnmon_measure(c.path, assay)
            if openms is not None:
                openms.measure(c.path)
        # interleaved, file by file: a machine shared with others slows both alike
        ours: list[Measured] = []
        theirs: list[Measured] = []
        for c in cases:
            ours.append(asnmon_measure(c.path, assay)[0])
            if openms is not None:
                theirs.append(openms.measure(c.path))
        flags = [asnmon_flags(c, assay) for c in cases]  # not timed: QC on top

        print(
            f"\n{len(cases)} files; |area ratio / true ratio - 1| in %, missing peak = 100 %; "
            "silent = asnmon off by > 5 % with no warning or fail flag / of those, how many "
            "the oracle (noise alone) is off by > 5 % too"
        )
        head = f"{'scenario':<16}{'n':>4}  {'asnmon med':>10}{'p95':>7}{'miss':>5}{'silent':>7}"
        if openms is not None:
            head += f"  {'pyopenms med':>12}{'p95':>7}{'miss':>5}"
        head += f"  {'oracle med':>10}{'p95':>7}  {'bounds med':>10}{'p95':>7}  goal"
        if openms is not None:
            head += "   median asnmon - pyopenms [95 % CI, by seed]"
        print(head)
        for row in rows:
            idx = [i for i, c in enumerate(cases) if c.scenario == row]
            truth = [cases[i].truth for i in idx]
            e_ours = _errors([ours[i].ratio for i in idx], truth)
            m_o, p_o = _stats(e_ours)
            line = f"{row:<16}{len(idx):>4}  {m_o:>10.2f}{p_o:>7.2f}"
            line += f"{sum(ours[i].ratio is None for i in idx):>5}"
            silent = [k for k, i in enumerate(idx) if e_ours[k] > GOAL_P95 and not flags[i]]
            # of those, the ones where noise alone (the oracle) is off by more than 5 % too
            e_oracle = _errors([cases[i].oracle for i in idx], truth)
            noisy = sum(1 for k in silent if e_oracle[k] > GOAL_P95)
            line += f"{len(silent):>4}/{noisy:<2}"
            ok = m_o <= GOAL_MEDIAN and p_o <= GOAL_P95
            ci = ""
            if openms is not None:
                e_th = _errors([theirs[i].ratio for i in idx], truth)
                m_t, p_t = _stats(e_th)
                line += f"  {m_t:>12.2f}{p_t:>7.2f}{sum(theirs[i].ratio is None for i in idx):>5}"
                ok = ok and m_o <= m_t + TIE and p_o <= p_t + TIE
                d, lo, hi = median_diff_ci(e_ours, e_th, np.array([cases[i].seed for i in idx]))
                ci = f"   {d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            e_or = e_oracle
            m_r, p_r = _stats(e_or)
            m_b, p_b = _stats(_errors([cases[i].bounds for i in idx], truth))
            line += (
                f"  {m_r:>10.2f}{p_r:>7.2f}  {m_b:>10.2f}{p_b:>7.2f}  {'met' if ok else 'MISSED'}"
            )
            print(line + ci)

        signed = [
            (None if m.ratio is None else (m.ratio / c.truth - 1) * 100, c)
            for m, c in zip(ours, cases, strict=True)
        ]
        order = sorted(
            range(len(cases)),
            key=lambda i: -100.0 if signed[i][0] is None else -abs(signed[i][0] or 0.0),
        )
        if args.worst:
            print(f"\nasnmon's {args.worst} worst cases (signed error %, flags raised):")
            for i in order[: args.worst]:
                err, c = signed[i]
                shown = "no peak" if err is None else f"{err:+.1f} %"
                print(
                    f"  {c.scenario:<16} seed {c.seed:>2}  {c.sample_id:<8} {shown:>10}  "
                    f"{', '.join(flags[i]) or 'no flag'}"
                )

        ms_ours = _p([m.ms for m in ours])
        print("\n== speed, per injection (median over the same files)")
        split = _parts(ours, "read", "integrate")
        print(f"   asnmon read + integrate      {ms_ours:8.2f} ms  ({split})")
        if openms is not None:
            ms_th = _p([m.ms for m in theirs])
            split = _parts(theirs, "load", "pick")
            print(
                f"   pyopenms load + picker       {ms_th:8.2f} ms  ({split}; "
                f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})"
            )
            print(f"   ratio asnmon / pyopenms      {ms_ours / ms_th:8.2f}x  (goal <= 1)")
        for label, config in (
            ("realistic", SimConfig(mode="realistic", scenarios=DEFAULT_SCENARIOS)),
            ("clean, 8 x 1,801 points", SimConfig()),
        ):
            config = replace(config, n_samples=args.pipeline_samples)
            single, grouped, n = pipeline_vs_floor(
                Path(tmp) / label.split(",")[0], config, args.pipeline_rounds
            )
            print(
                f"   {label} run ({n} injections): whole pipeline {single:.1f}x the decoding "
                f"floor with one transaction per file, {grouped:.1f}x with group commits "
                f"(goal <= 10x)"
            )

    real_file(_realdata(args.realdata), openms)
    print(f"\ntotal {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
