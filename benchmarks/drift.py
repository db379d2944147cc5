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
from asnmon.qc import evaluate_is, is_context, rt_trend_at, rt_trend_raised_at
from asnmon.qc.internal_standard import drift_forecast, is_drift_flag
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
LEVEL = 1.5e5  # the simulated in-control IS area


def oracle_crossing(areas: list[float], rate_pct: float, start: int) -> float | None:
    """The statistical limit: a forecaster that knows the onset, the level and the model.

    Only the slope is unknown: least squares of log(IS / level) on (injection - onset),
    through zero, on the same points the live forecast had. What it misses is the
    noise alone; the live forecast also has to find the onset and the level.
    """
    x = np.arange(1, len(areas) + 1, dtype=np.float64)
    u = np.maximum(x - start, 0.0)
    b = float(u @ (np.log(areas) - np.log(LEVEL))) / float(u @ u)
    return start + float(np.log(0.5)) / b if b < 0 else None


def forecast_errors(
    rate_pct: float, seed: int, start: int = 30, cv: float = 0.04
) -> dict[str, object] | None:
    """Live, oracle and frozen forecasts on one seeded series; None: no alarm."""
    assay = load_assay()
    steps = np.log(0.5) / np.log1p(-rate_pct / 100)
    actual = start + int(np.floor(steps)) + 1  # first injection truly below 50 %
    n = actual + 5
    rng = np.random.default_rng(seed)
    history: list[HistoryPoint] = []
    areas: list[float] = []
    alarm: int | None = None
    frozen: float | None = None
    first_low: int | None = None
    live: dict[int, dict[str, float | None]] = {}
    for i, kind in enumerate(layout(n), start=1):
        factor = (1 - rate_pct / 100) ** max(i - start, 0)
        area = LEVEL * factor * float(np.exp(rng.normal(0, cv)))
        areas.append(area)
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
            ctx = is_context(history, assay)
            flag = is_drift_flag(ctx, assay)
            found = drift_forecast(ctx, assay)
            d = flag.details if flag is not None else {}
            if isinstance(d.get("crossing_at"), int | float) and found is not None:
                live[i - alarm] = {
                    "at": float(d["crossing_at"]),  # type: ignore[arg-type]
                    "early": d.get("crossing_early"),  # type: ignore[dict-item]
                    "late": d.get("crossing_late"),  # type: ignore[dict-item]
                    "rate_low": float(d["rate_low_pct"]),  # type: ignore[arg-type]
                    "rate_high": float(d["rate_high_pct"]),  # type: ignore[arg-type]
                    "onset": found[1].first,
                    "oracle": oracle_crossing(areas, rate_pct, start),
                }
    if alarm is None:
        return None
    return {"alarm": alarm, "actual": actual, "low": first_low, "frozen": frozen, "live": live}


def _covers(lo: float | None, x: float, hi: float | None) -> bool:
    return (lo is None or lo <= x) and (hi is None or x <= hi)


