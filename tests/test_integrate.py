"""Peak integration on synthetic peaks whose true area, apex and width are known."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import exponnorm

from asnmon.assay import Assay, Integration
from asnmon.integrate import integrate_group, integrate_injection, integrate_peak, noise_sd
from asnmon.records import Chromatogram, Injection, Role, RunMeta

RT = np.linspace(0.0, 6.0, 1800)  # 1,800 points over 6 min, as the instrument writes
DT = RT[1] - RT[0]
PARAMS = Integration()
SQRT2PI = float(np.sqrt(2.0 * np.pi))


def gauss(mu: float, sigma: float, height: float) -> np.ndarray:
    return height * np.exp(-0.5 * ((RT - mu) / sigma) ** 2)


def emg(mu: float, sigma: float, tau: float, area: float) -> np.ndarray:
    """Exponentially modified Gaussian with the given area."""
    return area * exponnorm.pdf(RT, tau / sigma, loc=mu, scale=sigma)


def trace(
    signal: np.ndarray,
    *,
    noise: float = 0.0,
    seed: int = 0,
    offset: float = 0.0,
    slope: float = 0.0,
) -> Chromatogram:
    rng = np.random.default_rng(seed)
    y = signal + offset + slope * (RT - 3.0) + rng.normal(0.0, noise, RT.size) * (noise > 0)
    return Chromatogram(id="t", index=0, rt=RT, intensity=y)


def peak_cases(draw: st.DrawFn, sigma_lo: float, sigma_hi: float) -> tuple:
    sigma = draw(st.floats(sigma_lo, sigma_hi))
    height = 10 ** draw(st.floats(3.0, 7.0))
    mu = draw(st.floats(2.9, 3.5))
    tau_ratio = draw(st.sampled_from([0.0, 0.3, 0.8, 1.5]))  # 0: Gaussian
    slope = draw(st.floats(-0.2, 0.2)) * height  # per minute
    offset = draw(st.floats(0.0, 2.0)) * height
    seed = draw(st.integers(0, 2**16))
    if tau_ratio == 0.0:
        sig = gauss(mu, sigma, height)
        area = height * sigma * SQRT2PI
    else:
        area = height * sigma * 2.5
        sig = emg(mu, sigma, tau_ratio * sigma, area)
    return sig, area, slope, offset, seed


@st.composite
def sharp_peaks(draw: st.DrawFn) -> tuple:
    return peak_cases(draw, 0.02, 0.06)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=sharp_peaks())
def test_area_within_2_pct_at_sn_100(case: tuple) -> None:
    sig, area, slope, offset, seed = case
    height = float(sig.max())
    p = integrate_peak(
        trace(sig, noise=height / 100, seed=seed, offset=offset, slope=slope), 2.6, 3.8, PARAMS, "t"
    )
    assert p is not None
    assert p.area == pytest.approx(area, rel=0.02)


def test_area_at_sn_10_median_5_pct_p95_10_pct() -> None:
    """At S/N 10 the noise alone moves an area by several per cent, so "every peak within
    10 %" is false for any integrator (measured: ~4 % of seeded cases exceed it, and a
    40-example property test failed or passed by which examples it drew). What must hold
    is the distribution: over 200 seeded peaks (Gaussian, 12-24 points per sigma, sloped
    and offset baselines), median |error| <= 5 % and 95th percentile <= 10 %, none lost."""
    rng = np.random.default_rng(2026)
    errors = []
    for k in range(200):
        sigma, height = rng.uniform(0.04, 0.08), 10 ** rng.uniform(3.0, 7.0)
        mu, slope, offset = rng.uniform(2.9, 3.5), rng.uniform(-0.2, 0.2), rng.uniform(0, 2)
        sig = gauss(mu, sigma, height)
        noisy = trace(sig, noise=height / 10, seed=k, offset=offset * height, slope=slope * height)
        p = integrate_peak(noisy, 2.6, 3.8, PARAMS, "t")
        assert p is not None, f"case {k}: no peak found at S/N 10"
        errors.append(abs(p.area / (height * sigma * SQRT2PI) - 1.0) * 100)
    assert float(np.median(errors)) <= 5.0
    assert float(np.percentile(errors, 95)) <= 10.0


@pytest.mark.parametrize(("mu", "sigma"), [(3.0, 0.03), (3.2017, 0.05), (3.4, 0.04)])
def test_apex_fwhm_and_sn_of_a_gaussian(mu: float, sigma: float) -> None:
    p = integrate_peak(
        trace(gauss(mu, sigma, 1e5), noise=100.0, seed=3, offset=500.0, slope=2e3),
        2.6,
        3.8,
        PARAMS,
        "t",
    )
    assert p is not None
    assert abs(p.apex_rt - mu) <= DT
    assert p.fwhm == pytest.approx(2.3548 * sigma, rel=0.03)
    assert p.sn == pytest.approx(1e3, rel=0.15)  # height / noise SD
    assert p.height == pytest.approx(1e5, rel=0.01)
    assert p.start_rt < mu < p.end_rt
    assert p.points == round((p.end_rt - p.start_rt) / DT) + 1
    assert not p.saturated
    assert not p.truncated


@settings(max_examples=25, deadline=None, derandomize=True)
@given(sigma=st.floats(0.02, 0.06), height=st.floats(1e3, 1e6), seed=st.integers(0, 999))
def test_doubling_the_peak_doubles_the_area(sigma: float, height: float, seed: int) -> None:
    def area(h: float) -> float:
        p = integrate_peak(
            trace(
                gauss(3.2, sigma, h),
                noise=height / 1000,
                seed=seed,
                offset=height,
                slope=0.1 * height,
            ),
            2.6,
            3.8,
            PARAMS,
            "t",
        )
        assert p is not None
        return p.area

    assert area(2 * height) == pytest.approx(2 * area(height), rel=0.01)


@pytest.mark.parametrize("noise", [0.0, 20.0])
def test_resolved_peaks_add_up(noise: float) -> None:
    a, b = gauss(2.5, 0.03, 1e4), gauss(3.5, 0.05, 4e3)
    both = trace(a + b, noise=noise, seed=5, offset=200.0, slope=50.0)
    pa = integrate_peak(both, 2.3, 2.7, PARAMS, "t")
    pb = integrate_peak(both, 3.3, 3.7, PARAMS, "t")
    alone_a = integrate_peak(
        trace(a, noise=noise, seed=5, offset=200.0, slope=50.0), 2.3, 2.7, PARAMS, "t"
    )
    assert pa is not None
    assert pb is not None
    assert alone_a is not None
    assert pa.end_rt < pb.start_rt  # baseline-resolved: integrated separately
    truth = float(np.trapezoid(a + b, RT))
    assert pa.area + pb.area == pytest.approx(truth, rel=0.01)
    assert pa.area == pytest.approx(alone_a.area, rel=0.01)


@pytest.mark.parametrize(("mu2", "h2"), [(3.15, 1e4), (3.16, 3e3), (3.14, 2e4)])
def test_valley_split_between_close_peaks(mu2: float, h2: float) -> None:
    s1, s2 = gauss(3.0, 0.03, 1e4), gauss(mu2, 0.03, h2)
    tr = trace(s1 + s2, noise=10.0, seed=11, offset=100.0)
    p1 = integrate_peak(tr, 2.9, 3.07, PARAMS, "t")
    p2 = integrate_peak(tr, 3.08, 3.25, PARAMS, "t")
    assert p1 is not None
    assert p2 is not None
    assert p1.end_rt == p2.start_rt  # the drop at the valley is shared
    valley = RT[(RT > 3.0) & (mu2 > RT)][np.argmin((s1 + s2)[(RT > 3.0) & (mu2 > RT)])]
    assert abs(p1.end_rt - valley) <= 3 * DT
    # perpendicular drop: the two areas make up the pair
    assert p1.area + p2.area == pytest.approx(float(np.trapezoid(s1 + s2, RT)), rel=0.02)
    assert p1.area == pytest.approx(float(np.trapezoid(s1, RT)), rel=0.08)


def test_anchor_picks_the_peak_nearest_the_is_apex() -> None:
    tr = trace(gauss(3.0, 0.03, 1e4) + gauss(3.3, 0.03, 5e4), noise=10.0, seed=2)
    assert integrate_peak(tr, 2.8, 3.5, PARAMS, "t").apex_rt == pytest.approx(3.3, abs=DT)
    anchored = integrate_peak(tr, 2.8, 3.5, PARAMS, "t", anchor_rt=3.02)
    assert anchored.apex_rt == pytest.approx(3.0, abs=DT)


@pytest.mark.parametrize(("mu", "lo", "hi"), [(5.95, 5.6, 6.0), (0.04, 0.0, 0.3), (6.1, 5.6, 6.0)])
def test_peak_cut_off_by_the_end_of_the_acquisition_is_truncated(
    mu: float, lo: float, hi: float
) -> None:
    p = integrate_peak(
        trace(gauss(mu, 0.05, 1e4), noise=10.0, seed=4, offset=100.0), lo, hi, PARAMS, "t"
    )
    assert p is not None
    assert p.truncated


@pytest.mark.parametrize(
    ("ceiling", "threshold", "saturated"),
    [
        (6e4, 1e9, True),  # clipped: a flat top of identical maxima
        (None, 9e4, True),  # apex above the configured detector ceiling
        (None, 1e9, False),
    ],
)
def test_saturation(ceiling: float | None, threshold: float, saturated: bool) -> None:
    y = gauss(3.2, 0.04, 1e5) + 100.0
    if ceiling is not None:
        y = np.minimum(y, ceiling)
    params = replace(PARAMS, saturation_intensity=threshold)
    p = integrate_peak(Chromatogram("t", 0, RT, y), 2.6, 3.8, params, "t")
    assert p is not None
    assert p.saturated is saturated


@pytest.mark.parametrize("seed", range(8))
def test_noise_alone_is_no_peak(seed: int) -> None:
    assert (
        integrate_peak(
            trace(np.zeros_like(RT), noise=50.0, seed=seed, offset=1e3, slope=100.0),
            2.6,
            3.8,
            PARAMS,
            "t",
        )
        is None
    )


@pytest.mark.parametrize(
    ("y", "lo", "hi"),
    [
        (np.zeros_like(RT), 2.6, 3.8),  # flat zero
        (gauss(1.0, 0.03, 1e4), 2.6, 3.8),  # a peak, but outside the window
        (gauss(3.2, 0.03, 1e4), 7.0, 8.0),  # window beyond the acquisition
        (gauss(3.2, 0.03, 1e4), 3.3, 3.2),  # empty window
    ],
)
def test_no_peak_cases(y: np.ndarray, lo: float, hi: float) -> None:
    assert integrate_peak(Chromatogram("t", 0, RT, y), lo, hi, PARAMS, "t") is None


def test_noise_sd_is_robust_to_a_slope() -> None:
    rng = np.random.default_rng(8)
    y = 1e4 * RT + rng.normal(0.0, 7.0, RT.size)
    assert noise_sd(y) == pytest.approx(7.0, rel=0.1)


def _injection(assay: Assay, signals: dict[str, np.ndarray]) -> Injection:
    traces = {
        k: trace(v, noise=20.0, seed=i, offset=100.0) for i, (k, v) in enumerate(signals.items())
    }
    return Injection(path=Path("x.mzML"), sha256="0", meta=RunMeta(), traces=traces)


def test_integrate_injection_anchors_the_analyte_on_the_is(assay: Assay) -> None:
    is_rt = 3.35  # shifted from the expected 3.20, still in the IS window
    signals = {
        "is_quant": gauss(is_rt, 0.04, 5e4),
        "is_qual": gauss(is_rt, 0.04, 2e4),
        # a larger neighbour 0.25 min away sits outside IS apex +/- 0.1
        "asn_quant": gauss(is_rt, 0.04, 1e4) + gauss(is_rt - 0.25, 0.04, 8e4),
    }
    peaks = integrate_injection(_injection(assay, signals), assay)
    assert set(peaks) == {t.id for t in assay.transitions}
    assert peaks["asn_qual"] is None  # no trace
    assert peaks["is_quant"].apex_rt == pytest.approx(is_rt, abs=DT)
    assert peaks["asn_quant"].apex_rt == pytest.approx(is_rt, abs=DT)
    assert peaks["is_qual"].apex_rt == pytest.approx(is_rt, abs=DT)


def test_integrate_injection_without_is_falls_back_to_the_expected_window(assay: Assay) -> None:
    signals = {"is_quant": np.zeros_like(RT), "asn_quant": gauss(3.5, 0.04, 1e4)}
    peaks = integrate_injection(_injection(assay, signals), assay)
    assert peaks["is_quant"] is None
    assert peaks["asn_quant"].apex_rt == pytest.approx(3.5, abs=DT)


# ---------------------------------------------------------------- peak groups

GROUP_ROLES = {"asn_quant": Role.ANALYTE_QUANT, "is_quant": Role.IS_QUANT, "is_qual": Role.IS_QUAL}


def _tr(tid: str, rt: np.ndarray, y: np.ndarray) -> Chromatogram:
    return Chromatogram(id=tid, index=0, rt=rt, intensity=y)


@st.composite
def groups(draw: st.DrawFn) -> tuple:
    sigma = draw(st.floats(0.02, 0.06))
    tau = draw(st.sampled_from([0.0, 0.5, 1.2])) * sigma
    mu = draw(st.floats(3.0, 3.4))
    h_is = 10 ** draw(st.floats(3.0, 6.0))
    h_an = draw(st.sampled_from([0.0, 0.01, 0.3, 1.0, 20.0])) * h_is
    noise = draw(st.floats(0.001, 0.05))
    rel = draw(st.floats(0.0, 0.15))  # noise growing with the signal (spiky tops)
    seed = draw(st.integers(0, 2**16))
    return sigma, tau, mu, h_is, h_an, noise, rel, seed


def _shape(mu: float, sigma: float, tau: float) -> np.ndarray:
    if tau == 0.0:
        return np.exp(-0.5 * ((RT - mu) / sigma) ** 2)
    s = exponnorm.pdf(RT, tau / sigma, loc=mu, scale=sigma)
    return s / s.max()


def _noisy(clean: np.ndarray, sd0: float, rel: float, rng: np.random.Generator) -> np.ndarray:
    return clean + rng.normal(0.0, 1.0, clean.size) * np.sqrt(sd0**2 + (rel * clean) ** 2)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=groups())
def test_group_members_share_boundaries_and_areas_are_never_negative(case: tuple) -> None:
    sigma, tau, mu, h_is, h_an, noise, rel, seed = case
    rng = np.random.default_rng(seed)
    shape = _shape(mu, sigma, tau)
    traces = {
        "is_quant": _tr("is_quant", RT, _noisy(300 + h_is * shape, noise * h_is, rel, rng)),
        "is_qual": _tr("is_qual", RT, _noisy(100 + 0.4 * h_is * shape, noise * h_is, rel, rng)),
        "asn_quant": _tr("asn_quant", RT, _noisy(500 + h_an * shape, noise * h_is, rel, rng)),
    }
    g = integrate_group(traces, GROUP_ROLES, 2.6, 3.8, PARAMS, analyte="asn")
    assert g.reference == "is_quant"
    assert g.peaks["is_quant"] is not None
    for p in g.peaks.values():
        if p is None:
            continue
        assert (p.start_rt, p.end_rt) == (g.start_rt, g.end_rt)
        assert p.area >= 0.0
        assert p.height >= 0.0
    assert g.start_rt <= mu <= g.end_rt
    assert not g.truncations  # the acquisition covers everything


@settings(max_examples=25, deadline=None, derandomize=True)
@given(case=groups(), k=st.floats(1e-3, 1e3))
def test_scaling_the_whole_group_leaves_its_ratio_unchanged(case: tuple, k: float) -> None:
    sigma, tau, mu, h_is, h_an, noise, rel, seed = case
    rng = np.random.default_rng(seed)
    shape = _shape(mu, sigma, tau)
    is_y = _noisy(300 + h_is * shape, noise * h_is, rel, rng)
    an_y = _noisy(500 + max(h_an, 0.5 * h_is) * shape, noise * h_is, rel, rng)

    def ratio(f: float) -> float:
        traces = {"is_quant": _tr("i", RT, f * is_y), "asn_quant": _tr("a", RT, f * an_y)}
        g = integrate_group(traces, GROUP_ROLES, 2.6, 3.8, PARAMS, analyte="asn")
        an, is_ = g.peaks["asn_quant"], g.peaks["is_quant"]
        assert an is not None and is_ is not None
        return an.area / is_.area

    assert ratio(k) == pytest.approx(ratio(1.0), rel=1e-6)


@pytest.mark.parametrize("cut_sigmas", [1.5, 2.5, 4.0])
def test_is_window_cutting_the_tail_leaves_the_ratio_unbiased(cut_sigmas: float) -> None:
    """The scheduled IS window ends on the peak: the analyte is cut alike, the ratio holds."""
    mu, sigma, tau = 3.2, 0.04, 0.03
    shape = _shape(mu, sigma, tau)
    rng = np.random.default_rng(7)
    is_y = _noisy(250 + 5e4 * shape, 60.0, 0.05, rng)
    an_y = _noisy(400 + 2e4 * shape, 60.0, 0.05, rng)
    stop = mu + cut_sigmas * sigma
    keep = stop >= RT
    traces = {"is_quant": _tr("i", RT[keep], is_y[keep]), "asn_quant": _tr("a", RT, an_y)}
    g = integrate_group(traces, GROUP_ROLES, 2.6, 3.8, PARAMS, analyte="asn")
    an, is_ = g.peaks["asn_quant"], g.peaks["is_quant"]
    assert an is not None and is_ is not None
    assert an.end_rt == is_.end_rt == pytest.approx(RT[keep][-1])
    assert an.area / is_.area == pytest.approx(0.4, rel=0.03)
    (cut,) = g.truncations  # the IS, right side, at the signal's level there
    assert (cut.transition, cut.side) == ("is_quant", "right")
    expected = 100.0 * float(shape[keep][-1])
    assert cut.pct_of_apex == pytest.approx(expected, abs=max(3.0, 0.15 * expected))
    assert is_.acquisition_cut and not an.acquisition_cut
    assert an.truncated  # held to the IS's end: cut too, but not by its own window


def test_spiky_top_stays_one_peak() -> None:
    """+/- 20 % spikes on a 15-points-across top: no valley split, the whole peak integrated."""
    rt = np.arange(0.6, 1.4, 0.011)
    shape = np.exp(-0.5 * ((rt - 0.95) / 0.035) ** 2)
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(20):
        y = (
            250
            + 4.5e4 * shape * (1 + 0.2 * rng.standard_normal(rt.size))
            + rng.normal(0, 80, rt.size)
        )
        p = integrate_peak(Chromatogram("t", 0, rt, y), 0.8, 1.1, PARAMS, "t")
        assert p is not None
        true = float(np.trapezoid(4.5e4 * shape, rt))
        hits += p.start_rt < 0.95 - 2 * 0.035 and p.end_rt > 0.95 + 2 * 0.035
        assert p.area == pytest.approx(true, rel=0.15)
    assert hits == 20


@pytest.mark.parametrize(("valley_pct", "split"), [(70.0, False), (25.0, True)])
def test_valley_splits_only_when_deep_relative_to_the_smaller_apex(
    valley_pct: float, split: bool
) -> None:
    """Two apexes, the smaller at 40 % of the larger: split only where the dip is deep."""
    # choose the second peak's distance so the valley sits at valley_pct of the smaller apex
    sigma, big, small = 0.03, 1e4, 4e3
    for d in np.arange(1.0, 8.0, 0.01) * sigma:
        y = gauss(3.0, sigma, big) + gauss(3.0 + d, sigma, small)
        seg = y[(RT > 3.0) & (3.0 + d > RT)]
        if seg.size and 100 * seg.min() / small <= valley_pct:
            break
    p = integrate_peak(trace(y, noise=5.0, seed=1, offset=100.0), 2.9, 3.05, PARAMS, "t")
    assert p is not None
    assert bool(p.end_rt < 3.0 + d) is split


def test_a_late_qualifier_is_cut_on_its_own_side_only(tmp_path: Path) -> None:
    """Qualifier opens on the rise, IS window ends on the tail: the qualifier's own cut is left.

    (Its right end is only held to the IS's shorter window; reporting "both" mixed the two.)
    """
    from asnmon.assay import load_assay
    from asnmon.mzml import read_injection
    from asnmon.simulate import SimConfig, plan_run, write_injection

    config = SimConfig(mode="realistic", scenarios=("truncated-is", "late-qualifier"), seed=3)
    inj = next(p for p in plan_run(config) if p.sample.sample_id == "QC-M-01")
    assay = load_assay()
    path = write_injection(inj, tmp_path / "q.mzML", config)
    peaks = integrate_injection(read_injection(path, assay), assay)
    qual_t, is_t = assay.by_role(Role.ANALYTE_QUAL), assay.is_quant
    assert qual_t is not None and is_t is not None
    qual, is_ = peaks[qual_t.id], peaks[is_t.id]
    assert qual is not None and is_ is not None
    assert qual.truncated and qual.acquisition_cut and qual.cut_side == "left"
    assert qual.cut_rt == pytest.approx(qual.start_rt)
    assert is_.acquisition_cut and is_.cut_side == "right"
