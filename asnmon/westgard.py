"""Levey-Jennings / Westgard multirules on each QC level across runs: pure functions.

Input is plain data -- ``QcPoint(run_id, acquired, level, value)`` -- so the
rules can be tested without a database and fed from any query (the store, an
export, a LIMS). ``value`` is whatever the lab charts: the measured
concentration or the accuracy %; the guide set must use the same.

Rules (Westgard 1981; ASSAY.md), each evaluated when a point arrives, on that
level's points in acquisition order across runs, z = (value - mean) / SD of
the guide set:

=================  ========  ================================================
WESTGARD_1_2S      warning   |z| > 2
WESTGARD_1_3S      fail      |z| > 3
WESTGARD_2_2S      fail      this and the previous point beyond the same 2 SD
WESTGARD_R_4S      fail      within one run, this point and another of the
                             level differ by > 4 SD (one above, one below)
WESTGARD_4_1S      fail      four consecutive beyond the same 1 SD
WESTGARD_10X       fail      ten consecutive on one side of the mean
=================  ========  ================================================

The guide set (mean, SD) comes from chosen runs or a date range; fewer than
``MIN_GUIDE_POINTS`` (5, as Panorama warns) gives a GUIDE_SET_SMALL info flag,
because an SD from 3 points can be half or double the true one.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from asnmon.records import Flag, Severity

MIN_GUIDE_POINTS = 5
SOURCE = "Westgard multirules (Westgard et al. 1981); guide set as in Panorama"
RULES = (
    "WESTGARD_1_3S",
    "WESTGARD_2_2S",
    "WESTGARD_R_4S",
    "WESTGARD_4_1S",
    "WESTGARD_10X",
    "WESTGARD_1_2S",
)


@dataclass(frozen=True, slots=True)
class QcPoint:
    run_id: str
    acquired: datetime | str  # ISO 8601 strings sort correctly; do not mix the two
    level: str
    value: float


@dataclass(frozen=True, slots=True)
class GuideSet:
    level: str
    mean: float
    sd: float
    n: int
    basis: str  # which runs or dates, in words

    @property
    def small(self) -> bool:
        return self.n < MIN_GUIDE_POINTS


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    severity: Severity
    point: QcPoint
    z: float
    involved: tuple[QcPoint, ...]
    message: str


def ordered(points: Iterable[QcPoint], level: str) -> list[QcPoint]:
    """One level's points in acquisition order (run id breaks ties)."""
    return sorted((p for p in points if p.level == level), key=lambda p: (p.acquired, p.run_id))


def guide_set(
    points: Iterable[QcPoint],
    level: str,
    *,
    runs: Sequence[str] | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
) -> GuideSet | None:
    """Mean and SD of a level's points from ``runs`` and/or ``start``-``end`` (inclusive).

    None when fewer than 2 finite points qualify (no SD).
    """
    chosen = [
        p
        for p in ordered(points, level)
        if (runs is None or p.run_id in runs)
        and (start is None or p.acquired >= start)  # type: ignore[operator]
        and (end is None or p.acquired <= end)  # type: ignore[operator]
        and math.isfinite(p.value)
    ]
    if len(chosen) < 2:
        return None
    values = [p.value for p in chosen]
    parts = []
    if runs is not None:
        parts.append(f"runs {', '.join(sorted(set(runs)))}")
    if start is not None or end is not None:
        parts.append(f"{start or '...'} to {end or '...'}")
    return GuideSet(
        level=level,
        mean=statistics.fmean(values),
        sd=statistics.stdev(values),
        n=len(values),
        basis="; ".join(parts) or "all points",
    )


def _guide_basis(
    run_ids: Iterable[str],
    run_id: str,
    runs: Sequence[str],
    start: str | None,
    end: str | None,
) -> tuple[list[str] | None, str | None]:
    """The runs a guide set is taken from (None: any, by date) and its inclusive end.

    ``runs`` if given; else none when dated; else every other run, or the run itself
    when it is the first. A date-only ``end`` means the whole of that day.
    """
    dated = start is not None or end is not None
    others = sorted({r for r in run_ids if r != run_id})
    chosen: list[str] | None = list(runs) if runs else (None if dated else (others or [run_id]))
    until = f"{end}T23:59:59.999" if end and len(end) == 10 else end
    return chosen, until


