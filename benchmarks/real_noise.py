"""Measure noise and sampling on real MRM traces: the numbers the realistic simulator uses.

    python benchmarks/real_noise.py [--realdata DIR]

Reads the real files in ``../shared/realdata/`` (or ``ASNMON_REALDATA``):

* ``smartpeak_misc/RawDataProcessor_mzML_1.mzML`` (QTRAP 5500, negative mode,
  scheduled MRM): asn-L 131>114, its qualifier 131>95 and the 13C IS 135>118;
* ``sgi_cations_aa_mrm/Stds_*.mzML`` (QTRAP 5500, positive mode, unscheduled,
  3,288 points): every SRM trace of the eight standards.

and prints, per source:

* **quantum**: intensities are counts x (1 / dwell) -- the smallest step between
  distinct low values is the counts-per-second of one ion;
* **noise vs intensity**: residual of each point from the cubic through its
  four neighbours (exact for a cubic, so a sparse peak's curvature is not
  counted as noise; var = 1.944 sigma^2 for white noise), its robust SD in
  log-spaced bins of the local level, and a fit
  ``sigma^2 = a^2 + q * I + (c * I)^2``: read noise, Poisson (q = quantum, one
  ion's cps) and multiplicative flicker (c = CV of the spray);
* **correlation of the noise** between traces read in the same cycles: of the
  same compound (the asn/IS pair; the isotopologues of the SGI ``_Iso`` file,
  traces whose apexes coincide) and of different compounds;
* **sampling**: time between points and points across the asparagine peaks;
* **scheduled windows**: where each asn/IS trace starts and ends against its
  peak, as % of the apex (the truncation the simulator reproduces).

The simulator's constants (``asnmon/simulate/realistic.py``) quote this output.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

import numpy as np

from asnmon.mzml import read_file
from asnmon.records import Chromatogram

ROOT = Path(__file__).resolve().parent.parent


def realdata_dir(given: Path | None) -> Path:
    env = os.environ.get("ASNMON_REALDATA")
    path = given or (Path(env) if env else ROOT.parent / "shared" / "realdata")
    if not path.is_dir():
        sys.exit(f"real files not found at {path}: pass --realdata or set ASNMON_REALDATA")
    return path


def quantum(y: np.ndarray) -> float:
    """Most common step between the distinct low values (one ion's counts per second)."""
    pos = y[y > 0]
    if pos.size < 10:
        return float("nan")
    low = np.unique(pos[pos < np.percentile(pos, 50)])
    if low.size < 3:
        return float("nan")
    steps = np.diff(low)
    vals, counts = np.unique(np.round(steps, 1), return_counts=True)
    return float(vals[np.argmax(counts)])


def residuals(c: Chromatogram) -> tuple[np.ndarray, np.ndarray]:
    """(local level, residual from the cubic through four neighbours / sqrt(34/36 + 1)).

    The cubic interpolation (-y[i-2] + 4 y[i-1] + 4 y[i+1] - y[i+2]) / 6 is exact
    for a cubic, so the curvature of a sparse peak top (15-20 points across) does
    not pass for noise, as it would with the mean of the two neighbours.
    """
    y = c.intensity
    if y.size < 7:
        return np.empty(0), np.empty(0)
    interp = (-y[:-4] + 4 * y[1:-3] + 4 * y[3:-1] - y[4:]) / 6.0
    r = (y[2:-2] - interp) / np.sqrt(1.0 + 34.0 / 36.0)
    level = (y[1:-3] + y[2:-2] + y[3:-1]) / 3.0
    return level, r


def fit_noise(level: np.ndarray, r: np.ndarray) -> tuple[list[tuple[float, float, int]], tuple]:
    """Robust SD per log bin of the level, and a, q, c of sigma^2 = a^2 + q I + (c I)^2."""
    keep = level > 0
    level, r = level[keep], r[keep]
    edges = np.logspace(np.log10(max(level.min(), 50.0)), np.log10(level.max()), 16)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        m = (level >= lo) & (level < hi)
        if m.sum() < 12:
            continue
        sd = 1.4826 * float(np.median(np.abs(r[m] - np.median(r[m]))))
        rows.append((float(np.median(level[m])), sd, int(m.sum())))
    x = np.array([row[0] for row in rows])
    v = np.array([row[1] for row in rows]) ** 2
    w = 1.0 / np.maximum(v, 1.0)  # relative least squares: every decade counts
    design = np.column_stack([np.ones_like(x), x, x**2]) * w[:, None]
    coef, *_ = np.linalg.lstsq(design, v * w, rcond=None)
    a2, q, c2 = (max(float(k), 0.0) for k in coef)
    return rows, (np.sqrt(a2), q, np.sqrt(c2))


def print_fit(name: str, traces: list[Chromatogram]) -> None:
    levels, rs = zip(*(residuals(c) for c in traces), strict=True)
    rows, (a, q, c) = fit_noise(np.concatenate(levels), np.concatenate(rs))
    quanta = [quantum(c.intensity) for c in traces if c.intensity.size > 20]
    print(f"\n== {name}: {len(traces)} traces")
    print(f"quantum (one ion, cps): median {np.nanmedian(quanta):.1f}")
    print(f"{'level':>12}{'noise SD':>12}{'SD/level':>10}{'sqrt(q*I)':>11}{'n':>7}")
    for lev, sd, n in rows:
        print(f"{lev:>12.0f}{sd:>12.0f}{sd / lev:>10.3f}{np.sqrt(max(q, 0) * lev):>11.0f}{n:>7}")
    print(f"fit sigma^2 = a^2 + q*I + (c*I)^2: a = {a:.0f} cps, q = {q:.1f} cps, c = {c:.3f}")


def noise_correlation(
    traces: list[Chromatogram], min_level: float, same: bool | None = None
) -> tuple[int, float]:
    """Correlation of relative residuals, point by point, of pairs read in the same cycles.

    ``same``: only pairs of one compound (apexes within 0.02 min, Q1 0.5-7 apart:
    isotopologues) when True, only other pairs when False, all when None.
    """
    xs: list[float] = []
    ys: list[float] = []
    for a, b in itertools.combinations([c for c in traces if c.rt.size >= 20], 2):
        n = min(a.rt.size, b.rt.size)
        if not np.allclose(a.rt[:n], b.rt[:n]):
            continue
        if same is not None:
            apart = abs(float(a.rt[np.argmax(a.intensity)] - b.rt[np.argmax(b.intensity)]))
            one = apart < 0.02 and 0.5 < abs((a.q1 or 0.0) - (b.q1 or 0.0)) < 7
            if one != same:
                continue
        (la, ra), (lb, rb) = residuals(a), residuals(b)
        k = min(la.size, lb.size)
        la, ra, lb, rb = la[:k], ra[:k], lb[:k], rb[:k]
        m = (la > min_level) & (lb > min_level)
        xs.extend(ra[m] / la[m])
        ys.extend(rb[m] / lb[m])
    return len(xs), float(np.corrcoef(xs, ys)[0, 1]) if len(xs) > 3 else float("nan")


def peak_sampling(c: Chromatogram, lo: float, hi: float) -> str:
    t, y = c.rt, c.intensity
    m = (t >= lo) & (t <= hi)
    tt, yy = t[m], y[m]
    if yy.size < 3:
        return "no points"
    apex = int(np.argmax(yy))
    base = float(np.percentile(y, 10))
    above = np.flatnonzero(yy - base > 0.05 * (yy[apex] - base))
    dt = np.diff(tt) * 60
    first = (y[0] - base) / (yy[apex] - base) * 100
    last = (y[-1] - base) / (yy[apex] - base) * 100
    return (
        f"apex {tt[apex]:.3f} min, {above.size} points above 5 % of apex, spacing "
        f"{np.median(dt):.2f} s (range {dt.min():.2f}-{dt.max():.2f}); trace "
        f"{t[0]:.3f}-{t[-1]:.3f} min, first point {first:.0f} %, last point {last:.0f} % of apex"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--realdata", type=Path)
    args = ap.parse_args(argv)
    root = realdata_dir(args.realdata)

    sp = read_file(root / "smartpeak_misc" / "RawDataProcessor_mzML_1.mzML")
    srm = [c for c in sp.chromatograms if c.kind == "srm" and c.intensity.size >= 20]
    print_fit("smartpeak RawDataProcessor_mzML_1 (negative, scheduled), all SRM traces", srm)
    pick = {
        (131.0, 114.0): "asn 131>114",
        (131.0, 95.0): "asn 131>95",
        (135.0, 118.0): "IS 135>118",
    }
    for c in sp.chromatograms:
        if (c.q1, c.q3) in pick:
            print(f"{pick[(c.q1, c.q3)]}: {peak_sampling(c, 0.85, 1.2)}")
            top = c.intensity[c.intensity > 0.5 * c.intensity.max()]
            lev, r = residuals(c)
            m = lev > 0.5 * c.intensity.max()
            print(
                f"  top half: {top.size} points, neighbour residual SD / level "
                f"{np.std(r[m]) / np.mean(lev[m]):.3f}"
            )

    pair = [c for c in sp.chromatograms if (c.q1, c.q3) in ((131.0, 114.0), (135.0, 118.0))]
    n, r = noise_correlation(pair, 5000.0)
    print(f"noise correlation, asn 131>114 vs IS 135>118 (same compound): {r:.2f} ({n} points)")
    n, r = noise_correlation(srm, 20000.0, same=False)
    print(
        f"noise correlation, traces of different compounds above 20,000 cps: {r:.2f} ({n} points)"
    )
    iso = read_file(root / "sgi_cations_aa_mrm" / "Stds_12-5uM_Iso_1 (3).mzML")
    iso_srm = [c for c in iso.chromatograms if c.kind == "srm"]
    n, r = noise_correlation(iso_srm, 20000.0, same=True)
    print(f"noise correlation, SGI isotopologues of one compound: {r:.2f} ({n} points)")
    n, r = noise_correlation(iso_srm, 20000.0, same=False)
    print(f"noise correlation, SGI _Iso file, different compounds: {r:.2f} ({n} points)")

    sgi: list[Chromatogram] = []
    asn: list[Chromatogram] = []
    for f in sorted((root / "sgi_cations_aa_mrm").glob("Stds_*uM.mzML")):
        raw = read_file(f)
        traces = [c for c in raw.chromatograms if c.kind == "srm"]
        sgi += traces
        asn += [c for c in traces if c.q1 == 133.1 and c.q3 == 116.0]
    print_fit("SGI Stds_*uM (positive, 3,288 points), all SRM traces", sgi)
    for c in asn:
        t, y = c.rt, c.intensity
        sel = (t > 13.5) & (t < 17.5)
        apex_rt = float(t[sel][np.argmax(y[sel])])
        print(f"Asn 133.1>116: {peak_sampling(c, apex_rt - 0.4, apex_rt + 0.4)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
