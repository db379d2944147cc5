"""What each callback computes, as plain methods over the store (no Dash state).

``Views`` holds no Dash state, so the benchmark times exactly what a callback
runs, and the tests call it without a browser.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import polars as pl

from asnmon.assay import Assay
from asnmon.errors import AccessDenied, StoreError
from asnmon.forecast import injection_pace
from asnmon.qc.headline import FlagGroup, FlagRow, forecasts, headline, spans
from asnmon.store import STORE_FAILURES, Store
from asnmon.westgard import GuideSet, QcPoint, guides_for
from dashboard import banner as banners
from dashboard import cards, figures, layout, style, tables
from dashboard.auth import Who
from dashboard.data import RunCache, Snapshot
from dashboard.review_views import ReviewViews
from dashboard.shared import ChangeCounter, PerChange

Health = Callable[[], Mapping[str, Any]]  # the live monitor's health (Monitor.health)
# Kinds of change after which stored concentrations differ: redraw, do not append.
REDRAW_KINDS = frozenset({"calibration", "superseded", "run"})
T = TypeVar("T")


class Views:
    """What each callback computes, as plain methods over the store (no Dash state)."""

    def __init__(
        self,
        store: Store,
        assay: Assay,
        guide: Mapping[str, Any] | None = None,
        *,
        shared: bool = True,
        health: Health | None = None,
    ) -> None:
        self.store = store
        self.assay = assay
        self.health = health  # None: a read-only review, no live monitor
        self.cache = RunCache(store)
        # shared=False: every request queries and computes for itself (the benchmark's
        # "before"); True: one change counter and one computation per change for all pages
        self.counter = ChangeCounter(store) if shared else None
        self.per_change = PerChange(self.counter) if self.counter is not None else None
        # the Westgard guide set as the monitor's settings choose it (runs or dates)
        self.guide = {k: v for k, v in (guide or {}).items() if v}
        self.review = ReviewViews(store, assay)

    # ---------------------------------------------------------------- tick

    def seq(self) -> int:
        return self.counter.value() if self.counter is not None else self.store.last_change()

    def shared(self, name: str, args: object, compute: Callable[[], T]) -> T:
        """``compute()``, once per change counter and ``args`` for all pages when shared."""
        if self.per_change is None or self.counter is None:
            return compute()
        try:
            seq = self.counter.value()
        except STORE_FAILURES:
            return compute()  # nothing to share while the database does not answer
        return self.per_change.get(name, args, compute, seq)

    def tick(self, seen: dict[str, Any] | None) -> dict[str, Any] | None:
        """None when nothing changed since ``seen`` (the cheap path, every second).

        A change of the monitor's problems counts too, and a database that does not
        answer is a change (seq -1): the banner must say so, not freeze.
        """
        problems = self.problems()
        try:
            seq = self.seq()
        except STORE_FAILURES:
            seq = -1
        prev = int(seen["seq"]) if seen else -1
        if seq == prev and (seen or {}).get("problems", []) == problems:
            return None
        kinds: list[str] = []
        if prev >= 0 and seq >= 0:
            try:
                kinds = self.shared(
                    "kinds",
                    prev,
                    lambda: sorted(set(self.store.changes_since(prev)["kind"].to_list())),
                )
            except STORE_FAILURES:
                kinds = []
        return {"seq": seq, "prev": prev, "kinds": kinds, "problems": problems}

    def problems(self) -> list[str]:
        """The live monitor's own problems (database, worker, worklist); none in a review."""
        if self.health is None:
            return []
        return [str(p) for p in self.health().get("problems", ())]

    def snapshot(self, run_id: str | None) -> Snapshot:
        return self.cache.get(run_id)

    # ---------------------------------------------------------------- banner

    def banner(self, run_id: str | None) -> tuple[list[Any], int, str]:
        problems = self.problems()
        try:
            children, fails, title = self._banner(run_id, problems)
        except STORE_FAILURES as exc:  # the database does not answer: say that, loudly
            problems = problems or [f"DATABASE PROBLEM: the dashboard cannot read it ({exc})"]
            return layout.problem_banner(problems), 0, f"{_word(problems)} — asnmon"
        return children, fails, (f"{_word(problems)} — asnmon" if problems else title)

    def _banner(self, run_id: str | None, problems: list[str]) -> tuple[list[Any], int, str]:
        snap = self.snapshot(run_id)
        counts = snap.counts
        last = None
        if not snap.results.is_empty():
            row = snap.results.sort("injection_id").row(-1, named=True)
            pos = f"#{row['position']}  " if row.get("position") is not None else ""
            last = f"{pos}{tables.clock_time(row['acquired_at'])}  {row['file']}"
        try:
            status = self.store.status()
        except StoreError:
            status = {}
        children = banners.banner(
            snap.run,
            counts,
            head=headline(snap.groups),
            forecasts=forecasts(snap.rows, escalate_n=self.assay.limits.is_drift_escalate_n),
            watcher=self.watcher(snap, status),
            last_injection=last,
            problems=problems,
        )
        word = style.verdict(counts.verdict).word if snap.run else "WAITING"
        return children, counts.open_fail, f"{word} — asnmon"

    def watcher(
        self, snap: Snapshot, status: Mapping[str, Any], now: float | None = None
    ) -> banners.Tile:
        """The heartbeat tile, judged against this run's own injection interval."""
        now = time.time() if now is None else now
        interval = since = None
        if not snap.results.is_empty() and "ingested_at" in snap.results.columns:
            stamps = sorted(t for t in snap.results["ingested_at"].to_list() if t is not None)
            pace = injection_pace(stamps)
            if pace is not None:
                interval = pace.interval.total_seconds()
            if stamps:
                wall = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
                since = max(0.0, (wall - stamps[-1]).total_seconds())
        return banners.watcher_tile(
            status, live=not self.store.read_only, now=now, interval_s=interval, since_file_s=since
        )

    # ---------------------------------------------------------------- run plots

    def run_plots(
        self,
        run_id: str | None,
        meta: dict[str, Any] | None,
        changed: dict[str, Any] | None,
        *,
        kiosk: bool = False,
    ) -> dict[str, Any]:
        """Either whole figures or ``extendData`` for the new injections (keys say which)."""
        snap = self.snapshot(run_id)
        height = None if kiosk else 380  # kiosk: the CSS gives the graphs the screen
        series = figures.run_series(snap.results, snap.reference)
        drift = (
            snap.flags.filter(pl.col("code") == "IS_DRIFT") if not snap.flags.is_empty() else None
        )
        n_drift = drift.height if drift is not None else 0
        last_id = int(series["injection_id"].max()) if not series.is_empty() else 0  # type: ignore[arg-type]
        new_meta = {
            "run": snap.run_id,
            "last_id": last_id,
            "ref": snap.reference,
            "drift": n_drift,
            "kiosk": kiosk,
        }
        kinds = set((changed or {}).get("kinds") or [])
        full_asn = (
            meta is None
            or meta.get("run") != snap.run_id
            or meta.get("kiosk") != kiosk
            or bool(kinds & REDRAW_KINDS)
            or not kinds
            or last_id < int(meta.get("last_id") or 0)
        )
        old_ref = (meta or {}).get("ref")
        ref_moved = (
            snap.reference is None or not old_ref or abs(snap.reference - old_ref) / old_ref > 0.005
        )
        full_is = full_asn or ref_moved or n_drift != (meta or {}).get("drift")
        if not full_is:
            new_meta["ref"] = old_ref  # keep the scale the plotted points use
        out: dict[str, Any] = {"meta": new_meta}
        uirev = f"{snap.run_id}"
        if full_is:
            out["is_figure"] = figures.is_figure(
                series, self.assay, drift, uirevision=uirev, height=height
            )
        if full_asn:
            out["asn_figure"] = figures.asn_figure(
                series, self.assay, uirevision=uirev, height=height
            )
        old_last = int((meta or {}).get("last_id") or 0)
        new = series.filter(pl.col("injection_id") > old_last)
        if not new.is_empty():
            if not full_is:
                if old_ref != snap.reference:
                    new = figures.run_series(snap.results, old_ref).filter(
                        pl.col("injection_id") > old_last
                    )
                out["is_extend"] = figures.run_extension(new, "is_pct")
            if not full_asn:
                out["asn_extend"] = figures.run_extension(new, "conc", self.assay)
        return out

    # ---------------------------------------------------------------- table

    def table(
        self,
        run_id: str | None,
        types: Sequence[str] | None,
        codes: Sequence[str] | None,
        page: int,
        page_size: int,
    ) -> tuple[list[dict[str, Any]], int, int, list[str]]:
        """One page of rows, the page shown (clamped), the page count, flag codes present."""
        snap = self.snapshot(run_id)
        rows = tables.injection_rows(
            snap.results,
            snap.flags,
            lloq=self.assay.calibration.lloq,
            types=types or (),
            codes=codes or (),
        )
        pages = max(1, -(-len(rows) // page_size))
        page = min(max(page or 0, 0), pages - 1)
        return (
            rows[page * page_size : (page + 1) * page_size],
            page,
            pages,
            tables.flag_codes(snap.flags),
        )

    # ---------------------------------------------------------------- chromatograms

    def page_of(
        self,
        run_id: str | None,
        types: Sequence[str],
        codes: Sequence[str],
        injection_id: int | None,
        page_size: int,
    ) -> int | None:
        """The table page that shows ``injection_id`` (None: filtered out or unknown)."""
        if injection_id is None:
            return None
        snap = self.snapshot(run_id)
        rows = tables.injection_rows(
            snap.results, snap.flags, lloq=self.assay.calibration.lloq, types=types, codes=codes
        )
        ids = [r["injection_id"] for r in rows]
        return ids.index(injection_id) // page_size if injection_id in ids else None

    def chromatograms(self, injection_id: int | None, run_id: str | None) -> Any:
        """The selected injection beside the reference calibrator (``dashboard.review_views``)."""
        return self.review.chromatograms(injection_id, run_id)

    # ---------------------------------------------------------------- tabs

    def flag_cards(self, run_id: str | None, show_acked: bool = False) -> list[Any]:
        snap = self.snapshot(run_id)
        return cards.flag_cards(snap.groups, show_acked=show_acked, read_only=self.store.read_only)

    def flag_summary(self, run_id: str | None) -> tuple[str, str]:
        """The flags pane's summary line and the tab's label, from the banner's counts."""
        snap = self.snapshot(run_id)
        n = snap.counts.unacknowledged
        return cards.flag_summary(snap.counts, snap.groups), f"Open flags ({n})"

    def calibration(self, run_id: str | None) -> tuple[Any, Any]:
        snap = self.snapshot(run_id)
        if snap.run_id is None:
            return figures.calibration_figure(None, pl.DataFrame(), self.assay.unit), None
        cals = self.store.calibrations(snap.run_id)
        if cals.is_empty():
            return figures.calibration_figure(None, pl.DataFrame(), self.assay.unit), (
                layout.versions_table([])
            )
        accepted = cals.filter(pl.col("accepted"))
        active = (accepted if not accepted.is_empty() else cals).sort("version").row(-1, named=True)
        points = self.store.calibration_points(int(active["calibration_id"]))
        rows = list(cals.sort("version", descending=True).iter_rows(named=True))
        return (
            figures.calibration_figure(active, points, self.assay.unit),
            layout.versions_table(rows),
        )

    def levey_jennings(self, run_id: str | None) -> Any:
        snap = self.snapshot(run_id)
        guides: dict[str, GuideSet] = {}
        if snap.run_id is not None:
            points = [QcPoint(*row) for row in self.store.qc_values()]
            guides = guides_for(points, snap.run_id, **self.guide)
            # the run judged against itself only: a within-run chart, titled as such
            if not self.guide and not any(p.run_id != snap.run_id for p in points):
                guides = {}
        return figures.levey_jennings_figure(snap.results, snap.flags, guides)

    def run_options(self) -> list[dict[str, Any]]:
        return [
            {"label": f"{r['name'] or r['run_id']} ({r['injections']} inj.)", "value": r["run_id"]}
            for r in self.store.runs().iter_rows(named=True)
        ]

    def pools(self, run_id: str | None) -> Any:
        return figures.pools_figure(self.snapshot(run_id).results, self.assay)

    def group_of(self, flag_id: int) -> tuple[FlagGroup | None, FlagRow | None]:
        """(the open card holding ``flag_id``, the flag itself); None, None if unknown.

        The runs whose snapshots are in hand first (the page that drew the card
        loaded its run), then every run.
        """
        seen: set[str | None] = set()
        for run_id in [*self.cache.run_ids(), *self.store.runs()["run_id"].to_list()]:
            if run_id in seen:
                continue
            seen.add(run_id)
            snap = self.snapshot(run_id)
            found = next((f for f in snap.rows if f.flag_id == flag_id), None)
            if found is None:
                continue
            group = next(
                (g for g in snap.groups if flag_id in g.flag_ids and not g.acknowledged), None
            )
            return group, found
        return None, None

    def acknowledge(self, flag_id: int, who: Who, comment: str | None) -> str:
        """Acknowledge the card of ``flag_id``: its members up to that id, one comment.

        Members that arrived after the card was drawn (a larger flag id) are left
        open: nobody has seen them yet.
        """
        if self.store.read_only:
            return (
                "✖ Not recorded: this is a read-only review of a finished database "
                "(asnmon dashboard --db). Acknowledge flags in the running monitor, or open "
                "it for review (asnmon dashboard --db FILE --review)."
            )
        actor = who.actor
        if actor is None:
            return f"✖ Not recorded: {who.note}"
        try:
            group, found = self.group_of(flag_id)
            if found is None:
                return "✖ Not recorded: no such flag in this database."
            # an acknowledged flag acknowledged again: one more record on that flag alone
            members = (
                [m for m in group.members if m.flag_id <= flag_id and not m.acknowledged]
                if group is not None
                else [found]
            )
            # one transaction, one audit event per flag, refused whole in a locked run
            self.store.acknowledge_many(
                [m.flag_id for m in members], actor, comment or "", again=True
            )
        except (AccessDenied, StoreError) as err:
            if self.store.read_only or "read-only" in str(err).lower():
                return "✖ Not recorded: the database is open read-only for review."
            return f"✖ Not recorded: {err}"
        if len(members) == 1:
            what = f"{found.code} on {members[0].who}"
        else:
            placed = [m.position for m in members if m.position is not None]
            where = f"injections {spans(placed)}" if placed else f"{len(members)} injections"
            what = f"{found.code} ×{len(members)} on {where}"
        return f"✔ {what} acknowledged by {actor.name}."


def _word(problems: Sequence[str]) -> str:
    return problems[0].split(":", 1)[0].split(" in run ", 1)[0].strip()


def health_body(store: Store, health: Health | None) -> dict[str, Any]:
    """``/healthz``: the live monitor's health and whether the database answers a read.

    ``ok`` False (HTTP 503) when the database fails or the worker is dead or stuck.
    """
    body: dict[str, Any] = {"ok": True}
    if health is not None:
        body.update(health())
    try:
        status = store.status()
        last_change = store.last_change()
    except STORE_FAILURES as exc:
        body.update(ok=False, database=False, error=f"the database does not answer: {exc}")
        return body
    if health is None:
        body.update(
            database=True,
            watcher=status.get("watcher"),
            last_injection=status.get("last_injection"),
            queue=status.get("queue"),
            last_error=status.get("last_error"),
        )
    body.update(last_change=last_change, read_only=store.read_only)
    body["ok"] = bool(body["ok"] and body.get("database", True))
    return body


def _label(results: pl.DataFrame, injection_id: int) -> str:
    if results.is_empty():
        return f"#{injection_id}"
    row = results.filter(pl.col("injection_id") == injection_id)
    if row.is_empty():
        return f"#{injection_id}"
    r = row.row(0, named=True)
    return f"{r['sample_id'] or r['file']}"