def guides_for(
    points: Sequence[QcPoint],
    run_id: str,
    *,
    runs: Sequence[str] = (),
    start: str | None = None,
    end: str | None = None,
) -> dict[str, GuideSet]:
    """The guide set per QC level of ``run_id``: one rule for the pipeline and every view.

    ``runs`` if given; else the QCs acquired from ``start`` to ``end`` (dates,
    inclusive) if either is given; else every other run — or the run itself when it
    is the first, so a first run still gets a (within-run) chart.
    """
    chosen, until = _guide_basis({p.run_id for p in points}, run_id, runs, start, end)
    out = {}
    for level in sorted({p.level for p in points if p.run_id == run_id}):
        guide = guide_set(points, level, runs=chosen, start=start, end=until)
        if guide is not None:
            out[level] = guide
    return out


QcRow = tuple[str, str, str, float]  # (run_id, acquired, level, value): ``Store.qc_values``
# A level's flags and what they were judged on: (run, guide-set choice, the level's rows).
LevelMemo = dict[str, tuple[tuple[object, ...], list[Flag]]]


def run_westgard_flags(
    rows: Sequence[QcRow],
    run_id: str,
    *,
    runs: Sequence[str] = (),
    start: str | None = None,
    end: str | None = None,
    memo: LevelMemo | None = None,
) -> list[Flag]:
    """``westgard_flags(points, guides_for(points, run_id, ...).values(), run_id)`` from
    ``Store.qc_values`` rows, each level judged again only when its rows changed.

    The pipeline re-judges the run at every QC, and a QC changes its own level only:
    the other levels' guide sets and violations are kept in ``memo`` (per level, by
    the rows they were judged on) instead of being worked out again.
    """
    chosen, until = _guide_basis({r[0] for r in rows}, run_id, runs, start, end)
    basis = (run_id, None if chosen is None else tuple(chosen), start, until)
    by_level: dict[str, list[QcRow]] = {}
    mine: set[str] = set()
    for r in rows:
        by_level.setdefault(r[2], []).append(r)
        if r[0] == run_id:
            mine.add(r[2])
    flags: list[Flag] = []
    for level in sorted(mine):
        key = (basis, tuple(by_level[level]))
        kept = memo.get(level) if memo is not None else None
        if kept is not None and kept[0] == key:
            flags += kept[1]
            continue
        points = [QcPoint(*r) for r in by_level[level]]
        guide = guide_set(points, level, runs=chosen, start=start, end=until)
        found = westgard_flags(points, [guide], run_id) if guide is not None else []
        if memo is not None:
            memo[level] = (key, found)
        flags += found
    return flags


def evaluate_westgard(points: Iterable[QcPoint], guide: GuideSet) -> list[Violation]:
    """Every violation on ``guide.level``'s points, in order (several rules may fire at once)."""
    return _violations(ordered(points, guide.level), guide, None)


def _violations(pts: list[QcPoint], guide: GuideSet, run_id: str | None) -> list[Violation]:
    """The violations on ``pts`` (one level, in order); only ``run_id``'s points if given.

    Every point still takes part as a neighbour (2-2s, 4-1s, 10x look back across
    runs). R-4s keeps each run's earlier points sorted by z (``_farthest``): before,
    every point scanned all earlier ones, O(n^2) per level at every QC.
    """
    if not guide.sd > 0:
        return []
    z = [(p.value - guide.mean) / guide.sd for p in pts]
    side = _Sides(
        _streaks(v > 1 for v in z),
        _streaks(v < -1 for v in z),
        _streaks(v > 0 for v in z),
        _streaks(v < 0 for v in z),
    )
    out: list[Violation] = []
    g = f"guide set mean {guide.mean:.4g}, SD {guide.sd:.3g} (n = {guide.n})"
    by_z: dict[str, list[tuple[float, int]]] = {}  # run -> its points so far, (z, index) sorted
    for i, p in enumerate(pts):
        zi = z[i]
        seen = by_z.setdefault(p.run_id, [])
        if run_id is None or p.run_id == run_id:
            _rules(pts, z, side, i, _farthest(seen, zi), guide, g, out)
        if zi == zi:  # a NaN is never more than 4 SD from anything
            bisect.insort(seen, (zi, i))
    return out


def _farthest(seen: list[tuple[float, int]], zi: float) -> int | None:
    """R-4s's partner for ``zi`` among ``seen`` (its run's earlier points, sorted): across
    the mean, more than 4 SD away, the farthest, the first of equals.

    The same point as a scan of the run in order takes (``max`` keeps the first of
    equal distances): across the mean the distance only grows towards the run's
    lowest z (this one above the mean) or highest (this one not above), because
    rounding is monotone, so the equals are the first ones met from that end.
    """
    if not seen or zi != zi:
        return None
    above = zi > 0
    walk = iter(seen) if above else reversed(seen)
    z0, k = next(walk)
    if (z0 > 0) == above:
        return None  # no earlier point of the run on the other side
    far = abs(z0 - zi)
    if not far > 4:
        return None
    for zk, j in walk:
        if (zk > 0) == above or abs(zk - zi) != far:
            break
        k = min(k, j)
    return k


