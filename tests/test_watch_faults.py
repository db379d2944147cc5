"""Nothing blocks the pipeline and no lost event stays lost: real folders, real observers.

A symlinked watched folder, a FIFO and a link to ``/dev/zero`` named like
injections, a file whose completeness check is slow, a symlinked sub-folder
native events never see, and a real inotify queue overflow (the monitor
process stopped with SIGSTOP while thousands of files arrive).
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Events, Proc, asnmon_run, stored_once, wait_for

from asnmon.watch import FolderWatcher

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_thread_leak")]

ROOT = Path(__file__).resolve().parent.parent
SETTLE = 0.2
DOC = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<mzML xmlns="http://psi.hupo.org/ms/mzml">\n'
    b'<run id="r" startTimeStamp="2024-05-06T08:%02d:00Z">\n</run>\n</mzML>\n'
)


Make = Callable[..., tuple[FolderWatcher, Events]]


@pytest.fixture
def make_watcher(no_thread_leak: None) -> Iterator[Make]:
    made: list[FolderWatcher] = []

    def make(folder: Path, **options: Any) -> tuple[FolderWatcher, Events]:
        events = Events()
        watcher = FolderWatcher(
            folder, events, settle=SETTLE, retry_every=0.2, **{"max_write": 30.0, **options}
        )
        made.append(watcher)
        watcher.start()
        return watcher, events

    yield make
    for watcher in made:
        assert watcher.stop(), "a watcher thread did not stop"


def write_doc(path: Path, minute: int = 0) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(DOC % minute)
    os.replace(tmp, path)


# ---------------------------------------------------------------- symlinks


def test_symlinked_watched_folder_sees_new_files_with_native_events(
    tmp_path: Path, make_watcher: Make
) -> None:
    real = tmp_path / "2024-05-06"
    real.mkdir()
    link = tmp_path / "current"
    link.symlink_to(real, target_is_directory=True)
    watcher, events = make_watcher(link)
    assert watcher.status().observer == "native"
    for i in range(3):
        write_doc(real / f"{i:03d}_S.mzML", i)
    assert wait_for(lambda: len(events.of("ready")) == 3, 10), events.names("ready")
    assert watcher.root == real
    assert all(e.path.parent == real for e in events.of("ready"))


def test_periodic_rescan_finds_files_no_event_reported(tmp_path: Path, make_watcher: Make) -> None:
    """A symlinked sequence sub-folder: inotify does not follow it, a scan does."""
    root = tmp_path / "instrument"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere" / "seqB"
    elsewhere.mkdir(parents=True)
    (root / "seqB").symlink_to(elsewhere, target_is_directory=True)
    _, events = make_watcher(root, recursive=True, rescan_every=1.0)
    for i in range(3):
        write_doc(elsewhere / f"{i:03d}_S.mzML", i)
    assert wait_for(lambda: len(events.of("ready")) == 3, 10), events.names("ready")


# ---------------------------------------------------------------- never open what is not a file


def test_fifo_and_device_are_skipped_with_a_note_and_block_nothing(
    tmp_path: Path, make_watcher: Make
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    _, events = make_watcher(folder)
    os.mkfifo(folder / "001_PIPE.mzML")
    (folder / "002_ZERO.mzML").symlink_to("/dev/zero")
    for i in range(3, 8):
        write_doc(folder / f"{i:03d}_S.mzML", i)
    assert wait_for(lambda: len(events.of("ready")) == 5, 10), events.names("ready")
    assert wait_for(lambda: len(events.of("not_a_file")) == 2, 5)
    notes = {e.path.name: e.message for e in events.of("not_a_file")}
    assert "FIFO" in notes["001_PIPE.mzML"]
    assert "character device" in notes["002_ZERO.mzML"]
    assert not wait_for(lambda: len(events.of("not_a_file")) > 2, 1.0)  # said once


def slow_gzip(path: Path, members: int = 800_000) -> None:
    """A real, complete .mzML.gz whose completeness check takes seconds (many tiny gzip
    members before the closing tag: the check must inflate them all to find it)."""
    member = gzip.compress(b"<!-- a comment -->\n", mtime=0)
    head = gzip.compress(b'<?xml version="1.0"?>\n<mzML>\n', mtime=0)
    tail = gzip.compress(b"</mzML>\n", mtime=0)
    path.write_bytes(head + member * members + tail)


def test_one_slow_completeness_check_does_not_hold_back_the_others(
    tmp_path: Path, make_watcher: Make
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    slow = tmp_path / "slow.mzML.gz"
    slow_gzip(slow)
    begun = time.monotonic()
    with gzip.open(slow) as fh:
        while fh.read(1 << 20):
            pass
    inflate = time.monotonic() - begun
    assert inflate > 2.0, "the slow file must really be slow for this test to mean anything"
    _, events = make_watcher(folder)
    os.replace(slow, folder / "000_SLOW.mzML.gz")
    time.sleep(SETTLE + 0.5)  # its check has begun
    written = time.monotonic()
    for i in range(1, 4):
        write_doc(folder / f"{i:03d}_S.mzML", i)
    fast = [f"{i:03d}_S.mzML" for i in range(1, 4)]
    assert wait_for(lambda: set(fast) <= set(events.names("ready")), 10)
    took = time.monotonic() - written
    assert took < min(2.5, inflate), f"3 files took {took:.1f} s behind a {inflate:.1f} s check"
    # the slow check ends (its file is complete) before stop(): no thread outlives the test
    assert wait_for(lambda: "000_SLOW.mzML.gz" in events.names("ready"), 100)


def test_a_restart_batch_is_handed_on_in_order_however_long_its_checks_wait(
    tmp_path: Path, make_watcher: Make
) -> None:
    """The soak's IS % differences: after a restart under load, ~1,000 checks queued for
    seconds; the order windows counted from the moment a check was asked for, so once
    they had passed, files went on in the order their checks happened to finish, and a
    calibrator ingested 30 injections late moved the IS reference of those between."""
    from asnmon.acquired import OrderKey, acquisition_key

    folder = tmp_path / "seq"
    folder.mkdir()
    names = [f"{i:03d}_S.mzML" for i in range(60)]
    for i, name in enumerate(names):
        write_doc(folder / name, i)  # already there: the start's reconciliation batch
    slow = names[-8]

    def loaded(path: Path) -> OrderKey:
        """A loaded machine: every check takes a while on its thread, one a little longer."""
        time.sleep(0.3 if path.name == slow else 0.12)
        return acquisition_key(path)

    _, events = make_watcher(folder, order_key=loaded)
    assert wait_for(lambda: len(events.names("ready")) == len(names), 60)
    assert events.names("ready") == names


# ---------------------------------------------------------------- a real overflow


def test_inotify_overflow_triggers_a_rescan_nothing_missed(
    tmp_path: Path, sim_paths: list[Path]
) -> None:
    """SIGSTOP the monitor, write past the kernel's event queue, SIGCONT: all are ingested."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 100_000:
        pytest.skip(f"max_queued_events is {limit}: too many files to write for an overflow")
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "overflow.duckdb"
    proc = Proc(asnmon_run(folder, db, "--no-dashboard", "--settle", str(SETTLE)), merged=True)
    out = proc.lines
    try:
        assert wait_for(lambda: proc.said("watching"), 30), out
        proc.popen.send_signal(signal.SIGSTOP)
        for i in range(limit // 2 + 1000):  # create + close: two events each
            (folder / f"note_{i:05d}.txt").touch()
        for src in sim_paths:
            shutil.copyfile(src, folder / src.name)
        proc.popen.send_signal(signal.SIGCONT)
        names = [p.name for p in sim_paths]
        assert wait_for(lambda: proc.said(*names), 60), out[-20:]
        assert proc.said("FILE EVENTS LOST")
    finally:
        proc.popen.send_signal(signal.SIGCONT)
        code = proc.stop()
    assert code == 0
    assert stored_once(db) == dict.fromkeys(names, 1)


@pytest.fixture(scope="module")
def sim_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from asnmon.simulate import SimConfig, simulate_run

    run = simulate_run(tmp_path_factory.mktemp("sim") / "ASNSIM", SimConfig(n_samples=2))
    return list(run.paths[:12])


# ---------------------------------------------------------------- the file's own start time


def test_start_time_is_read_from_the_head_of_plain_and_gzip_files(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from asnmon.acquired import acquisition_key, read_start_time

    plain = tmp_path / "a.mzML"
    write_doc(plain, 7)
    packed = tmp_path / "b.mzML.gz"
    packed.write_bytes(gzip.compress(DOC % 3, mtime=0))
    none = tmp_path / "c.mzML"
    none.write_bytes(b"<mzML><run id='r'></run></mzML>")
    os.mkfifo(tmp_path / "d.mzML")  # never opened: read_start_time must return at once
    assert read_start_time(plain) == datetime(2024, 5, 6, 8, 7, tzinfo=UTC)
    assert read_start_time(packed) == datetime(2024, 5, 6, 8, 3, tzinfo=UTC)
    assert read_start_time(none) is None
    assert read_start_time(tmp_path / "d.mzML") is None
    os.utime(plain, (0, 0))  # 1970: the file time must not put it first
    ordered = sorted([plain, none, packed], key=lambda p: acquisition_key(p))
    assert ordered == [packed, plain, none]
