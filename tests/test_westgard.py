"""Westgard rules on hand-made QC sequences (guide mean 100, SD 5)."""

from __future__ import annotations

import math
import random

import pytest

from asnmon.records import Severity
from asnmon.westgard import GuideSet, QcPoint, evaluate_westgard, guide_set, westgard_flags

G = GuideSet("QC-M", 100.0, 5.0, 20, "test")


def pts(zs: list[float], runs: list[str] | None = None) -> list[QcPoint]:
    runs = runs or [f"R{i:02d}" for i in range(len(zs))]
    return [
        QcPoint(r, f"2024-05-{i + 1:02d}T08:00", "QC-M", 100 + 5 * z)
        for i, (z, r) in enumerate(zip(zs, runs, strict=True))
    ]


def rules_at_last(zs: list[float], runs: list[str] | None = None) -> set[str]:
    p = pts(zs, runs)
    return {v.rule for v in evaluate_westgard(p, G) if v.point == p[-1]}


@pytest.mark.parametrize(
    ("zs", "expected"),
    [
        ([1.99], set()),
        ([2.01], {"WESTGARD_1_2S"}),
        ([-2.01], {"WESTGARD_1_2S"}),
        ([2.99], {"WESTGARD_1_2S"}),
        ([3.01], {"WESTGARD_1_3S"}),
        ([2.1, 2.1], {"WESTGARD_1_2S", "WESTGARD_2_2S"}),
        ([2.1, -2.1], {"WESTGARD_1_2S"}),  # different runs: not R-4s
        ([1.1, 1.1, 1.1, 1.1], {"WESTGARD_4_1S"}),
        ([1.1, 1.1, 0.9, 1.1], set()),
        ([0.1] * 10, {"WESTGARD_10X"}),
        ([0.1] * 9 + [-0.1], set()),
    ],
)
def test_rules(zs: list[float], expected: set[str]) -> None:
    assert rules_at_last(zs) == expected


@pytest.mark.parametrize(("a", "b", "hit"), [(2.1, -2.1, True), (2.0, -1.9, False)])
def test_r4s_within_one_run(a: float, b: float, hit: bool) -> None:
    assert ("WESTGARD_R_4S" in rules_at_last([a, b], ["R1", "R1"])) is hit


def test_guide_set_from_runs_and_dates() -> None:
    p = pts([0, 1, -1, 0, -0.5, 10], ["A", "A", "B", "B", "C", "D"])
    g = guide_set(p, "QC-M", runs=["A", "B"])
    assert g is not None
    assert g.n == 4
    assert g.small
    assert g.mean == pytest.approx(100.0)
    g2 = guide_set(p, "QC-M", start="2024-05-01", end="2024-05-05T23:59")
    assert g2 is not None
    assert g2.n == 5
    assert not g2.small
    assert guide_set(p, "QC-M", runs=["D"]) is None


def test_flags_for_the_run_only_and_small_guide_warning() -> None:
    p = pts([0, 0, 3.5], ["A", "B", "C"])
    small = GuideSet("QC-M", 100.0, 5.0, 3, "runs A, B")
    flags = westgard_flags(p, [small], "C")
    assert [f.code for f in flags] == ["GUIDE_SET_SMALL", "WESTGARD_1_3S"]
    f = flags[1]
    assert f.severity is Severity.FAIL
    assert f.limit == pytest.approx(115.0)
    assert "+3.5 SD" in f.message
    assert westgard_flags(p, [G], "A") == []


@pytest.mark.parametrize(
    ("kwargs", "expected_n"),
    [
        ({}, 4),  # every other run: A and B, two QC-M each
        ({"runs": ["A"]}, 2),
        ({"start": "2026-01-02", "end": "2026-01-02"}, 2),  # B's day, C's own points excluded
        ({"start": "1990-01-01", "end": "1990-12-31"}, None),  # nothing in range: no guide
    ],
)
def test_guides_for_picks_the_guide_set_as_the_settings_say(
    kwargs: dict[str, object], expected_n: int | None
) -> None:
    from asnmon.westgard import guides_for

    points = [
        QcPoint("A", "2026-01-01T09:00:00Z", "QC-M", 100.0),
        QcPoint("A", "2026-01-01T10:00:00Z", "QC-M", 102.0),
        QcPoint("B", "2026-01-02T09:00:00Z", "QC-M", 98.0),
        QcPoint("B", "2026-01-02T10:00:00Z", "QC-M", 101.0),
        QcPoint("C", "2026-01-03T09:00:00Z", "QC-M", 120.0),
    ]
    guides = guides_for(points, "C", **kwargs)  # type: ignore[arg-type]
    assert (guides["QC-M"].n if "QC-M" in guides else None) == expected_n


