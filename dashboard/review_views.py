"""What the review panel computes: queries over the store and the core's review actions.

No Dash state (like ``dashboard.app.Views``), so tests and benchmarks call it directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from asnmon.assay import Assay
from asnmon.errors import AsnmonError
from asnmon.requantify import Requantified
from asnmon.review import ActorLike, bench_actor
from asnmon.review_actions import (
    edit_batch_field,
    link_reinjection,
    reintegrate_injection,
    revert_to_automatic,
    set_calibrator_excluded,
)
from asnmon.store import Store
from dashboard import chromatogram, overlay
from dashboard.chromatogram import Panel, TransitionInfo, plain

FIELD_LABELS = {
    "sample_type": "sample type",
    "level": "level",
    "nominal": "nominal",
    "dilution": "dilution",
    "matrix": "matrix",
}


class WhoLike(Protocol):
    @property
    def actor(self) -> ActorLike | None: ...
    @property
    def note(self) -> str: ...


def bench_who() -> Bench:
    """Without log-in (``dashboard.auth``): the single bench, named on the screen."""
    return Bench(bench_actor(), "single bench, no accounts")


@dataclass(frozen=True, slots=True)
class Bench:
    """Who a write is done as without accounts (before ``dashboard.auth`` decides)."""

    actor: ActorLike | None
    note: str


def describe(done: Requantified, label: str, what: str) -> str:
    """The confirmation a person reads: names the injection and what followed."""
    parts = [f"✔ {label}: {what}."]
    if done.calibration is not None:
        c = done.calibration
        state = "accepted" if c.accepted else "REJECTED"
        parts.append(f"Curve refitted: version {c.version}, {state} ({c.reason}).")
    if done.requantified:
        parts.append(f"{done.requantified} result(s) re-quantified.")
    return " ".join(parts)


# ---------------------------------------------------------------- views


class ReviewViews:
    """Queries for the review panel and the chromatograms; no Dash state."""

    def __init__(self, store: Store, assay: Assay) -> None:
        self.store = store
        self.assay = assay
        self.transitions = {t.id: TransitionInfo(t.name, t.q1, t.q3) for t in assay.transitions}

    def row(self, injection_id: int) -> dict[str, Any] | None:
        """The injection's results row (the export's columns), or None."""
        try:
            run_id, _ = self.store.stored_sample(injection_id)
        except AsnmonError:
            return None
        found = self.store.results(run_id).filter(pl.col("injection_id") == injection_id)
        return found.row(0, named=True) if not found.is_empty() else None

    def label(self, injection_id: int) -> str:
        r = self.row(injection_id)
        return str(r["sample_id"] or r["file"]) if r else f"injection {injection_id}"

    def reference_calibrator(self, run_id: str | None) -> int | None:
        """The mid-level standard of the newest accepted curve (else the newest curve)."""
        if run_id is None:
            return None
        cals = self.store.calibrations(run_id)
        if cals.is_empty():
            return None
        accepted = cals.filter(pl.col("accepted"))
        cal = (accepted if not accepted.is_empty() else cals).sort("version").row(-1, named=True)
        pts = self.store.calibration_points(int(cal["calibration_id"]))
        pts = pts.filter(
            ~pl.col("excluded").fill_null(False) & pl.col("injection_id").is_not_null()
        ).sort("nominal")
        if pts.is_empty():
            return None
        return int(pts["injection_id"][pts.height // 2])

    def panel(self, injection_id: int, label: str, flags: pl.DataFrame | None) -> Panel:
        r = self.row(injection_id)
        notes = self.store.review_notes(str(r["run_id"])) if r else {}
        return Panel(
            label=label,
            traces=self.store.traces(injection_id),
            peaks=self.store.peaks(injection_id),
            flags=flags,
            auto=self.store.automatic_peaks(injection_id),
            note=notes.get(injection_id, ""),
            error=str(r["error"]) if r and r.get("error") else None,
        )

    def chromatograms(
        self, injection_id: int | None, run_id: str | None, *, share_y: bool = False
    ) -> Any:
        if injection_id is None:
            return chromatogram.chromatogram_figure([])
        r = self.row(injection_id)
        run = str(r["run_id"]) if r else run_id
        flags = self.store.flags(run) if run else pl.DataFrame()

        def flags_of(iid: int) -> pl.DataFrame | None:
            return None if flags.is_empty() else flags.filter(pl.col("injection_id") == iid)

        panels = [self.panel(injection_id, self.label(injection_id), flags_of(injection_id))]
        ref = self.reference_calibrator(run)
        if ref is not None and ref != injection_id:
            panels.append(self.panel(ref, "reference " + self.label(ref), flags_of(ref)))
        editable = not self.store.read_only
        return chromatogram.chromatogram_figure(
            panels, transitions=self.transitions, share_y=share_y, select=editable
        )

    def overlay(self, injection_ids: Sequence[int]) -> Any:
        series = [
            (self.label(i), self.store.traces(i), self.store.peaks(i))
            for i in injection_ids[: overlay.MAX_OVERLAY]
        ]
        return overlay.overlay_figure(series, transitions=self.transitions)

    def options(self, run_id: str | None, exclude: int | None) -> list[dict[str, Any]]:
        """The run's injections as dropdown choices, in acquisition order."""
        if run_id is None:
            return []
        res = self.store.results(run_id)
        return [
            {
                "label": f"{r['position'] or '–'} · {r['sample_id'] or r['file']} ({r['file']})",
                "value": int(r["injection_id"]),
            }
            for r in res.iter_rows(named=True)
            if r["injection_id"] != exclude
        ]

    def info(self, injection_id: int | None) -> dict[str, Any]:
        if injection_id is None:
            return {}
        r = self.row(injection_id)
        if r is None:
            return {}
        run_id = str(r["run_id"])
        conc, unit, status = r.get("conc"), r.get("unit") or self.assay.unit, r.get("status")
        result = f"{plain(conc)} {unit}" if conc is not None else str(status or "no result")
        edits = self.store.edits(run_id, injection_id)
        return {
            "label": str(r["sample_id"] or r["file"]),
            "run_id": run_id,
            "sample_type": r["sample_type"],
            "level": r.get("level"),
            "nominal": r.get("nominal"),
            "dilution": r.get("dilution") or 1.0,
            "matrix": r.get("matrix"),
            "result": result,
            "note": self.store.review_notes(run_id).get(injection_id, ""),
            "error": r.get("error"),
            "excluded": injection_id in self.store.exclusions(run_id),
            "bounds": self._bounds(injection_id),
            "edits": [
                {
                    "when": f"{e['created_at']:%Y-%m-%d %H:%M}",
                    "actor": e["actor"],
                    "role": e["actor_role"],
                    "what": _edit_words(e),
                    "reason": e["reason"] + (f" ({e['comment']})" if e.get("comment") else ""),
                }
                for e in edits.iter_rows(named=True)
            ],
        }

    def _bounds(self, injection_id: int) -> tuple[float | None, float | None]:
        peaks = self.store.peaks(injection_id)
        for role in ("is_quant", "analyte_quant"):
            p = peaks.filter(pl.col("role") == role) if not peaks.is_empty() else peaks
            if not p.is_empty():
                return (
                    round(float(p["start_rt"][0]), 3),
                    round(float(p["end_rt"][0]), 3),
                )
        return None, None

    # ------------------------------------------------------------ the change

    def act(self, action: str, who: WhoLike, injection_id: int, form: Mapping[str, Any]) -> str:
        """Do one change as ``who``; the sentence to show, whatever happened."""
        if self.store.read_only:
            return (
                "✖ Not recorded: this database is open read-only. Changes are made in the "
                "running monitor or in a review opened for changes."
            )
        actor = who.actor
        if actor is None:
            return f"✖ Not recorded: {who.note}"
        label = self.label(injection_id)
        try:
            return self._act(action, actor, injection_id, label, form)
        except AsnmonError as err:  # not allowed, locked, a bad value: said in words
            return f"✖ Not recorded ({label}): {err}"

    def _act(
        self, action: str, actor: ActorLike, iid: int, label: str, form: Mapping[str, Any]
    ) -> str:
        s, a = self.store, self.assay
        if action == "rv-apply":
            before = _area(s.peaks(iid))
            done = reintegrate_injection(
                s,
                a,
                actor,
                iid,
                float(form["start"]) if form.get("start") is not None else float("nan"),
                float(form["end"]) if form.get("end") is not None else float("nan"),
                reason=form.get("reason") or "",
                comment=form.get("comment") or "",
            )
            after = _area(s.peaks(iid))
            what = (
                f"manually integrated by {actor.name} because {form.get('reason')}; "
                f"analyte area {plain(before)} → {plain(after)}"
            )
            return describe(done, label, what)
        if action == "rv-revert":
            done = revert_to_automatic(
                s,
                a,
                actor,
                iid,
                reason=form.get("reason") or "automatic integration restored",
                comment=form.get("comment") or "",
            )
            return describe(done, label, f"back to the automatic integration ({actor.name})")
        if action == "rv-exclude":
            run_id = self.info(iid)["run_id"]
            exclude = iid not in s.exclusions(run_id)
            done = set_calibrator_excluded(
                s,
                a,
                actor,
                iid,
                exclude,
                reason=form.get("ex_reason") or "",
                comment=form.get("ex_comment") or "",
            )
            verb = "excluded from" if exclude else "included again in"
            return describe(done, label, f"{verb} the curve by {actor.name}")
        if action == "rv-save":
            field = str(form.get("field") or "")
            done = edit_batch_field(
                s,
                a,
                actor,
                iid,
                field,
                form.get("value"),
                reason=form.get("ed_reason") or "",
                comment=form.get("ed_comment") or "",
            )
            what = f"{FIELD_LABELS.get(field, field)} set to {form.get('value')!s} by {actor.name}"
            return describe(done, label, what)
        original = form.get("link")
        link_reinjection(
            s,
            actor,
            iid,
            int(original) if original is not None else None,
            reason=form.get("ed_reason") or "re-injection linked by hand",
            comment=form.get("ed_comment") or "",
        )
        target = self.label(int(original)) if original is not None else "nothing"
        return f"✔ {label}: linked as the re-injection of {target} by {actor.name}."


def _area(peaks: pl.DataFrame) -> float | None:
    if peaks.is_empty():
        return None
    a = peaks.filter(pl.col("role") == "analyte_quant")
    return float(a["area"][0]) if not a.is_empty() and a["area"][0] is not None else None


def _edit_words(e: Mapping[str, Any]) -> str:
    kind = e["kind"]
    if kind == "reintegrate":
        return "manual integration"
    if kind == "revert_integration":
        return "back to the automatic integration"
    if kind in ("exclude", "include"):
        return "excluded from the curve" if kind == "exclude" else "included in the curve"
    if kind == "link":
        return "re-injection link"
    return f"{e['field']} {e['old_value'] or '—'} → {e['new_value'] or '—'}"
