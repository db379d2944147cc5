"""Abandoned injections: an open file older than a complete one of its run is INCOMPLETE now.

Real folders, real observers; files are written as an instrument writes them
(one at a time), and mtimes are set where the test is about which came first.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import Events, wait_for
from helpers_converters.minimal_mzml import mzml_doc

from asnmon.watch import FolderWatcher

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_thread_leak")]

SETTLE = 0.2
MAX_WRITE = 3600.0  # the old rule (INCOMPLETE after max_write) cannot be what fires here
DOC = mzml_doc("run1")
CUT = DOC[: len(DOC) * 6 // 10]


Make = Callable[..., tuple[FolderWatcher, Events]]


@pytest.fixture
def make_watcher() -> Iterator[Make]:
    made: list[FolderWatcher] = []

    def make(
        folder: Path, recursive: bool = False, one_writer: bool = True
    ) -> tuple[FolderWatcher, Events]:
        events = Events()
        watcher = FolderWatcher(
            folder,
            events,
            settle=SETTLE,
            max_write=MAX_WRITE,
            retry_every=0.2,
            recursive=recursive,
            one_writer=one_writer,
        )
        made.append(watcher)
        watcher.start()
        return watcher, events

    yield make
    for watcher in made:
        assert watcher.stop(5.0)


def write(path: Path, data: bytes, *, mtime: float | None = None) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.mark.parametrize("poll", [None, 0.1], ids=["native", "polling"])
def test_an_open_file_is_incomplete_once_a_later_one_completes_and_ingested_if_it_completes(
    tmp_path: Path, make_watcher: Make, poll: float | None
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    watcher, events = make_watcher(folder)
    aborted, later = folder / "031_S0031.mzML", folder / "032_S0032.mzML"
    write(aborted, CUT, mtime=time.time() - 5)
    # Settled and not closed: it waits (for up to max_write) while nothing else comes.
    assert not wait_for(lambda: events.of("incomplete"), SETTLE * 5)
    assert watcher.status().pending == 1
    write(later, DOC)
    assert wait_for(lambda: events.of("incomplete", aborted), 5), events.order()
    [note] = events.of("incomplete", aborted)
    assert "moved on" in note.message and later.name in note.message
    assert wait_for(lambda: events.of("ready", later), 5)
    assert not events.of("ready", aborted)
    assert watcher.status().pending == 1  # still watched: it may complete after all
    # Reported once, however many later files complete.
    write(folder / "033_S0033.mzML", DOC)
    assert wait_for(lambda: events.of("ready", folder / "033_S0033.mzML"), 5)
    assert len(events.of("incomplete", aborted)) == 1
    # The instrument (or a re-export) finishes it: handed on like any complete file.
    write(aborted, DOC)
    assert wait_for(lambda: events.of("ready", aborted), 5)


def test_a_file_still_being_written_or_newer_is_not_abandoned(
    tmp_path: Path, make_watcher: Make
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    _, events = make_watcher(folder)
    growing = folder / "040_S0040.mzML"
    newer = folder / "041_S0041.mzML"
    done = folder / "039_S0039.mzML"
    write(newer, CUT)  # open, but written after the file that completes below
    stop = threading.Event()

    def writer() -> None:  # keeps appending, faster than the settle time
        with growing.open("wb") as fh:
            for k in range(0, len(CUT), 200):
                if stop.is_set():
                    return
                fh.write(CUT[k : k + 200])
                fh.flush()
                time.sleep(SETTLE / 5)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        write(done, DOC, mtime=time.time() - 60)  # complete, older than both open files
        assert wait_for(lambda: events.of("ready", done), 5)
        assert not wait_for(lambda: events.of("incomplete"), SETTLE * 8), events.order()
    finally:
        stop.set()
        thread.join()


def test_the_rule_is_per_run_folder(tmp_path: Path, make_watcher: Make) -> None:
    """Another run's complete file says nothing about this run's open one."""
    a, b = tmp_path / "seqA", tmp_path / "seqB"
    a.mkdir()
    b.mkdir()
    _, events = make_watcher(tmp_path, recursive=True)
    write(a / "001_S1.mzML", CUT, mtime=time.time() - 30)
    write(b / "001_S1.mzML", DOC)
    assert wait_for(lambda: events.of("ready"), 5)
    assert not wait_for(lambda: events.of("incomplete"), SETTLE * 8), events.order()
    write(a / "002_S2.mzML", DOC)  # its own run moves on: now it is abandoned
    assert wait_for(lambda: events.of("incomplete", a / "001_S1.mzML"), 5), events.order()


def test_off_for_several_writers_at_once(tmp_path: Path, make_watcher: Make) -> None:
    """Multiplexed LC writes two files at once: a later one completing proves nothing."""
    folder = tmp_path / "seq"
    folder.mkdir()
    _, events = make_watcher(folder, one_writer=False)
    write(folder / "031_S0031.mzML", CUT, mtime=time.time() - 5)
    write(folder / "032_S0032.mzML", DOC)
    assert wait_for(lambda: events.of("ready"), 5)
    assert not wait_for(lambda: events.of("incomplete"), SETTLE * 8), events.order()
