"""Reading the shared Parquet folder: stat it each tick, re-read a file only when it moved.

A file caught mid-replace over SMB is skipped, named, and retried next tick.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from asnmon.share import RUNS_SUFFIX

log = logging.getLogger("asnmon.dashboard.share")

FileKey = tuple[str, int, int]  # name, mtime_ns, size


def folder_signature(share_dir: Path) -> tuple[FileKey, ...] | None:
    """(name, mtime_ns, size) of every visible Parquet file; None when unreachable."""
    try:
        entries = []
        for p in share_dir.iterdir():
            if p.name.startswith(".") or not p.name.endswith(".parquet"):
                continue  # temp files of a writer in progress
            try:
                st = p.stat()
            except OSError:  # replaced or removed between listing and stat
                continue
            entries.append((p.name, st.st_mtime_ns, st.st_size))
    except OSError:
        return None
    return tuple(sorted(entries))


@dataclass(frozen=True, slots=True)
class ShareState:
    """One consistent reading of the folder."""

    signature: tuple[FileKey, ...] | None
    results: pl.DataFrame
    runs: pl.DataFrame
    skipped: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        raw = repr((self.signature, self.skipped)).encode()
        return hashlib.sha1(raw, usedforsecurity=False).hexdigest()[:16]


@dataclass(slots=True)
class ShareCache:
    """Parsed frames per file, re-read only when the file's (mtime, size) changed."""

    share_dir: Path
    _files: dict[str, tuple[FileKey, pl.DataFrame]] = field(default_factory=dict)
    _state: ShareState | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> ShareState:
        """The current state; the folder is only stat'ed unless something moved."""
        sig = folder_signature(self.share_dir)
        with self._lock:
            st = self._state
            if st is not None and st.signature == sig and not st.skipped:
                return st
            self._state = self._load(sig)
            return self._state

    def _load(self, sig: tuple[FileKey, ...] | None) -> ShareState:
        if sig is None:
            self._files.clear()
            return ShareState(None, pl.DataFrame(), pl.DataFrame())
        fresh: dict[str, tuple[FileKey, pl.DataFrame]] = {}
        skipped: list[str] = []
        for key in sig:
            cached = self._files.get(key[0])
            if cached is not None and cached[0] == key:
                fresh[key[0]] = cached
                continue
            try:
                fresh[key[0]] = (key, pl.read_parquet(self.share_dir / key[0]))
            except (OSError, pl.exceptions.PolarsError) as exc:
                log.info("skipping %s for now: %s", key[0], exc)
                skipped.append(key[0])
        self._files = fresh
        results = [f for n, (_, f) in fresh.items() if not n.endswith(RUNS_SUFFIX)]
        runs = [f for n, (_, f) in fresh.items() if n.endswith(RUNS_SUFFIX)]
        return ShareState(sig, _concat(results), _concat(runs), tuple(skipped))


def _concat(frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def folder_message(share_dir: Path, state: ShareState) -> str:
    """The plain sentence under the title; empty when all is well."""
    if state.signature is None:
        return (
            f"✖ The shared folder {share_dir} cannot be reached (missing, unmounted or no "
            "permission). Retrying."
        )
    parts = []
    if state.results.is_empty() and state.runs.is_empty():
        parts.append(
            f"No runs in {share_dir} yet: each monitor exports here every few minutes "
            "([share] share_dir in its settings)."
        )
    if state.skipped:
        parts.append(
            f"▲ Skipped {len(state.skipped)} file(s) being rewritten, retried next refresh: "
            + ", ".join(state.skipped)
        )
    return " ".join(parts)
