"""Calibration fits against independent implementations, and the ICH M10 rules."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import curve_fit

from asnmon.assay import CalibrationSpec
from asnmon.calibrate import back_calculate, fit_calibration, fit_curve, weights
from asnmon.records import CalibrationPoint

LEVELS = np.array([1.0, 2.5, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0])
SPEC = CalibrationSpec()


def standards(
    coef: tuple[float, float, float] = (0.0, 0.01, 0.0),
    reps: int = 1,
    bias: dict[tuple[int, int], float] | None = None,
) -> list[CalibrationPoint]:
    """Exact standards on the curve; ``bias[(level index, rep)]`` multiplies a ratio."""
    bias = bias or {}
    pts = []
    for i, x in enumerate(LEVELS):
        for r in range(reps):
            ratio = coef[0] + coef[1] * x + coef[2] * x * x
            pts.append(
                CalibrationPoint(
                    sample_id=f"CAL{i + 1:02d}-{r + 1}",
                    level=f"CAL{i + 1:02d}",
                    nominal=float(x),
                    area_ratio=ratio * bias.get((i, r), 1.0),
                )
            )
    return pts


def noisy_data(seed: int, quadratic: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.repeat(LEVELS, 2)
    y = 0.003 + 0.012 * x - (2e-6 * x * x if quadratic else 0.0)
    return x, y * (1 + rng.normal(0.0, 0.04, x.size))


@pytest.mark.parametrize("weighting", ["1/x^2", "1/x", "none"])
@pytest.mark.parametrize("model", ["linear", "quadratic"])
@pytest.mark.parametrize("seed", [1, 2])
def test_fit_matches_numpy_polyfit(weighting: str, model: str, seed: int) -> None:
    x, y = noisy_data(seed, model == "quadratic")
    deg = 1 if model == "linear" else 2
    ref = np.polyfit(x, y, deg, w=np.sqrt(weights(x, weighting)))[::-1]
    coef, r2 = fit_curve(x, y, model=model, weighting=weighting, zero_intercept=False)
    np.testing.assert_allclose(coef[: deg + 1], ref, rtol=1e-7, atol=1e-12)
    assert 0.9 < r2 <= 1.0


@pytest.mark.parametrize("weighting", ["1/x^2", "1/x", "none"])
@pytest.mark.parametrize(
    ("model", "zero"), [("linear", True), ("quadratic", True), ("linear", False)]
)
def test_fit_matches_scipy_curve_fit(weighting: str, model: str, zero: bool) -> None:
    x, y = noisy_data(7, model == "quadratic")
    sigma = 1.0 / np.sqrt(weights(x, weighting))

    def f(xx: np.ndarray, *p: float) -> np.ndarray:
        c0 = 0.0 if zero else p[0]
        rest = p if zero else p[1:]
        c2 = rest[1] if model == "quadratic" else 0.0
        return c0 + rest[0] * xx + c2 * xx * xx

    n = (2 if model == "linear" else 3) - zero
    popt, _ = curve_fit(f, x, y, p0=[0.01] * n, sigma=sigma)
    coef, _ = fit_curve(x, y, model=model, weighting=weighting, zero_intercept=zero)
    expected = [0.0] * zero + list(popt) + [0.0] * (3 - n - zero)
    np.testing.assert_allclose(coef, expected, rtol=1e-5, atol=1e-10)


def test_weighted_r2_by_hand() -> None:
    x, y = noisy_data(3, False)
    coef, r2 = fit_curve(x, y, model="linear", weighting="1/x^2", zero_intercept=False)
    w = 1 / x**2
    fit = coef[0] + coef[1] * x
    ybar = np.sum(w * y) / np.sum(w)
    assert r2 == pytest.approx(1 - np.sum(w * (y - fit) ** 2) / np.sum(w * (y - ybar) ** 2))


@settings(max_examples=60, deadline=None)
@given(
    c0=st.floats(-0.01, 0.05),
    c1=st.floats(1e-3, 1.0),
    c2=st.floats(-5e-7, 5e-6),
    model=st.sampled_from(["linear", "quadratic"]),
    weighting=st.sampled_from(["1/x^2", "1/x", "none"]),
)
def test_exact_points_are_back_calculated(
    c0: float, c1: float, c2: float, model: str, weighting: str
) -> None:
    if model == "linear":
        c2 = 0.0
    y = c0 + c1 * LEVELS + c2 * LEVELS**2
    coef, r2 = fit_curve(LEVELS, y, model=model, weighting=weighting, zero_intercept=False)
    assert r2 == pytest.approx(1.0, abs=1e-9)
    for x, ratio in zip(LEVELS, y, strict=True):
        assert back_calculate(float(ratio), coef, model) == pytest.approx(x, rel=1e-6)


@pytest.mark.parametrize(
    ("coef", "x"),
    [
        ((0.01, 0.02, 1e-5), 300.0),
        ((0.01, 0.02, -1e-5), 300.0),  # concave: the rising branch, below the vertex at 1000
        ((-0.002, 0.5, 1e-14), 2.5),  # c2 tiny: no loss of precision
        ((0.0, 0.02, -2e-5), 499.0),
    ],
)
def test_quadratic_inverse_round_trip(coef: tuple[float, float, float], x: float) -> None:
    ratio = coef[0] + coef[1] * x + coef[2] * x * x
    assert back_calculate(ratio, coef, "quadratic") == pytest.approx(x, rel=1e-9)


@pytest.mark.parametrize(
    ("ratio", "coef", "model"),
    [
        (20.0, (0.0, 0.02, -1e-5), "quadratic"),  # above the top of a concave curve
        (-2.0, (0.0, 0.02, 1e-4), "quadratic"),  # below the bottom of a convex curve
        (1.0, (0.0, 0.0, 0.0), "linear"),
        (math.nan, (0.0, 1.0, 0.0), "linear"),
    ],
)
def test_no_real_root_is_none(ratio: float, coef: tuple[float, float, float], model: str) -> None:
    assert back_calculate(ratio, coef, model) is None


def test_exact_curve_is_accepted() -> None:
    cal = fit_calibration(standards((0.002, 0.01, 0.0)), SPEC, 3, unit="µM")
    assert cal.accepted
    assert cal.version == 3
    assert (cal.lloq, cal.uloq) == (1.0, 500.0)
    assert cal.coefficients == pytest.approx((0.002, 0.01, 0.0), abs=1e-12)
    assert all(p.accuracy_pct == pytest.approx(100.0) for p in cal.points)
    assert cal.reason.startswith("accepted: 8/8 standards within limits, 8 levels")


def test_one_bad_standard_is_excluded_and_the_refit_accepted() -> None:
    pts = standards(reps=2, bias={(1, 1): 0.80})  # CAL02 rep 2 reads 20 % low
    cal = fit_calibration(pts, SPEC, 1, unit="µM")
    assert cal.accepted
    bad = [p for p in cal.points if p.excluded]
    assert [p.sample_id for p in bad] == ["CAL02-2"]
    assert bad[0].accuracy_pct == pytest.approx(80.0, abs=0.5)
    assert "15/16 standards" in cal.reason
    assert "excluded CAL02 (rep 2): -20.0 % at 2.5 µM" in cal.reason
    assert cal.coefficients[1] == pytest.approx(0.01, rel=1e-9)  # refit on the good ones


@pytest.mark.parametrize(
    ("bias", "words"),
    [
        ({(2, 0): 1.3, (3, 0): 0.7, (5, 0): 1.4}, "only 5/8 standards within limits"),
        ({(2, 0): 1.3, (3, 0): 0.7}, "only 6 levels pass"),
    ],
)
def test_too_many_failing_is_rejected(bias: dict, words: str) -> None:
    spec = replace(SPEC, min_levels=7)
    cal = fit_calibration(standards(bias=bias), spec, 2)
    assert not cal.accepted
    assert cal.reason.startswith("rejected: ")
    assert words in cal.reason


@pytest.mark.parametrize(
    ("bias", "lloq", "uloq", "words"),
    [
        ({(0, 0): 1.5}, 2.5, 500.0, "LLOQ raised to 2.5 µM"),
        ({(7, 0): 0.6}, 1.0, 250.0, "ULOQ lowered to 250 µM"),
    ],
)
def test_failing_end_level_shrinks_the_range(
    bias: dict, lloq: float, uloq: float, words: str
) -> None:
    cal = fit_calibration(standards(bias=bias), replace(SPEC, min_levels=6), 1, unit="µM")
    assert cal.accepted
    assert (cal.lloq, cal.uloq) == (lloq, uloq)
    assert words in cal.reason


@pytest.mark.parametrize(
    ("level", "factor", "excluded"),
    [
        (0, 1.19, False),  # +19 % at the LLOQ: within its ±20 %
        (0, 1.25, True),
        (1, 1.19, True),  # +19 % elsewhere: outside ±15 %
    ],
)
def test_lloq_has_the_wider_limit(level: int, factor: float, excluded: bool) -> None:
    # unweighted: one low standard hardly moves the curve, so its deviation stays put
    cal = fit_calibration(standards(bias={(level, 0): factor}), replace(SPEC, weighting="none"), 1)
    p = cal.points[level]
    assert p.excluded is excluded
    assert abs(p.accuracy_pct - 100) > 15  # each case fails the general ±15 %


def test_low_r2_is_mentioned_not_rejected() -> None:
    cal = fit_calibration(
        standards(bias={(i, 0): b for i, b in enumerate([1.1, 0.9, 1.1, 0.9, 1.1, 0.9, 1.1, 0.9])}),
        replace(SPEC, r2_min=0.99999),
        1,
    )
    assert cal.accepted
    assert "r² below 0.99999" in cal.reason


@pytest.mark.parametrize(
    ("pts", "words"),
    [
        ([], "no non-zero calibration standards"),
        ([CalibrationPoint("a", "CAL01", 1.0, 0.01)], "only 1 standard(s)"),
        (
            [CalibrationPoint(f"a{i}", "CAL01", 5.0, 0.05 + i * 1e-3) for i in range(4)],
            "cannot be fitted",
        ),
        (
            [CalibrationPoint(f"a{i}", None, float(x), math.nan) for i, x in enumerate(LEVELS)],
            "only 0 standard(s) with an area ratio",
        ),
        (
            [CalibrationPoint("blank", None, 0.0, 0.0), CalibrationPoint("z", None, 0.0, 0.001)],
            "no non-zero calibration standards",
        ),
    ],
)
def test_degenerate_input_is_rejected_not_raised(pts: list, words: str) -> None:
    cal = fit_calibration(pts, SPEC, 1)
    assert not cal.accepted
    assert words in cal.reason


def test_zero_points_and_missing_ratios_are_kept_but_not_fitted() -> None:
    pts = [CalibrationPoint("zero", "CAL00", 0.0, 0.002), *standards(reps=2)]
    pts[3] = replace(pts[3], area_ratio=math.nan)
    cal = fit_calibration(pts, SPEC, 1)
    assert cal.accepted  # 15/16 pass; the zero sample is not a standard
    assert "15/16" in cal.reason
    assert cal.points[0].excluded
    assert "zero" in cal.points[0].reason
    assert cal.points[3].excluded
    assert cal.points[3].back_calculated is None
