"""One injection's traces and truth, in whichever mode the run is simulated."""

from __future__ import annotations

from asnmon.simulate.config import SimConfig
from asnmon.simulate.plan import PlannedInjection
from asnmon.simulate.realistic import render_realistic, true_realistic
from asnmon.simulate.signals import AcquiredTrace, TrueSignal, render_clean, true_clean


def render_acquisition(inj: PlannedInjection, config: SimConfig) -> tuple[AcquiredTrace, ...]:
    """Every trace of ``TRACES`` as acquired (its own time points in the realistic mode)."""
    if config.mode == "realistic":
        return render_realistic(inj, config)
    return render_clean(inj, config)


def true_signal(inj: PlannedInjection, config: SimConfig) -> TrueSignal:
    """The noise-free areas and windows the injection's file was rendered from."""
    if config.mode == "realistic":
        return true_realistic(inj, config)
    return true_clean(inj, config)
