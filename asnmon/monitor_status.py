"""What the monitor tells others on a timer: heartbeat, stall, run finished, verdict file, hook.

Runs on the ingestion worker (the one writer) at idle moments, after waiting
calibrators are fitted, so a run's verdict is the committed one:

* every ``heartbeat_every`` s (and at the next idle moment after a stored
  injection) the heartbeat keys (``asnmon.heartbeat``) go to the database and
  the JSON status file (``asnmon.actions``) is rewritten;
* the instrument is judged from the current run's pace: INSTRUMENT STALLED
  (alert, banner) once, INSTRUMENT RESUMED when files come again;
* a run whose every worklist position has its file is RUN FINISHED: one
  summary alert (verdict, counts, open fails), remembered in the database so
  a restart does not send it again;
* new FAIL flags and verdicts (``AlertFeed``) start the ``[actions] on_fail``
  hook: once per injection that gets a FAIL flag, once per run that turns FAIL.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from asnmon.actions import ActionRunner, HookResult, Trigger, run_document, status_document
from asnmon.actions import write_json_atomic as write_status_file
from asnmon.alerts import AlertEvent
from asnmon.heartbeat import (
    RunPace,
    Stall,
    clock,
    judge_stall,
    minutes,
    pace_of,
    parse_stamp,
    status_values,
)
from asnmon.records import Severity
from asnmon.settings import Settings
from asnmon.store import Store

log = logging.getLogger("asnmon.monitor")

RECENT_RUNS = 4  # runs written into the status file: the current one and those just before
ADOPT_WITHIN = 86400.0  # s; at start-up the newest run is watched for a stall if this fresh
FINISHED_KEPT = 50  # run ids remembered as summarised
BUSY_RUNS_EVERY = 60.0  # s between the runs' documents rewritten while files are pending
_UNSET = object()
_CLOCK_KEYS = frozenset({"updated"})  # moves at every beat: no redraw for it alone


class MonitorStatus:
    """Single-threaded (the worker's); ``announce(code, message, run, severity)`` tells people."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        status_file: Path,
        planned: Callable[[str], int | None],
        link: Callable[[str, str], int | None],
        announce: Callable[[str, str, str | None, Severity | None], None],
        report_hook: Callable[[HookResult], None],
    ) -> None:
        self.store = store
        self.settings = settings
        self.status_file = status_file
        self._planned = planned
        self._link = link
        self._announce = announce
        self.actions = ActionRunner(
            settings.on_fail, settings.on_fail_timeout, status_file, report_hook
        )
        self.started = time.time()
        self.current_run: str | None = None
        self._recent: list[str] = []
        self._next_beat = 0.0
        self._due = True
        self._adopted = False
        self.stall: Stall | None = None
        self.pace: RunPace | None = None
        self._finished: list[str] | None = None  # read from the database on first use
        self._hooked: set[tuple[str, int | None]] = set()
        self.file_problem: str | None = None
        self._shown: dict[str, Any] = {}
        self._written: dict[str, Any] = {}
        self._seq = -1
        self._paced_run: str | None = None
        self._paced: RunPace | None = None
        self._runs_doc: list[dict[str, Any]] | None = None
        self._runs_doc_at = 0.0
        self._runs_built: tuple[int, str | None] = (-1, None)  # (change seq, run) it shows

    # ------------------------------------------------------------ inputs

    def stored(self, run_id: str) -> None:
        """An injection of ``run_id`` was stored: it is the current run; beat at the next idle."""
        self.current_run = run_id
        self._recent = [run_id, *[r for r in self._recent if r != run_id]][:RECENT_RUNS]
        self._due = True

    def wake(self) -> None:
        """Any thread: beat at the next idle moment (a hook finished, say)."""
        self._due = True

    def problems(self) -> list[str]:
        """For the banner: a stalled instrument, a status file that cannot be written."""
        out = [f"INSTRUMENT STALLED: {self.stall.message}"] if self.stall is not None else []
        if self.file_problem:
            out.append(f"STATUS FILE: {self.file_problem}")
        return out

    # ------------------------------------------------------------ the beat

    def timer_due(self) -> bool:
        """The beat's timer has run out (a stored injection alone does not make it due)."""
        return time.time() >= self._next_beat

    def beat(self, extra: dict[str, Any], *, force: bool = False, timer_only: bool = False) -> bool:
        """Write the heartbeat if due; True if written. ``extra``: the monitor's own keys.

        ``timer_only``: while work is pending, only on the timer (never after every
        file), so a catch-up of thousands of files still says the monitor is alive.
        """
        now = time.time()
        if timer_only:
            if now < self._next_beat:
                return False
        elif not (force or self._due or now >= self._next_beat):
            return False
        self._next_beat = now + self.settings.heartbeat_every
        if not timer_only:  # a busy beat may show older run documents: the idle one is due
            self._due = False
        if self.current_run is None and not self._adopted:
            self._adopted = True
            self._adopt_latest(now)
        # Results, flags and file times change only with a recorded change: a quiet
        # beat reuses what the last one read (measured: 0.5 s -> a few ms, 87 injections).
        seq = self.store.last_change()
        if seq != self._seq or self.current_run != self._paced_run:
            self._seq, self._paced_run = seq, self.current_run
            self._paced = self._pace(self.current_run) if self.current_run else None
        # While busy the runs' documents (every result and flag of the recent runs:
        # ~0.3 s at load) are refreshed once a minute; the pace at every beat.
        if self._runs_built != (seq, self.current_run) and (
            not timer_only
            or self._runs_built[1] != self.current_run  # a new run: its document at once
            or now - self._runs_doc_at >= BUSY_RUNS_EVERY
        ):
            self._runs_doc = None
        pace = self._paced
        stall = judge_stall(pace, now, self.settings.stall_factor) if pace else None
        self._judge(pace, stall, now)
        self.pace = pace
        values: dict[str, Any] = {
            **extra,
            "updated": now,
            "heartbeat_every": self.settings.heartbeat_every,
            "monitor_pid": os.getpid(),
            "monitor_started": self.started,
            **status_values(pace, stall),
            **self.actions.status(),
            "status_file": str(self.status_file),
            "monitor_stopped_at": None,
        }
        # A change a reader shows (state, problems, a hook's result) is a recorded
        # change that redraws open pages; a beat that only moves the clock is not.
        shown = {k: v for k, v in values.items() if k not in _CLOCK_KEYS}
        if shown != self._shown:
            self.store.set_status(values)
        else:  # only what moved: the clock, mostly
            self.store.beat({k: v for k, v in values.items() if self._written.get(k, _UNSET) != v})
        self._shown, self._written = shown, values
        self._write_file(values, pace)
        return True

    def _adopt_latest(self, now: float) -> None:
        """After a restart with no new file: watch the newest run if it was acquiring lately."""
        runs = self.store.runs()
        if runs.is_empty():
            return
        run_id = str(runs["run_id"][0])
        pace = self._pace(run_id)
        last = pace.last_file_at if pace is not None else None
        fresh = last is not None and now - last <= ADOPT_WITHIN
        if pace is not None and fresh and not pace.finished:
            self.current_run = run_id
            self._recent = [run_id]

    def _pace(self, run_id: str) -> RunPace | None:
        results = self.store.results(run_id)
        if results.is_empty():
            return None
        files = self.store.run_files(run_id)
        written: list[float] = []
        for name, ingested in zip(
            results["file"].to_list(), results["ingested_at"].to_list(), strict=True
        ):
            stored = files.get(name)
            try:
                written.append(Path(stored.path).stat().st_mtime if stored else float("nan"))
            except OSError:
                written.append(float("nan"))
            if written[-1] != written[-1]:  # gone (archived): when it was stored instead
                written[-1] = ingested.timestamp() if isinstance(ingested, datetime) else 0.0
        planned = self._planned(run_id)
        if planned is None:
            runs = self.store.runs().filter(pl.col("run_id") == run_id)
            value = runs["planned"][0] if not runs.is_empty() else None
            planned = int(value) if value is not None else None
        return pace_of(
            run_id,
            starts=[parse_stamp(s) for s in results["acquired_at"].to_list()],
            written=written,
            positions=results["position"].to_list(),
            planned=planned,
        )

    def _judge(self, pace: RunPace | None, stall: Stall | None, now: float) -> None:
        old = self.stall
        if stall is not None and old is None:
            self._announce("INSTRUMENT_STALLED", stall.message, stall.run_id, None)
        elif stall is None and old is not None:
            if pace is not None and pace.run_id == old.run_id and not pace.finished:
                what = f"files come again (the last at {clock(pace.last_file_at)})"
            elif pace is not None and pace.run_id == old.run_id:
                what = "its last worklist injection is in"
            else:
                what = f"the instrument moved on to run {pace.run_id if pace else '?'}"
            self._announce(
                "INSTRUMENT_RESUMED",
                f"run {old.run_id}: {what}, {minutes(now - old.at)} after the stall alert.",
                old.run_id,
                None,
            )
        self.stall = replace(stall, at=old.at) if stall is not None and old is not None else stall
        if pace is not None and pace.finished:
            self._finish(pace)

    def _finish(self, pace: RunPace) -> None:
        if self._finished is None:
            known = self.store.status().get("finished_runs")
            self._finished = [str(r) for r in known] if isinstance(known, list) else []
        if pace.run_id in self._finished:
            return
        self._finished = [*self._finished, pace.run_id][-FINISHED_KEPT:]
        self.store.set_status({"finished_runs": self._finished})
        verdict, reason = self.store.run_verdicts().get(pace.run_id, ("", ""))
        flags = self.store.flags(pace.run_id)
        fails = flags.filter((pl.col("severity") == "fail") & (pl.col("acks") == 0))
        codes = ", ".join(
            f"{code} x{n}" if n > 1 else str(code)
            for code, n in fails.group_by("code").len().sort("len", descending=True).iter_rows()
        )
        extra = (
            f" + {pace.not_in_worklist} not in the worklist (re-injections)"
            if pace.not_in_worklist
            else ""
        )
        message = (
            f"run {pace.run_id} finished: all {pace.planned} worklist injections are in"
            f"{extra}. Verdict {(verdict or 'none').upper()}"
            + (f" ({reason})" if reason else "")
            + f"; {fails.height} open FAIL flag(s)"
            + (f": {codes}" if codes else "")
            + ". Review and sign off the run."
        )
        worst = (
            Severity.FAIL
            if verdict == "fail" or fails.height
            else Severity.WARNING
            if verdict == "at risk"
            else Severity.INFO
        )
        self._announce("RUN_FINISHED", message, pace.run_id, worst)

    def beat_file_only(self, extra: dict[str, Any]) -> None:
        """The status file alone, from the last beat's values: the database does not answer.

        A monitor retrying a database that fails (a full disk) is alive and says
        why it is not ingesting; a stale file would say "not running" instead.
        """
        now = time.time()
        self._next_beat = now + self.settings.heartbeat_every
        values = {**self._written, **extra, "updated": now, "monitor_pid": os.getpid()}
        values.setdefault("heartbeat_every", self.settings.heartbeat_every)
        values.setdefault("monitor_started", self.started)
        values.setdefault("status_file", str(self.status_file))
        values.setdefault("monitor_stopped_at", None)
        self._write_file(values, self.pace, read=False)

    def _write_file(
        self, values: dict[str, Any], pace: RunPace | None, *, read: bool = True
    ) -> None:
        if self._runs_doc is None and read:
            self._runs_doc = self._run_documents()
            self._runs_doc_at = time.time()
            self._runs_built = (self._seq, self.current_run)
        runs = [  # the pace part moves with the clock (stalled or not): fresh every beat
            {**doc, "pace": status_values(pace, self.stall)}
            if pace is not None and doc["run_id"] == pace.run_id
            else doc
            for doc in self._runs_doc or ()
        ]
        try:
            write_status_file(self.status_file, status_document(values, runs))
        except (OSError, ValueError) as exc:
            problem = f"cannot write {self.status_file}: {exc}"
            if problem != self.file_problem:
                log.error("%s", problem)
            self.file_problem = problem
            return
        self.file_problem = None

    def _run_documents(self) -> list[dict[str, Any]]:
        verdicts = self.store.run_verdicts()
        out = []
        for run_id in self._recent:
            verdict, reason = verdicts.get(run_id, ("", ""))
            out.append(
                run_document(
                    run_id,
                    verdict,
                    reason,
                    self.store.results(run_id).to_dicts(),
                    self.store.flags(run_id).to_dicts(),
                    link=partial(self._link, run_id),
                )
            )
        return out

    def stopped(self) -> None:
        """A clean stop: readers say "monitor stopped at ..." instead of "not running"."""
        now = time.time()
        self.store.set_status({"monitor_stopped_at": now})
        try:
            with self.status_file.open(encoding="utf-8") as fh:
                document = json.load(fh)
            document["monitor"]["monitor_stopped_at"] = now
            write_status_file(self.status_file, document)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("could not mark %s as stopped: %s", self.status_file, exc)

    # ------------------------------------------------------------ the hook

    def act_on(self, events: Iterable[AlertEvent]) -> None:
        """Start the on_fail hook for an injection's first FAIL flag and a run turning FAIL."""
        for event in events:
            if event.run_id is None:
                continue
            if event.kind == "flag" and event.severity == Severity.FAIL.value:
                key = (event.run_id, event.injection_id)
                if key in self._hooked:
                    continue
                self._hooked.add(key)
                position = self._position(event.run_id, event.injection_id)
                self.actions.trigger(
                    Trigger(
                        "injection_fail" if event.injection_id is not None else "run_fail",
                        event.run_id,
                        file=event.file or "",
                        position=position,
                        code=event.code or "",
                    )
                )
            elif event.kind == "verdict" and event.title.lower().endswith("-> fail"):
                key = (event.run_id, None)
                if key not in self._hooked:
                    self._hooked.add(key)
                    self.actions.trigger(Trigger("run_fail", event.run_id, code="RUN_FAIL"))

    def _position(self, run_id: str, injection_id: int | None) -> int | None:
        if injection_id is None:
            return None
        results = self.store.results(run_id).filter(pl.col("injection_id") == injection_id)
        value = results["position"][0] if not results.is_empty() else None
        return int(value) if value is not None else None
