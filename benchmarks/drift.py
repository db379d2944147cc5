"""IS drift detection: lead over the hard window, and false alarms on clean runs.

Run: ``python benchmarks/drift.py [--seeds N]``. IS series are simulated
directly (log-normal, 4 % CV, the simulator's default) in the simulator's run
layout (zero + 8 calibrators, then a QC set of 3 after every 10 samples), and
each injection is judged with the real rules (``asnmon.qc.evaluate_is`` over
the history so far, as the pipeline calls them). One more check goes through
``asnmon.simulate`` and the pipeline (mzML files, integration, DuckDB).

lead = injection of the first IS_LOW - injection of the first IS_DRIFT at or
after the drift's start. False alarms = IS_DRIFT (or IS_BIAS) flags per clean
injection.

Forecast error = predicted - actual injection at which the IS falls below 50 %
of the reference, at the alarm and 5, 10, 15, 20 injections after it (only
while the crossing is still ahead). "actual" is the true crossing (the first
injection whose noise-free IS is below 50 % of the in-control level); the
first IS_LOW, which noise moves by an injection or two, is shown beside it.
The live forecast (``asnmon.qc.internal_standard.is_drift_flag``, Theil-Sen on
every point since the CUSUM onset, recomputed at each injection) is compared
with the frozen one the alarm used to give (the alarm's 10-point slope and the
IS % at the alarm, never updated), on the same series.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from asnmon.assay import load_assay
from asnmon.qc import evaluate_is, is_context
from asnmon.qc.internal_standard import is_drift_flag
from asnmon.records import HistoryPoint, SampleType

T = SampleType


def layout(n: int) -> list[SampleType]:
    kinds = [T.ZERO] + [T.CALIBRATOR] * 8 + [T.QC] * 3
    while len(kinds) < n:
        kinds += [T.SAMPLE] * 10 + [T.QC] * 3
    return kinds[:n]


def run_series(rate_pct: float, seed: int, n: int, start: int, cv: float = 0.04):
    """Per injection: the codes the IS rules raised."""
    assay = load_assay()
    rng = np.random.default_rng(seed)
    history: list[HistoryPoint] = []
    out = []
    for i, kind in enumerate(layout(n), start=1):
        factor = (1 - rate_pct / 100) ** max(i - start, 0)
        area = 1.5e5 * factor * float(np.exp(rng.normal(0, cv)))
        history.append(
            HistoryPoint(i, i, f"X{i}", kind, level="QC-M" if kind is T.QC else None, is_area=area)
        )
        out.append({f.code for f in evaluate_is(history, assay)})
    return out


def lead(rate: float, seed: int, start: int = 30) -> tuple[int | None, int | None, int]:
    n = start + int(np.log(0.35) / np.log1p(-rate / 100)) + 10
    codes = run_series(rate, seed, n, start)
    drift = next((i for i, c in enumerate(codes, 1) if "IS_DRIFT" in c and i >= start), None)
    low = next((i for i, c in enumerate(codes, 1) if "IS_LOW" in c), None)
    early = sum("IS_DRIFT" in c for c in codes[: start - 1])
    return drift, low, early


AFTER = (0, 5, 10, 15, 20)  # injections after the alarm at which the forecast is scored


def forecast_errors(
    rate_pct: float, seed: int, start: int = 30, cv: float = 0.04
) -> dict[str, object] | None:
    """Live and frozen forecast errors (injections) on one seeded series; None: no alarm."""
    assay = load_assay()
    steps = np.log(0.5) / np.log1p(-rate_pct / 100)
    actual = start + int(np.floor(steps)) + 1  # first injection truly below 50 %
    n = actual + 5
    rng = np.random.default_rng(seed)
    history: list[HistoryPoint] = []
    alarm: int | None = None
    frozen: float | None = None
    first_low: int | None = None
    live: dict[int, float] = {}
    for i, kind in enumerate(layout(n), start=1):
        factor = (1 - rate_pct / 100) ** max(i - start, 0)
        area = 1.5e5 * factor * float(np.exp(rng.normal(0, cv)))
        history.append(
            HistoryPoint(i, i, f"X{i}", kind, level="QC-M" if kind is T.QC else None, is_area=area)
        )
        codes = {f.code for f in evaluate_is(history, assay)}
        if first_low is None and "IS_LOW" in codes:
            first_low = i
        if alarm is None and "IS_DRIFT" in codes and i >= start:
            alarm = i
            ctx = is_context(history, assay)
            e, pct = ctx.episodes[-1], ctx.pct[-1]
            if pct and e.rate_pct < 0:  # the old message: alarm rate from the IS % at the alarm
                frozen = i + float(np.log(50.0 / pct) / np.log1p(e.rate_pct / 100))
        if alarm is not None and i - alarm in AFTER and i < actual:
            flag = is_drift_flag(is_context(history, assay), assay)
            at = flag.details.get("crossing_at") if flag is not None else None
            if isinstance(at, int | float):
                live[i - alarm] = float(at)
    if alarm is None:
        return None
    return {"alarm": alarm, "actual": actual, "low": first_low, "frozen": frozen, "live": live}


def forecast_table(seeds: int) -> None:
    print(
        f"\nforecast of the 50 % crossing, {seeds} seeds per rate, drift from injection 30; "
        "error = predicted - actual injection"
    )
    print(
        "| decline %/inj | after alarm | runs | live: median abs err | live: 90th pct "
        "| live: median err | frozen (old): median abs err | frozen: median err "
        "| live vs first IS_LOW: median abs err |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for rate in (1.0, 2.5, 5.0):
        runs = [r for r in (forecast_errors(rate, s) for s in range(seeds)) if r is not None]
        for d in AFTER:
            rows = [r for r in runs if d in r["live"]]  # type: ignore[operator]
            if not rows:
                continue
            err = np.array([r["live"][d] - r["actual"] for r in rows])  # type: ignore[index]
            old = np.array(
                [np.ceil(r["frozen"]) - r["actual"] for r in rows if r["frozen"] is not None]  # type: ignore[arg-type,operator]
            )
            vs_low = np.array(
                [r["live"][d] - r["low"] for r in rows if r["low"] is not None]  # type: ignore[index,operator]
            )
            print(
                f"| {rate:g} | {d} | {len(rows)} | {np.median(np.abs(err)):.1f} | "
                f"{np.percentile(np.abs(err), 90):.1f} | {np.median(err):+.1f} | "
                f"{np.median(np.abs(old)) if old.size else np.nan:.1f} | "
                f"{np.median(old) if old.size else np.nan:+.1f} | "
                f"{np.median(np.abs(vs_low)) if vs_low.size else np.nan:.1f} |"
            )


def through_simulator() -> str:
    from asnmon.pipeline import RunIngestor, ingest_paths
    from asnmon.simulate import SimConfig, apply_faults, simulate_run
    from asnmon.store import RunInfo, Store
    from asnmon.worklist import load_worklist

    with tempfile.TemporaryDirectory() as d:
        cfg = apply_faults(SimConfig(n_samples=30, qc_every=10), ["is-drift:20:2.5"])
        sim = simulate_run(Path(d) / "run", cfg)
        store = Store(Path(d) / "db.duckdb")
        ing = RunIngestor(store, load_assay(), RunInfo("B", "B"), load_worklist(sim.worklist_path))
        ingest_paths(ing, sim.paths)
        df = store.flags("B")
        drift = df.filter(df["code"] == "IS_DRIFT")["position"].to_list()
        low = df.filter(df["code"] == "IS_LOW")["position"].to_list()
        store.close()
    return (
        f"through asnmon.simulate + pipeline (is-drift:20:2.5, 62 injections): IS_DRIFT at "
        f"{drift}, first IS_LOW at {min(low) if low else None}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--clean-seeds", type=int, default=20)
    ap.add_argument("--forecast-only", action="store_true", help="only the forecast table")
    args = ap.parse_args()
    t0 = time.perf_counter()
    forecast_table(args.seeds)
    if args.forecast_only:
        print(f"({time.perf_counter() - t0:.0f} s)")
        return
    print(f"IS CV 4 %, drift from injection 30, {args.seeds} seeds per rate")
    print(
        "| decline %/inj | detected | IS_DRIFT after start (median) | lead median "
        "| lead 5th pct | lead min |"
    )
    print("|---|---|---|---|---|---|")
    for rate in (1.0, 2.5, 5.0):
        leads, delays, det = [], [], 0
        for seed in range(args.seeds):
            drift, low, _ = lead(rate, seed)
            if drift is not None:
                det += 1
                delays.append(drift - 30)
                if low is not None:
                    leads.append(low - drift)
        q = np.percentile(leads, [50, 5]) if leads else [np.nan, np.nan]
        print(
            f"| {rate:g} | {det}/{args.seeds} | {np.median(delays):.0f} | {q[0]:.0f} | "
            f"{q[1]:.0f} | {min(leads) if leads else '-'} |"
        )
    n_clean, fa, bias = 500, 0, 0
    for seed in range(1000, 1000 + args.clean_seeds):
        codes = run_series(0.0, seed, n_clean, start=10**9)
        fa += sum("IS_DRIFT" in c for c in codes)
        bias += sum("IS_BIAS" in c for c in codes)
    total = n_clean * args.clean_seeds
    print(
        f"\nclean runs: {args.clean_seeds} x {n_clean} injections: IS_DRIFT false alarms "
        f"{fa} ({100 * fa / total:.2f} % of injections), "
        f"IS_BIAS {bias} ({100 * bias / total:.2f} %)"
    )
    print(through_simulator())
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
