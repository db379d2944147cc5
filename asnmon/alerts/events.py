"""What an alert is about: one event record and the builders for each source.

Flags, watcher problems, the monitor's own health and verdict changes each
become an ``AlertEvent``; the alerter batches them into messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from asnmon.records import Flag, Severity

AlertKind = Literal["flag", "watcher", "verdict", "monitor", "test"]


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One thing worth a person's attention; ``at`` is wall-clock epoch seconds."""

    kind: AlertKind
    title: str
    detail: str = ""
    severity: str = Severity.FAIL.value
    run_id: str | None = None
    code: str | None = None
    at: float = field(default_factory=time.time)
    file: str | None = None  # the injection's file, for a flag (the on_fail hook uses it)
    injection_id: int | None = None


def event_from_flag(
    run_id: str, flag: Flag, file: str | None = None, injection_id: int | None = None
) -> AlertEvent:
    where = f"{file}: " if file else ""
    return AlertEvent(
        kind="flag",
        title=f"{flag.code} in run {run_id}",
        detail=f"{where}{flag.message}" + (f" What to do: {flag.action}" if flag.action else ""),
        severity=flag.severity.value,
        run_id=run_id,
        code=flag.code,
        file=file,
        injection_id=injection_id,
    )


def event_from_watch(kind: str, message: str, at: float | None = None) -> AlertEvent | None:
    """A watcher event (``WatchEvent.kind``/``message``) as an alert, or None for routine ones."""
    titles = {
        "folder_lost": ("FOLDER LOST", Severity.FAIL),
        "folder_back": ("FOLDER BACK", Severity.INFO),
        "error": ("WATCHER ERROR", Severity.FAIL),
    }
    if kind not in titles:
        return None
    title, severity = titles[kind]
    return AlertEvent(
        kind="watcher",
        title=title,
        detail=message,
        severity=severity.value,
        code=kind.upper(),
        at=time.time() if at is None else at,
    )


# The monitor's own health: code -> (title, severity). Each problem alerts when it
# starts and again when it clears, never once per retry.
MONITOR_EVENTS: dict[str, tuple[str, Severity]] = {
    "DATABASE_PROBLEM": ("DATABASE PROBLEM", Severity.FAIL),
    "DATABASE_BACK": ("DATABASE BACK", Severity.INFO),
    "WORKER_PROBLEM": ("WORKER PROBLEM", Severity.FAIL),
    "WORKER_BACK": ("WORKER BACK", Severity.INFO),
    "WORKLIST_PROBLEM": ("WORKLIST PROBLEM", Severity.FAIL),
    "WORKLIST_FIXED": ("WORKLIST FIXED", Severity.INFO),
    "EVENTS_LOST": ("FILE EVENTS LOST", Severity.WARNING),
    "NOT_A_FILE": ("NOT A REGULAR FILE", Severity.WARNING),
    "INSTRUMENT_STALLED": ("INSTRUMENT STALLED", Severity.FAIL),
    "INSTRUMENT_RESUMED": ("INSTRUMENT RESUMED", Severity.INFO),
    "RUN_FINISHED": ("RUN FINISHED", Severity.INFO),  # raised to the verdict's severity
    "ACTION_FAILED": ("ON_FAIL HOOK FAILED", Severity.FAIL),
}


def event_from_monitor(
    code: str, message: str, run_id: str | None = None, severity: Severity | None = None
) -> AlertEvent:
    """A monitor health change (``MONITOR_EVENTS``) as an alert; ``severity`` overrides."""
    title, default = MONITOR_EVENTS[code]
    return AlertEvent(
        kind="monitor",
        title=title,
        detail=message,
        severity=(severity or default).value,
        run_id=run_id,
        code=code,
    )


def event_from_verdict(run_id: str, old: str | None, new: str, reason: str = "") -> AlertEvent:
    severity = {"fail": Severity.FAIL, "at risk": Severity.WARNING}.get(new.lower(), Severity.INFO)
    return AlertEvent(
        kind="verdict",
        title=f"run {run_id}: verdict {old or 'none'} -> {new}",
        detail=reason,
        severity=severity.value,
        run_id=run_id,
        code="VERDICT",
    )
