"""A reviewer's change, stored as that person and re-quantified at once.

What the dashboard's review panel (and any script) calls: check the change
(``asnmon.review``), store it with its audit event (``asnmon.store.edits``),
then re-quantify the run (``asnmon.pipeline.requantify``), all under the run's
lock so the live monitor never ingests a file in between. Each returns the
``Requantified`` summary; errors are ``ReviewError``/``AccessDenied``/
``RunLocked`` with a sentence for the screen.
"""

from __future__ import annotations

from asnmon.assay import Assay
from asnmon.errors import ReviewError
from asnmon.pipeline import requantify
from asnmon.records import Chromatogram, Peak, SampleType
from asnmon.requantify import Requantified, edited, run_lock
from asnmon.review import (
    ActorLike,
    affects_curve,
    check_comment,
    edited_sample,
    parse_field,
    reintegrate,
    require_reason,
)
from asnmon.store import Store


def reasons(assay: Assay, kind: str) -> tuple[str, ...]:
    """The configured reason list for 'reintegration', 'exclusion' or 'edit'."""
    lists = {
        "reintegration": assay.review.reintegration_reasons,
        "exclusion": assay.review.exclusion_reasons,
        "edit": assay.review.edit_reasons,
    }
    return lists[kind]


def stored_traces(store: Store, injection_id: int) -> dict[str, Chromatogram]:
    """The trace windows the store kept at ingestion (enough to reintegrate: no mzML)."""
    frame = store.traces(injection_id)
    return {
        str(t): Chromatogram(str(t), i, rt, inten)
        for i, (t, rt, inten) in enumerate(
            frame.select("transition", "rt", "intensity").iter_rows()
        )
    }


def stored_peaks(store: Store, injection_id: int) -> dict[str, Peak]:
    frame = store.peaks(injection_id)
    fields = Peak.__slots__
    out = {}
    for r in frame.iter_rows(named=True):
        out[str(r["transition"])] = Peak(
            **{k: r[k] for k in fields if k in r and k != "transition"}, transition=r["transition"]
        )
    return out


def reintegrate_injection(
    store: Store,
    assay: Assay,
    actor: ActorLike,
    injection_id: int,
    start_rt: float,
    end_rt: float,
    *,
    reason: str,
    comment: str = "",
) -> Requantified:
    """Manual bounds for the injection's peak group; re-quantified (curve refitted for a
    calibrator)."""
    why = require_reason(reason, reasons(assay, "reintegration"), "reintegration")
    note = check_comment(why, comment)
    run_id, _sample = store.stored_sample(injection_id)
    traces = stored_traces(store, injection_id)
    auto = stored_peaks(store, injection_id)
    result = reintegrate(traces, assay, start_rt, end_rt, auto)
    roles = {t.id: t.role.value for t in assay.transitions}
    with run_lock(store.path, run_id):
        store.write_reintegration(
            actor, run_id, injection_id, result.peaks, roles, reason=why, comment=note
        )
        edited(store.path, run_id)
        return requantify(store, assay, run_id)


def revert_to_automatic(
    store: Store,
    assay: Assay,
    actor: ActorLike,
    injection_id: int,
    *,
    reason: str,
    comment: str = "",
) -> Requantified:
    """The automatic integration back in force (the manual one kept in the history)."""
    why = require_reason(reason, (), "return to the automatic integration")
    run_id, _ = store.stored_sample(injection_id)
    with run_lock(store.path, run_id):
        store.revert_integration(actor, run_id, injection_id, reason=why, comment=comment.strip())
        edited(store.path, run_id)
        return requantify(store, assay, run_id)


def set_calibrator_excluded(
    store: Store,
    assay: Assay,
    actor: ActorLike,
    injection_id: int,
    excluded: bool,
    *,
    reason: str,
    comment: str = "",
) -> Requantified:
    """A calibrator out of (or back into) the curve: a new curve version, judged by ICH M10."""
    what = "calibrator exclusion" if excluded else "calibrator inclusion"
    allowed = reasons(assay, "exclusion") if excluded else ()
    why = require_reason(reason, allowed, what)
    note = check_comment(why, comment)
    run_id, sample = store.stored_sample(injection_id)
    if sample.sample_type is not SampleType.CALIBRATOR:
        raise ReviewError(f"{sample.sample_id} is not a calibrator.")
    with run_lock(store.path, run_id):
        store.set_excluded(actor, run_id, injection_id, excluded, reason=why, comment=note)
        edited(store.path, run_id)
        return requantify(store, assay, run_id)


def edit_batch_field(
    store: Store,
    assay: Assay,
    actor: ActorLike,
    injection_id: int,
    field: str,
    text: object,
    *,
    reason: str,
    comment: str = "",
) -> Requantified:
    """One batch-table field corrected (type, level, nominal, dilution, matrix)."""
    why = require_reason(reason, reasons(assay, "edit"), "batch-table edit")
    note = check_comment(why, comment)
    value = parse_field(field, text)
    run_id, sample = store.stored_sample(injection_id)
    after = edited_sample(sample, field, value)
    with run_lock(store.path, run_id):
        store.edit_sample(
            actor,
            run_id,
            injection_id,
            field,
            value,
            reason=why,
            comment=note,
            refits=affects_curve(sample, after),
        )
        edited(store.path, run_id)
        return requantify(store, assay, run_id)


def link_reinjection(
    store: Store,
    actor: ActorLike,
    injection_id: int,
    original_id: int | None,
    *,
    reason: str,
    comment: str = "",
) -> int:
    """Record by hand that an injection re-injects another (no number changes)."""
    why = require_reason(reason, (), "re-injection link")
    run_id, _ = store.stored_sample(injection_id)
    return store.link_reinjection(
        actor, run_id, injection_id, original_id, reason=why, comment=comment.strip()
    )
