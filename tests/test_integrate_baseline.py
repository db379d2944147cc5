"""The analyte's baseline against its IS's (BASELINE_UNCERTAIN), and the interference settings.

Simulated files with known truth: the area ratio each was rendered from.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import simulated_realistic as simulated
from scipy.stats import exponnorm

from asnmon.assay import Assay, load_assay
from asnmon.integrate import integrate_groups
from asnmon.integrate.baseline import baseline_offset
from asnmon.mzml import read_injection
from asnmon.pipeline import process_file
from asnmon.records import Chromatogram, Severity
from asnmon.simulate import SimConfig
from asnmon.simulate.realistic import REALISM, _plan
from asnmon.simulate.signals import _apex_offset


@pytest.fixture(scope="module")
def assay() -> Assay:
    return load_assay()


def ratio_error_pct(path: Path, assay: Assay) -> float:
    (group, *_) = integrate_groups(read_injection(path, assay), assay)
    an, is_ = group.peaks[assay.analyte_quant.id], group.peaks[assay.is_quant.id]
    assert an is not None and is_ is not None
    return an.area / is_.area


RT = np.arange(2.6, 3.8, 0.012)  # a 0.72 s cycle


def trace(tid: str, area: float, base: float, rng: np.random.Generator) -> Chromatogram:
    sigma, tau = REALISM.sigma, REALISM.tau
    y = area * exponnorm.pdf(RT, tau / sigma, loc=3.1, scale=sigma) + base
    y = y * (1 + 0.03 * rng.standard_normal(RT.size)) + 30 * rng.standard_normal(RT.size)
    return Chromatogram(tid, 0, RT, y)


@pytest.mark.parametrize("seed", range(3))
def test_a_baseline_set_too_high_on_the_analyte_shows_as_its_offset(seed: int) -> None:
    rng = np.random.default_rng(seed)
    an, is_ = trace("an", 2000.0, 300.0, rng), trace("is", 8000.0, 500.0, rng)
    bounds = (3.05, 3.45)
    m = (bounds[0] <= RT) & (bounds[1] >= RT)
    area = float(np.trapezoid(an.intensity[m] - 300.0, RT[m]))
    noise = (30.0, 30.0, 0.03)
    right = baseline_offset(an, (300.0, 0.0), is_, (500.0, 0.0), bounds, area, noise, "is")
    assert right is not None and abs(right.offset_pct) < 1.5 and right.t < 2.0
    # 600 counts too high over 0.4 min: 240 counts x min of an area of ~2,000 -> -12 %
    wrong = baseline_offset(an, (900.0, 0.0), is_, (500.0, 0.0), bounds, area, noise, "is")
    assert wrong is not None and wrong.t > 5.0
    assert wrong.offset_pct == pytest.approx(-100.0 * 600.0 * 0.4 / area, rel=0.15)
    # the scale between the two profiles does not care: it is the ratio either way
    assert wrong.profile_ratio == pytest.approx(right.profile_ratio, rel=0.03)


# drift, seed 17, CAL03: the IS's left "quiet" stretch is a hump and the right one its tail
# (area ratio +7.8 % off with no flag before BASELINE_UNCERTAIN)
def test_baselines_that_disagree_are_said_with_numbers(tmp_path: Path, assay: Assay) -> None:
    path, inj, truth = simulated(tmp_path, ("drift",), 17, "CAL03")
    assert abs(ratio_error_pct(path, assay) / truth - 1) > 0.05  # the case this is about
    outcome = process_file(path, "", inj.sample, assay, None)
    (flag,) = [f for f in outcome.flags if f.code == "BASELINE_UNCERTAIN"]
    assert flag.severity is Severity.WARNING
    assert abs(flag.details["offset_pct"]) >= assay.integration.baseline_offset_pct
    assert flag.details["t"] >= assay.integration.baseline_offset_t
    assert "%" in flag.message and "standard errors" in flag.message
    assert flag.details["reference"] == assay.is_quant.id
    # a stricter lab limit above the offset found: not said
    strict = replace(
        assay,
        integration=replace(assay.integration, baseline_offset_pct=abs(flag.value or 0) + 1),
    )
    again = process_file(path, "", inj.sample, strict, None)
    assert not [f for f in again.flags if f.code == "BASELINE_UNCERTAIN"]


@pytest.mark.parametrize("scenarios", [(), ("spiky",), ("low-points",)])
def test_agreeing_baselines_are_not_said(
    tmp_path: Path, assay: Assay, scenarios: tuple[str, ...]
) -> None:
    for seed in range(2):
        for sample_id in ("CAL03", "QC-M-01", "CAL08"):
            path, inj, _ = simulated(tmp_path, scenarios, seed, sample_id)
            outcome = process_file(path, "", inj.sample, assay, None)
            assert not [f for f in outcome.flags if f.code == "BASELINE_UNCERTAIN"]


# drift, seed 27, QC-M-01: a hump before the peak; the group used to start on its top
# (3.055 min, ratio -7.5 %); it now starts at the valley after it (-3.9 %)
def test_a_hump_before_the_peak_is_left_out(tmp_path: Path, assay: Assay) -> None:
    path, inj, truth = simulated(tmp_path, ("drift",), 27, "QC-M-01")
    config = SimConfig(mode="realistic", scenarios=("drift",), seed=27, n_samples=1)
    plan = _plan(inj, config, REALISM)
    apex = plan.mu + _apex_offset(REALISM.sigma, REALISM.tau)
    hump = apex - plan.drift[0][2]  # the analyte's hump, 0.03 min wide (SD)
    (group, *_) = integrate_groups(read_injection(path, assay), assay)
    assert group.start_rt is not None and group.start_rt > hump + 0.03
    assert abs(ratio_error_pct(path, assay) / truth - 1) < 0.05


def test_interference_settings_reach_the_integration(tmp_path: Path, assay: Assay) -> None:
    # interferent seed 1 QC-M-01: split at its valley with the defaults
    path, *_ = simulated(tmp_path, ("interferent",), 1, "QC-M-01")
    injection = read_injection(path, assay)
    (group, *_) = integrate_groups(injection, assay)
    assert group.peaks[assay.analyte_quant.id].interference is not None
    deaf = replace(
        assay,
        integration=replace(
            assay.integration,
            interference=replace(assay.integration.interference, min_sn=1e6),
        ),
    )
    (group, *_) = integrate_groups(injection, deaf)
    assert group.peaks[assay.analyte_quant.id].interference is None
