"""Per-injection cost of the whole pipeline, beside the floor and pyteomics.

    python benchmarks/ingest.py [--n-samples 160] [--keep DIR]

Simulates a run (~200 injections of 8 SRM traces x 1,801 points + a TIC,
zlib, 64-bit), then on the same files and in the same process measures:

* floor      lxml + base64 + zlib + numpy decoding of the arrays, nothing else
* pyteomics  pyteomics reading the chromatograms, PSI-MS vocabulary handed once
* read       asnmon.mzml.read_injection (reading + checks + matching)
* pipeline   RunIngestor.ingest: hash, read, integrate, quantify, flag and one
             DuckDB transaction with the injection, peaks, traces, result, flags

and prints medians, p95 and the ratios the issue asks for. Import/start-up
time is measured in a fresh interpreter. Timings vary with the machine: run
it on the acquisition PC to know what it will do there.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines import floor_read, pyteomics_read

from asnmon.assay import load_assay
from asnmon.integrate import integrate_injection
from asnmon.mzml import read_injection
from asnmon.pipeline import RunIngestor, order_paths
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

PEAK_PICKER_MS = 11.0  # pyopenms MRM peak picker alone, per file, as measured in issue 2


def _times(func: Callable[[Path], object], paths: list[Path]) -> list[float]:
    for p in paths[:5]:  # warm-up: imports, caches, page cache
        func(p)
    out = []
    for p in paths:
        t0 = time.perf_counter()
        func(p)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _stats(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]


def _startup() -> float:
    code = "import asnmon.pipeline, asnmon.store"
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-samples", type=int, default=160, help="samples (run = samples + ~40)")
    ap.add_argument("--keep", type=Path, help="write the simulated run here and keep it")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="asnmon-bench-") as tmp:
        folder = args.keep or Path(tmp) / "run"
        print(f"simulating {args.n_samples} samples ...", flush=True)
        sim = simulate_run(folder, SimConfig(n_samples=args.n_samples, seed=1))
        paths = [p for p in sim.paths if p.suffix == ".mzML"]
        assay = load_assay()
        worklist = load_worklist(sim.worklist_path)
        ordered = order_paths(paths, worklist)
        print(f"{len(ordered)} injections, {ordered[0].stat().st_size / 1024:.0f} KiB each\n")

        floor = _times(floor_read, ordered)
        pyteo = _times(pyteomics_read, ordered)
        read = _times(lambda p: read_injection(p, assay), ordered)
        injections = [read_injection(p, assay) for p in ordered]
        integ = []
        for inj in injections:
            t0 = time.perf_counter()
            integrate_injection(inj, assay)
            integ.append((time.perf_counter() - t0) * 1000)

        with Store(Path(tmp) / "bench.duckdb") as store:
            ingestor = RunIngestor(store, assay, RunInfo("bench", "bench"), worklist)
            whole = []
            for p in ordered:
                t0 = time.perf_counter()
                ingestor.ingest(p)
                whole.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            ingestor.flush()
            refit_ms = (time.perf_counter() - t0) * 1000

    startup = _startup()
    f_med = _stats(floor)[0]
    rows = [
        ("floor (lxml+base64+zlib+numpy)", floor),
        ("pyteomics, CV handed once", pyteo),
        ("asnmon read_injection", read),
        ("asnmon integrate_injection", integ),
        ("asnmon whole pipeline per injection", whole),
    ]
    print(f"{'stage':<40}{'median ms':>10}{'p95 ms':>10}{'x floor':>9}")
    for name, ms in rows:
        med, p95 = _stats(ms)
        print(f"{name:<40}{med:>10.2f}{p95:>10.2f}{med / f_med:>9.1f}")
    w_med = _stats(whole)[0]
    print(
        f"\nwhole pipeline: {1000 / w_med:.0f} injections/s on one core (median); "
        f"{w_med / f_med:.1f}x the floor (target <= 10x); "
        f"{w_med / PEAK_PICKER_MS:.2f}x the pyopenms MRM peak picker alone "
        f"({PEAK_PICKER_MS:g} ms, issue 2's figure; target < 1)"
    )
    print(f"final bracketing refit + re-quantification of the run: {refit_ms:.0f} ms")
    print(f"start-up (fresh interpreter, import asnmon.pipeline + store): {startup:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
