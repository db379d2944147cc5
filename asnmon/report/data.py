"""Everything one run's report shows, read from the store in one place.

The section builders take this record and never touch the store, so they are
tested from frames. The audit trail and the signatures are read through the
store's audit interface (``audit_events``, ``signatures``, ``ensure_unlocked``,
``verify_audit``); a database written before they existed simply has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from asnmon.assay import Assay
from asnmon.errors import AsnmonError


@dataclass(frozen=True, slots=True)
class Lock:
    """The run's sign-off lock as the store states it."""

    locked: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class ReportData:
    run: dict[str, Any]
    results: pl.DataFrame  # this run's current injections (Store.results shape)
    all_results: pl.DataFrame  # every run's: the Levey-Jennings history
    flags: pl.DataFrame  # active and withdrawn flags, with their injection
    acknowledgements: pl.DataFrame  # flag_id, by_name, comment, acked_at (+ any more)
    calibrations: pl.DataFrame  # every version of the run's curve
    cal_points: pl.DataFrame  # the points of the last version
    audit: pl.DataFrame  # the run's audit events, oldest first
    signatures: pl.DataFrame
    lock: Lock
    audit_problems: tuple[str, ...] | None  # None: this database keeps no audit trail
    assay: Assay
    audit_head: tuple[int, str] | None = None  # the database's newest event id and hash
    results_digest: str | None = None  # SHA-256 of the results now, as signatures record it
    guide_runs: tuple[str, ...] | None = None
    chromatograms: tuple[tuple[dict[str, Any], pl.DataFrame, pl.DataFrame], ...] = ()
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    database: str = ""

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The curve the results were computed with: the run's last version."""
        if not self.calibrations.height:
            return None
        return self.calibrations.row(self.calibrations.height - 1, named=True)


def run_acknowledgements(store: Any, flags: pl.DataFrame) -> pl.DataFrame:
    """Every acknowledgement of the run's flags, oldest first."""
    ids = (
        [int(i) for i in flags.filter(pl.col("acks") > 0)["flag_id"].to_list()]
        if flags.height and "acks" in flags.columns
        else []
    )
    frames = [f for f in ([store.acknowledgements_of(ids)] if ids else []) if f.height]
    if not frames:
        return pl.DataFrame(
            schema={"flag_id": pl.Int64, "by_name": pl.String, "comment": pl.String}
        )
    return pl.concat(frames, how="diagonal_relaxed").sort("flag_id")


def _digest(results: pl.DataFrame) -> str | None:
    """The results' SHA-256 by the sign-off's own rule."""
    from asnmon.store.audit import results_digest

    return str(results_digest(results))


def load_report_data(
    store: Any,
    run_id: str,
    assay: Assay,
    *,
    guide_runs: tuple[str, ...] | None = None,
    chromatograms: bool = False,
) -> ReportData:
    """Read the run's record; raises AsnmonError naming the runs there are if it is not one."""
    runs = store.runs()
    match = runs.filter(pl.col("run_id") == run_id) if runs.height else runs
    if match.height == 0:
        known = ", ".join(runs["run_id"].to_list()) if runs.height else "none"
        raise AsnmonError(f"no run {run_id!r} in {store.path} (runs: {known})")
    run = match.row(0, named=True)
    all_results = store.results()
    results = all_results.filter(pl.col("run_id") == run_id)
    flags = store.flags(run_id, active_only=False)
    cals = store.calibrations(run_id)
    points = (
        store.calibration_points(int(cals["calibration_id"][-1])) if cals.height else pl.DataFrame()
    )
    audit = store.audit_events(run_id)
    signatures = store.signatures(run_id)
    problems: tuple[str, ...] | None = tuple(store.verify_audit())
    head: tuple[int, str] | None = store.audit_head()
    lock = Lock(False)
    try:
        store.ensure_unlocked(run_id)
    except AsnmonError as exc:  # RunLocked: the store's own words say by whom and when
        lock = Lock(True, str(exc))
    pages = []
    if chromatograms:
        for row in results.iter_rows(named=True):
            iid = row.get("injection_id")
            if iid is None:
                continue
            pages.append((row, store.traces(int(iid)), store.peaks(int(iid))))
    return ReportData(
        run=run,
        results=results,
        all_results=all_results,
        flags=flags,
        acknowledgements=run_acknowledgements(store, flags),
        calibrations=cals,
        cal_points=points,
        audit=audit if audit is not None else pl.DataFrame(),
        signatures=signatures if signatures is not None else pl.DataFrame(),
        lock=lock,
        audit_problems=problems,
        audit_head=head,
        results_digest=_digest(results) if signatures is not None else None,
        assay=assay,
        guide_runs=guide_runs,
        chromatograms=tuple(pages),
        database=str(getattr(store, "path", "")),
    )