@dataclass(frozen=True, slots=True)
class _Sides:
    """How many points in a row, up to each, lie beyond +1 SD, -1 SD, above and below the
    mean (worked out once: 4-1s and 10x ask at every point)."""

    above_1sd: list[int]
    below_1sd: list[int]
    above: list[int]
    below: list[int]


def _streaks(beyond: Iterable[bool]) -> list[int]:
    """For each point, the number of consecutive points ending with it that are beyond."""
    out: list[int] = []
    n = 0
    for b in beyond:
        n = n + 1 if b else 0
        out.append(n)
    return out


def _rules(
    pts: list[QcPoint],
    z: list[float],
    side: _Sides,
    i: int,
    partner: int | None,
    guide: GuideSet,
    g: str,
    out: list[Violation],
) -> None:
    """The rules at point ``i`` (``partner``: its R-4s pair in its run, if any), onto ``out``."""
    p, zi = pts[i], z[i]

    def add(rule: str, sev: Severity, involved: Sequence[int], text: str) -> None:
        out.append(
            Violation(
                rule,
                sev,
                p,
                zi,
                tuple(pts[k] for k in involved),
                f"{guide.level} in run {p.run_id} = {p.value:.4g} ({zi:+.1f} SD): {text}; {g}.",
            )
        )

    if abs(zi) > 3:
        add("WESTGARD_1_3S", Severity.FAIL, [i], "beyond 3 SD (1-3s, reject)")
    elif abs(zi) > 2:
        add("WESTGARD_1_2S", Severity.WARNING, [i], "beyond 2 SD (1-2s, warning)")
    if i >= 1 and ((zi > 2 and z[i - 1] > 2) or (zi < -2 and z[i - 1] < -2)):
        add("WESTGARD_2_2S", Severity.FAIL, [i - 1, i], "two in a row beyond the same 2 SD")
    if partner is not None:
        k = partner
        add("WESTGARD_R_4S", Severity.FAIL, [k, i], f"range {abs(z[k] - zi):.1f} SD in one run")
    if side.above_1sd[i] >= 4 or side.below_1sd[i] >= 4:
        add("WESTGARD_4_1S", Severity.FAIL, range(i - 3, i + 1), "four in a row beyond 1 SD")
    if side.above[i] >= 10 or side.below[i] >= 10:
        add("WESTGARD_10X", Severity.FAIL, range(i - 9, i + 1), "ten in a row on one side")


def westgard_flags(
    points: Iterable[QcPoint], guides: Iterable[GuideSet], run_id: str
) -> list[Flag]:
    """Run-level flags for ``run_id``: its points' violations and any small guide set."""
    pts = list(points)
    flags: list[Flag] = []
    actions = {
        Severity.WARNING: "Look at the other QCs and the chart; no action if it stays alone.",
        Severity.FAIL: "Reject the run's results for this QC level's range until the cause "
        "(calibrators, reagent lot, instrument) is found.",
    }
    for guide in guides:
        if guide.small:
            flags.append(
                Flag(
                    "GUIDE_SET_SMALL",
                    Severity.INFO,
                    f"{guide.level}: the guide set holds only {guide.n} points (fewer than "
                    f"{MIN_GUIDE_POINTS}); its SD is uncertain and the Westgard rules with it.",
                    "Add runs to the guide set when enough in-control runs exist.",
                    float(guide.n),
                    float(MIN_GUIDE_POINTS),
                    SOURCE,
                    {"level": guide.level},
                )
            )
        for v in _violations(ordered(pts, guide.level), guide, run_id):
            flags.append(
                Flag(
                    v.rule,
                    v.severity,
                    v.message,
                    actions[v.severity],
                    v.point.value,
                    guide.mean
                    + math.copysign(2 if v.rule == "WESTGARD_1_2S" else 3, v.z) * guide.sd
                    if v.rule in ("WESTGARD_1_2S", "WESTGARD_1_3S")
                    else None,
                    SOURCE,
                    {"level": guide.level, "z": v.z, "guide_n": guide.n, "basis": guide.basis},
                )
            )
    return flags


def qc_points(results: pl.DataFrame) -> list[QcPoint]:
    """QC accuracy % per injection from ``Store.results()`` rows (all runs)."""
    qc = results.filter(
        (pl.col("sample_type") == "qc")
        & pl.col("accuracy_pct").is_not_null()
        & pl.col("level").is_not_null()
    )
    out = []
    for r in qc.iter_rows(named=True):
        when = r.get("acquired_at") or r.get("ingested_at") or ""
        out.append(QcPoint(r["run_id"], str(when), r["level"], float(r["accuracy_pct"])))
    return out
