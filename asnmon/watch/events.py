"""The watcher's records: what it tells the rest of asnmon, and its status snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

EventKind = Literal[
    "ready",
    "incomplete",
    "convert_error",
    "folder_lost",
    "folder_back",
    "error",
    "not_a_file",
    "events_lost",
]
WatchState = Literal["watching", "unreachable", "stopped"]
ObserverKind = Literal["native", "polling"]

DEFAULT_PATTERNS: tuple[str, ...] = ("*.mzML", "*.mzml", "*.mzML.gz")


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """What the watcher tells the rest of asnmon; ``at`` is wall-clock epoch seconds."""

    kind: EventKind
    path: Path
    message: str
    at: float


@dataclass(frozen=True, slots=True)
class WatchStatus:
    """A snapshot for the dashboard; ``since`` is when ``state`` last changed."""

    state: WatchState
    folder: Path
    observer: ObserverKind
    pending: int
    last_event_at: float | None
    last_error: str | None
    since: float
