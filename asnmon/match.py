"""Match an assay's transitions to a file's traces: SRM by Q1/Q3, full scan by XIC.

Why its own module: reading (``asnmon.mzml``) knows the format, matching knows the
assay; a wrong match (a malate trace taken for asparagine, a channel swapped between
injections) is as bad as a wrong read, so the rules are spelled out here and noted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asnmon.assay import Assay, Transition
from asnmon.errors import NoMatchingTransitionError, WrongPolarityError
from asnmon.records import Chromatogram, FloatArray, RawFile, Role

__all__ = ["Scan", "match_full_scan", "match_srm"]


@dataclass(slots=True)
class Scan:
    """One spectrum, kept only for full-scan assays (an XIC is built from them)."""

    rt: float  # minutes
    ms_level: int
    polarity: str | None
    precursor_mz: float | None
    mz: np.ndarray
    intensity: np.ndarray


def _summary(raw: RawFile) -> str:
    srm = [c for c in raw.chromatograms if c.kind == "srm" and c.q1]
    parts = []
    if srm:
        q1s = [c.q1 for c in srm if c.q1]
        pols = sorted({c.polarity for c in srm if c.polarity})
        pol = f" ({', '.join(pols)})" if pols else ""
        parts.append(f"{len(srm)} SRM traces, Q1 {min(q1s):.1f}-{max(q1s):.1f}{pol}")
    others = len(raw.chromatograms) - len(srm)
    if others:
        parts.append(f"{others} other chromatogram(s)")
    if raw.n_spectra:
        parts.append(f"{raw.n_spectra} spectra")
    return "the file holds " + (", ".join(parts) if parts else "no chromatograms")


def _describe(t: Transition) -> str:
    q3 = f" Q3={t.q3:g}" if t.q3 is not None else ""
    return f"{t.id} (Q1={t.q1:g}{q3})"


def _required(assay: Assay) -> tuple[Transition, ...]:
    return tuple(t for t in assay.transitions if t.role in (Role.ANALYTE_QUANT, Role.IS_QUANT))


def _refuse(raw: RawFile, assay: Assay, missing: list[Transition], wrong: set[str]) -> None:
    """Raise for missing quantifiers: wrong polarity when that explains it, else no match."""
    if not missing:
        return
    file = raw.path.name
    names = ", ".join(_describe(t) for t in missing)
    other = "negative" if assay.polarity == "positive" else "positive"
    stated = {c.polarity for c in raw.chromatograms if c.polarity}
    if stated == {other} or any(t.id in wrong for t in missing):
        raise WrongPolarityError(
            f"{file} was acquired in {other} mode but the assay is {assay.polarity}: "
            f"{names} not found in {assay.polarity} mode; was the wrong method or file used?"
        )
    raise NoMatchingTransitionError(
        f"{file}: no {assay.polarity}-mode trace within ±{assay.mz_tolerance:g} m/z of "
        f"{names}; {_summary(raw)}"
    )


def match_srm(raw: RawFile, assay: Assay) -> tuple[dict[str, Chromatogram], list[str]]:
    tol = assay.mz_tolerance
    traces: dict[str, Chromatogram] = {}
    notes: list[str] = []
    wrong: set[str] = set()
    for t in assay.transitions:
        kinds = ("srm",) if t.q3 is not None else ("sim", "srm")
        cands = [
            c for c in raw.chromatograms
            if c.kind in kinds and c.q1 is not None and abs(c.q1 - t.q1) <= tol
            and (t.q3 is None or (c.q3 is not None and abs(c.q3 - t.q3) <= tol))
        ]  # fmt: skip
        right = [c for c in cands if c.polarity in (None, assay.polarity)]
        if cands and not right:
            wrong.add(t.id)
            continue
        if not right:
            continue

        # Closest Q1/Q3 first; then a trace that states the assay's polarity over one that
        # states none; then file order, which is stable across injections of one method
        # (unlike "the most intense", which could swap channels between samples).
        def rank(c: Chromatogram, t: Transition = t) -> tuple[float, int, int]:
            d = abs((c.q1 or 0.0) - t.q1) + (abs((c.q3 or 0.0) - t.q3) if t.q3 else 0.0)
            return (round(d, 6), c.polarity is None, c.index)

        right.sort(key=rank)
        traces[t.id] = right[0]
        if len(right) > 1:
            rest = "; ".join(f"'{c.id}' (#{c.index})" for c in right[1:])
            took = right[0]
            notes.append(
                f"{len(right)} traces match {_describe(t)}: took '{took.id}' (#{took.index}), "
                f"the closest in Q1/Q3 and the first in the file; not used: {rest}."
            )
    missing = [t for t in _required(assay) if t.id not in traces]
    _refuse(raw, assay, missing, wrong)  # the file's summary only if it raises
    notes.extend(
        f"qualifier {_describe(t)} is not in the file" for t in assay.transitions
        if t.id not in traces and t.role not in (Role.ANALYTE_QUANT, Role.IS_QUANT)
    )  # fmt: skip
    return traces, notes


def _xic(spectra: list[Scan], target: float, ppm: float) -> FloatArray:
    half = target * ppm * 1e-6
    out = np.empty(len(spectra))
    for i, s in enumerate(spectra):
        sel = (s.mz >= target - half) & (s.mz <= target + half)
        out[i] = s.intensity[sel].sum()
    return out


def match_full_scan(
    raw: RawFile, spectra: list[Scan], assay: Assay
) -> tuple[dict[str, Chromatogram], list[str]]:
    traces: dict[str, Chromatogram] = {}
    notes: list[str] = []
    wrong: set[str] = set()
    base = len(raw.chromatograms)
    for t in assay.transitions:
        if t.q3 is None:
            cands = [s for s in spectra if s.ms_level == 1]
            kind, target = "xic_ms1", t.q1
        else:
            cands = [s for s in spectra if s.ms_level >= 2 and s.precursor_mz is not None
                     and abs(s.precursor_mz - t.q1) <= assay.mz_tolerance]  # fmt: skip
            kind, target = "xic_ms2", t.q3
        right = sorted((s for s in cands if s.polarity in (None, assay.polarity)),
                       key=lambda s: s.rt)  # fmt: skip
        if cands and not right:
            wrong.add(t.id)
        if not right:
            continue
        pol = right[0].polarity
        rt = np.array([s.rt for s in right])
        traces[t.id] = Chromatogram(f"{kind} {t.id} m/z {target:g} ±{assay.ppm:g} ppm",
                                    base + len(traces), rt, _xic(right, target, assay.ppm),
                                    t.q1, t.q3, pol, kind)  # fmt: skip
    missing = [t for t in _required(assay) if t.id not in traces]
    _refuse(raw, assay, missing, wrong)  # the file's summary only if it raises
    return traces, notes