def forecast_table(seeds: int) -> None:
    print(
        f"\nforecast of the 50 % crossing, {seeds} seeds per rate, drift from injection 30 "
        "(onset: the last flat injection); error = predicted - actual injection; oracle = "
        "knows the onset, level and model, fits the slope on the same points; coverage = "
        "share of runs whose message range (crossing) and 90 % CI (rate) hold the truth"
    )
    print(
        "| decline %/inj | after alarm | runs | live: median abs err (90th pct) | live: median "
        "err | oracle: median abs err (90th pct) | oracle: median err | fitted onset - true: "
        "median (IQR) | range covers crossing | CI covers rate | frozen (old): median abs err "
        "| live vs first IS_LOW: median abs err |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for rate in (1.0, 2.5, 5.0):
        runs = [r for r in (forecast_errors(rate, s) for s in range(seeds)) if r is not None]
        true_rate = -rate
        for d in AFTER:
            rows = [(r, r["live"][d]) for r in runs if d in r["live"]]  # type: ignore[operator,index]
            if not rows:
                continue
            err = np.array([v["at"] - r["actual"] for r, v in rows])  # type: ignore[index,operator]
            orc = np.array(
                [np.ceil(v["oracle"]) - r["actual"] for r, v in rows if v["oracle"] is not None]  # type: ignore[index,operator]
            )
            onset = np.array([v["onset"] - 30 for _, v in rows])  # type: ignore[operator]
            span = np.mean([_covers(v["early"], r["actual"], v["late"]) for r, v in rows])  # type: ignore[arg-type,index]
            ci = np.mean([_covers(v["rate_low"], true_rate, v["rate_high"]) for _, v in rows])
            old = np.array(
                [np.ceil(r["frozen"]) - r["actual"] for r, _ in rows if r["frozen"] is not None]  # type: ignore[arg-type,operator]
            )
            vs_low = np.array(
                [v["at"] - r["low"] for r, v in rows if r["low"] is not None]  # type: ignore[index,operator]
            )
            q1, q3 = np.percentile(onset, [25, 75])
            print(
                f"| {rate:g} | {d} | {len(rows)} | {np.median(np.abs(err)):.1f} "
                f"({np.percentile(np.abs(err), 90):.0f}) | {np.median(err):+.1f} | "
                f"{np.median(np.abs(orc)):.1f} ({np.percentile(np.abs(orc), 90):.0f}) | "
                f"{np.median(orc):+.1f} | {np.median(onset):+.1f} ({q1:+.1f} to {q3:+.1f}) | "
                f"{100 * span:.0f} % | {100 * ci:.0f} % | "
                f"{np.median(np.abs(old)) if old.size else np.nan:.1f} | "
                f"{np.median(np.abs(vs_low)) if vs_low.size else np.nan:.1f} |"
            )


RT0 = 3.2  # min, the assay's expected IS apex
RT_AFTER = (0, 5, 10)


def rt_forecast_errors(
    rate: float, seed: int, start: int = 30, jitter: float = 0.01
) -> dict[str, object] | None:
    """RT_TREND's forecast on one seeded series drifting ``rate`` min/injection from ``start``.

    RT is simulated directly (the simulator's 0.01 min jitter, linear drift: a column
    that ages or a mobile phase that evaporates), judged by the real rule
    (``rt_trend_at`` as the pipeline keeps the flag current). actual = the first
    injection whose noise-free RT is beyond the tolerance of the calibrators' mean.
    """
    assay = load_assay()
    lim = assay.limits
    tol = max(RT0 * lim.rt_tolerance_pct / 100, lim.rt_tolerance_min_floor)
    actual = start + int(np.floor(tol / rate)) + 1
    rng = np.random.default_rng(seed)
    pts: list[HistoryPoint] = []
    raised: int | None = None
    out: dict[int, dict[str, float | None]] = {}
    for i, kind in enumerate(layout(actual + 3), start=1):
        rt = RT0 + rate * max(i - start, 0) + float(rng.normal(0, jitter))
        pts.append(HistoryPoint(i, i, f"X{i}", kind, is_area=LEVEL, is_rt=rt, analyte_rt=rt))
        j = len(pts) - 1
        if raised is None and rt_trend_raised_at(pts, j, assay) and i >= start:
            raised = i
        if raised is not None and i - raised in RT_AFTER and i < actual:
            trend = rt_trend_at(pts, j, assay)
            if trend is not None:
                out[i - raised] = {
                    "at": float(np.ceil(trend.crossing)),
                    "late": None if trend.crossing_late is None else np.ceil(trend.crossing_late),
                    "low": trend.rate_low,
                    "high": trend.rate_high,
                }
    if raised is None:
        return None
    return {"raised": raised, "actual": actual, "live": out}


def rt_table(seeds: int) -> None:
    print(
        f"\nRT_TREND forecast of the tolerance crossing, {seeds} seeds per rate, linear RT "
        "drift from injection 30, 0.01 min jitter; error = predicted - actual injection"
    )
    print(
        "| drift min/inj | after first RT_TREND | runs | raised after start (median) | median "
        "abs err (90th pct) | median err | latest covers crossing | CI covers rate |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rate in (0.002, 0.005, 0.01):
        runs = [r for r in (rt_forecast_errors(rate, s) for s in range(seeds)) if r is not None]
        for d in RT_AFTER:
            rows = [(r, r["live"][d]) for r in runs if d in r["live"]]  # type: ignore[operator,index]
            if not rows:
                continue
            err = np.array([v["at"] - r["actual"] for r, v in rows])  # type: ignore[index,operator]
            late = np.mean([_covers(None, r["actual"], v["late"]) for r, v in rows])  # type: ignore[arg-type]
            ci = np.mean([_covers(v["low"], rate, v["high"]) for _, v in rows])
            delay = np.median([r["raised"] - 30 for r, _ in rows])  # type: ignore[operator]
            print(
                f"| {rate:g} | {d} | {len(rows)}/{seeds} | {delay:.0f} | "
                f"{np.median(np.abs(err)):.1f} ({np.percentile(np.abs(err), 90):.0f}) | "
                f"{np.median(err):+.1f} | {100 * late:.0f} % | {100 * ci:.0f} % |"
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
    ap.add_argument(
        "--forecast-only", action="store_true", help="only the IS and RT forecast tables"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    forecast_table(args.seeds)
    rt_table(args.seeds)
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