def test_a_first_run_is_its_own_guide() -> None:
    from asnmon.westgard import guides_for

    points = [QcPoint("A", f"2026-01-01T0{i}:00:00Z", "QC-L", 100.0 + i) for i in range(3)]
    assert guides_for(points, "A")["QC-L"].n == 3


def _r4s_by_scan(points: list[QcPoint], guide: GuideSet) -> list[tuple[int, int]]:
    """R-4s as the rule reads: each point against every earlier one of its run."""
    ps = sorted(points, key=lambda p: (p.acquired, p.run_id))
    z = [(p.value - guide.mean) / guide.sd for p in ps]
    out = []
    for i, p in enumerate(ps):
        far = [
            k
            for k in range(i)
            if ps[k].run_id == p.run_id and abs(z[k] - z[i]) > 4 and (z[k] > 0) != (z[i] > 0)
        ]
        if far:
            out.append((max(far, key=lambda k: abs(z[k] - z[i])), i))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_r4s_pairs_each_point_with_the_farthest_first_of_its_run(seed: int) -> None:
    """The sorted walk (``_farthest``) picks the scan's partner, ties and infinities too."""
    rng = random.Random(seed)
    ties = [100.0, 80.0, 120.0, 84.0, math.nextafter(84.0, 0.0), 116.0, 117.0]
    points = []
    for i in range(150):
        value = rng.choice(ties) if rng.random() < 0.4 else rng.gauss(100.0, 8.0)
        if rng.random() < 0.03:
            value = rng.choice([math.nan, math.inf, -math.inf])
        points.append(QcPoint(rng.choice("AB"), f"2024-05-01T{i:04d}", "QC-M", value))
    ps = sorted(points, key=lambda p: (p.acquired, p.run_id))
    found = [
        (ps.index(v.involved[0]), ps.index(v.point))
        for v in evaluate_westgard(points, G)
        if v.rule == "WESTGARD_R_4S"
    ]
    assert found == _r4s_by_scan(points, G)
    assert found  # the case is exercised


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"runs": ("R1", "R3")},
        {"start": "2024-01-03", "end": "2024-01-05"},
        {"end": "2024-01-04"},
    ],
)
def test_run_flags_kept_per_level_are_the_guide_sets_and_flags_worked_out_whole(
    options: dict[str, object],
) -> None:
    """The pipeline judges each level again only when its rows changed (a memo across
    QCs): after every QC, and after a refit moves every value, the same flags as
    ``guides_for`` and ``westgard_flags`` on all the points."""
    from asnmon.westgard import LevelMemo, guides_for, run_westgard_flags

    rng = random.Random(7)
    rows: list[tuple[str, str, str, float]] = [
        (run, f"2024-01-0{1 + k % 8}T10:{k:02d}:00", rng.choice("LMH"), rng.gauss(100, 6))
        for k, run in enumerate(["R1"] * 12 + ["R3"] * 9)
    ]
    memo: LevelMemo = {}
    for k in range(40):
        if k == 25:  # a refit: every value of the run moves
            rows = [(r, a, lv, v * 1.01 if r == "R2" else v) for r, a, lv, v in rows]
        else:
            rows.append(
                ("R2", f"2024-01-0{1 + k % 8}T12:{k:02d}:00", rng.choice("LMH"), rng.gauss(103, 8))
            )
        points = [QcPoint(*r) for r in rows]
        whole = westgard_flags(points, guides_for(points, "R2", **options).values(), "R2")  # type: ignore[arg-type]
        assert run_westgard_flags(rows, "R2", memo=memo, **options) == whole  # type: ignore[arg-type]
    assert any(f.code.startswith("WESTGARD") for f in whole), "no rule fired: a weak test"
