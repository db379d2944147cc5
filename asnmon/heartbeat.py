"""The monitor's heartbeat: its status keys, the run's pace, and stall / staleness rules.

One place for what the monitor writes on a timer (``Store.set_status``, and
the JSON status file beside the database) and what readers may conclude from
it, so the dashboard's tile and the read-only review judge it alike:

* ``monitor_seen(status, now)``: is a monitor writing this database, or when
  was it last seen? The heartbeat comes every ``heartbeat_every`` seconds
  (written in the status itself); three missed beats mean it is not running.
* ``pace_of``: the run's median injection interval, taken from the files' own
  start time stamps (acquisition cadence, not the order a backlog arrived in),
  when its last file came, and when the next and the last are expected.
* ``judge_stall``: the instrument stalled when no file has come for
  ``stall_factor`` x the median interval, or the worklist's expected end has
  passed by one interval with injections still missing.

Keys (all JSON values; times are epoch seconds, UTC):

==================  ===========================================================
``updated``         when this status was written (every heartbeat)
``heartbeat_every`` s between heartbeats: older than 3 x this = not running
``monitor_pid``     the writing process
``monitor_started`` when it started
``run_id``          the run the instrument is acquiring (the last file's)
``injections``      current injections stored for that run (all, re-injections too)
``planned``         worklist rows (None without a worklist)
``in_worklist``     worklist positions that have a file (the "29" of "31 / 29")
``not_in_worklist`` injections not in the worklist (re-injections, extras)
``median_interval`` s between injection starts (None until 3 injections)
``last_file_at``    when the run's newest file was written (its mtime)
``expected_next_at`` last_file_at + median_interval (None when finished)
``expected_end_at`` when the last worklist injection is due (None without one)
``instrument``      "acquiring" | "stalled" | "finished" | "waiting" (no pace yet)
``instrument_note`` the sentence behind ``instrument`` (stalled: what to do)
``monitor_stopped_at`` set by a clean stop (None while running)
``finished_runs``   run ids whose RUN FINISHED summary was sent
``action_*``        the on_fail hook: command, runs, failures, last result
``status_file``     where the JSON status file is written
==================  ===========================================================
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

HEARTBEAT_EVERY = 10.0  # s; the tile and the review call a monitor gone after 3 missed beats
MISSED_BEATS = 3
MIN_INTERVALS = 2  # a median of one interval is one injection's accident

InstrumentState = Literal["acquiring", "stalled", "finished", "waiting"]

KEYS: tuple[str, ...] = (
    "updated",
    "heartbeat_every",
    "monitor_pid",
    "monitor_started",
    "run_id",
    "injections",
    "planned",
    "in_worklist",
    "not_in_worklist",
    "median_interval",
    "last_file_at",
    "expected_next_at",
    "expected_end_at",
    "instrument",
    "instrument_note",
)


@dataclass(frozen=True, slots=True)
class RunPace:
    """How a run is coming in; times are epoch seconds."""

    run_id: str
    injections: int
    planned: int | None
    in_worklist: int
    median_interval: float | None
    last_file_at: float | None
    expected_next_at: float | None
    expected_end_at: float | None

    @property
    def finished(self) -> bool:
        """Every worklist position has its file (without a worklist: never known)."""
        return self.planned is not None and self.planned > 0 and self.in_worklist >= self.planned

    @property
    def not_in_worklist(self) -> int:
        return max(0, self.injections - self.in_worklist)


def median_interval(starts: Sequence[float | None]) -> float | None:
    """Median s between consecutive injection starts; None with fewer than 3 known starts."""
    known = sorted(s for s in starts if s is not None)
    steps = [b - a for a, b in itertools.pairwise(known) if b > a]
    return statistics.median(steps) if len(steps) >= MIN_INTERVALS else None


def pace_of(
    run_id: str,
    *,
    starts: Sequence[float | None],
    written: Sequence[float],
    positions: Sequence[int | None],
    planned: int | None,
) -> RunPace:
    """The pace of a run from its current injections' start stamps, file times and positions."""
    interval = median_interval(starts)
    last = max(written) if written else None
    in_list = len({p for p in positions if p is not None})
    pace = RunPace(run_id, len(positions), planned, in_list, interval, last, None, None)
    if interval is None or last is None or pace.finished:
        return pace
    left = planned - in_list if planned is not None else None
    return RunPace(
        run_id,
        len(positions),
        planned,
        in_list,
        interval,
        last,
        last + interval,
        last + left * interval if left is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Stall:
    """The instrument has stopped sending files; ``message`` says so, with numbers."""

    run_id: str
    waited: float  # s since the last file
    limit: float  # s it was allowed
    message: str
    at: float  # when it was judged stalled (epoch s)


def judge_stall(pace: RunPace, now: float, factor: float) -> Stall | None:
    """Stalled, or None (acquiring, finished, or too few injections to know the pace)."""
    if pace.finished or pace.median_interval is None or pace.last_file_at is None:
        return None
    interval = pace.median_interval
    waited = now - pace.last_file_at
    limit = factor * interval
    late_end = pace.expected_end_at is not None and now > pace.expected_end_at + interval
    if waited <= limit and not late_end:
        return None
    counts = (
        f"{pace.in_worklist} of {pace.planned} worklist injections are in"
        if pace.planned is not None
        else f"{pace.injections} injections are in and no worklist says how many to expect, "
        "so the sequence may simply have ended"
    )
    why = (
        f"past the worklist's expected end ({clock(pace.expected_end_at)}) by more than one "
        "interval"
        if late_end and waited <= limit
        else f"more than {factor:g} x the run's median injection interval ({minutes(interval)})"
    )
    return Stall(
        pace.run_id,
        waited,
        limit,
        f"run {pace.run_id}: no new file for {minutes(waited)} (last at "
        f"{clock(pace.last_file_at)}), {why}; {counts}. Check the instrument: pump pressure, "
        "vials and rack, the acquisition software and its queue.",
        now,
    )


def instrument_state(pace: RunPace | None, stall: Stall | None) -> tuple[InstrumentState, str]:
    """What the tile shows for the instrument, and the sentence behind it."""
    if pace is None:
        return "waiting", "no injection of a run yet"
    if pace.finished:
        return "finished", f"run {pace.run_id}: all {pace.planned} worklist injections are in"
    if stall is not None:
        return "stalled", stall.message
    if pace.median_interval is None:
        return "waiting", (
            f"run {pace.run_id}: {pace.injections} injection(s) in; the pace is known "
            f"after {MIN_INTERVALS + 1} injections with start time stamps"
        )
    return "acquiring", (
        f"run {pace.run_id}: one injection every {minutes(pace.median_interval)}; next "
        f"expected at about {clock(pace.expected_next_at)}"
    )


def status_values(pace: RunPace | None, stall: Stall | None) -> dict[str, Any]:
    """The run part of the heartbeat (the keys above from ``run_id`` on)."""
    state, note = instrument_state(pace, stall)
    values: dict[str, Any] = {"instrument": state, "instrument_note": note}
    if pace is None:
        return {k: None for k in KEYS[4:-2]} | values
    return {
        "run_id": pace.run_id,
        "injections": pace.injections,
        "planned": pace.planned,
        "in_worklist": pace.in_worklist,
        "not_in_worklist": pace.not_in_worklist,
        "median_interval": pace.median_interval,
        "last_file_at": pace.last_file_at,
        "expected_next_at": pace.expected_next_at,
        "expected_end_at": pace.expected_end_at,
        **values,
    }


def monitor_seen(status: Mapping[str, Any], now: float) -> tuple[bool, str]:
    """(running?, what to say): "monitor not running (last seen 02:13, 14 min ago)"."""
    updated = status.get("updated")
    if not isinstance(updated, int | float):
        return False, "monitor not running (never seen writing this database)"
    every = status.get("heartbeat_every")
    beat = float(every) if isinstance(every, int | float) and every > 0 else HEARTBEAT_EVERY
    age = now - float(updated)
    stopped = status.get("monitor_stopped_at")
    if isinstance(stopped, int | float) and stopped >= float(updated):
        return False, f"monitor stopped (cleanly at {clock(stopped)}, {minutes(now - stopped)} ago)"
    if age <= MISSED_BEATS * beat:
        return True, f"monitor running (status {age:.0f} s old)"
    return False, f"monitor not running (last seen {clock(updated)}, {minutes(age)} ago)"


def clock(epoch: float | None) -> str:
    """Local wall-clock time, with the date when it is not today."""
    if epoch is None:
        return "unknown"
    when = datetime.fromtimestamp(epoch)
    return when.strftime("%H:%M" if when.date() == datetime.now().date() else "%Y-%m-%d %H:%M")


def minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def parse_stamp(text: object) -> float | None:
    """An mzML startTimeStamp (ISO 8601, ``Z`` or an offset) as epoch seconds, or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.timestamp()
