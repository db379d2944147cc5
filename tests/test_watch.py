"""The watch stage against real observers, real folders and real subprocesses.

Synchronisation is always ``wait_for(condition)``; ``time.sleep`` appears only
as a writer's pacing (pauses shorter than ``settle``). A negative check ("no
second ready") waits a bounded quiet period with ``wait_for`` returning False.
"""

from __future__ import annotations

import gzip
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import Events, wait_for
from helpers_converters.minimal_mzml import indexed_mzml_doc, mzml_doc

from asnmon.errors import ConvertError, SettingsError
from asnmon.watch import (
    ConverterSpec,
    FolderWatcher,
    WatchEvent,
    is_complete,
    run_converter,
    scan_folder,
)

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_thread_leak")]

HELPERS = Path(__file__).resolve().parent / "helpers_converters"
FAKE = HELPERS / "fake_msconvert.py"
FAIL = HELPERS / "fail_converter.py"
HANG = HELPERS / "hang_converter.py"

SETTLE = 0.2
PAUSE = SETTLE / 4  # a writer's pause: longer than nothing, shorter than settle
QUIET = SETTLE * 4  # how long "nothing more happens" is watched for
OBSERVERS = [pytest.param(None, id="native"), pytest.param(0.1, id="polling")]

DOC = mzml_doc("run1")
CLOSING = b"</mzML>\n"


def write_file(path: Path, data: bytes) -> None:
    """Write and fsync, as an instrument's writer would before closing."""
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def alive(pid: int) -> bool:
    """A zombie (killed, not yet reaped by init) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


Make = Callable[..., tuple[FolderWatcher, Events]]


@pytest.fixture
def make_watcher(no_thread_leak: None) -> Iterator[Make]:
    made: list[FolderWatcher] = []

    def make(folder: Path, **options: object) -> tuple[FolderWatcher, Events]:
        events = Events()
        settings: dict[str, object] = {"settle": SETTLE, "retry_every": 0.2, **options}
        watcher = FolderWatcher(folder, events, **settings)  # type: ignore[arg-type]
        made.append(watcher)
        watcher.start()
        return watcher, events

    yield make
    for watcher in made:
        assert watcher.stop(5.0)
        assert watcher.status().state == "stopped"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "instrument"
    path.mkdir()
    return path


# ---------------------------------------------------------------- is_complete

BIG = mzml_doc("big", comment="x" * 3_000_000)
GZ = gzip.compress(DOC, mtime=0)
INDEXED = indexed_mzml_doc()

COMPLETENESS = [
    ("plain.mzML", DOC, True),
    ("trailing_whitespace.mzML", DOC + b"\n \r\n\t\n", True),
    ("truncated.mzML", DOC[:-20], False),
    ("body_only.mzML", DOC[: DOC.rindex(CLOSING)], False),
    ("indexed.mzML", INDEXED, True),
    ("indexed_cut_after_mzml.mzML", INDEXED[: INDEXED.index(b"  <indexList")], False),
    ("big.mzML", BIG, True),
    ("big_truncated.mzML", BIG[:-100_000], False),
    ("empty.mzML", b"", False),
    ("blank.mzML", b" \n\n", False),
    # not XML at all: it will never close, so it is handed on for a READ_ERROR once settled
    ("junk.mzML", bytes(range(7, 250)) * 40, True),
    ("doc.mzML.gz", GZ, True),
    ("big.mzML.gz", gzip.compress(BIG, mtime=0), True),
    ("cut_stream.mzML.gz", GZ[:-12], False),
    ("cut_content.mzML.gz", gzip.compress(DOC[:-20], mtime=0), False),
    ("bad_crc.mzML.gz", GZ[:-8] + b"\x00\x00\x00\x00" + GZ[-4:], False),
    ("gzip_without_gz_name.mzML", GZ, True),
    ("vendor.raw", b"\x01\x00\xa1Finnigan" + bytes(200), True),
]


@pytest.mark.parametrize(
    ("name", "data", "expected"), COMPLETENESS, ids=[c[0] for c in COMPLETENESS]
)
def test_is_complete(tmp_path: Path, name: str, data: bytes, expected: bool) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert is_complete(path) is expected


def test_is_complete_missing_file_and_raw_folder(tmp_path: Path) -> None:
    assert is_complete(tmp_path / "gone.mzML") is False
    (tmp_path / "sample.d").mkdir()
    assert is_complete(tmp_path / "sample.d") is True


# ---------------------------------------------------------------- scan_folder


def test_scan_folder_orders_by_mtime_then_name_and_skips_temporary(folder: Path) -> None:
    stamps = {
        "b.mzML": 100,
        "a.mzML": 100,
        "C.MZML": 50,
        "c.mzML.gz": 60,
        "x.mzML.tmp": 1,
        "y.mzML.part": 1,
        ".hidden.mzML": 1,
        "~$lock.mzML": 1,
        "notes.txt": 1,
        "sub/d.mzML": 10,
        "sample.d/AcqData/inner.mzML": 1,
    }
    for name, stamp in stamps.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(DOC)
        os.utime(path, (stamp, stamp))
    os.utime(folder / "sample.d", (75, 75))
    patterns = ("*.mzML", "*.mzML.gz", "*.d")

    flat = scan_folder(folder, patterns, recursive=False)
    deep = scan_folder(folder, patterns, recursive=True)

    names = ["C.MZML", "c.mzML.gz", "sample.d", "a.mzML", "b.mzML"]
    assert [p.relative_to(folder).as_posix() for p in flat] == names
    assert [p.relative_to(folder).as_posix() for p in deep] == ["sub/d.mzML", *names]


def test_scan_folder_raises_for_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan_folder(tmp_path / "missing", ("*.mzML",), recursive=False)


# ---------------------------------------------------------------- settling


@pytest.mark.parametrize("poll", OBSERVERS)
def test_progressive_write_is_handed_on_once_after_its_closing_tag(
    folder: Path, make_watcher: Make, poll: float | None
) -> None:
    watcher, events = make_watcher(folder, poll=poll)
    assert watcher.status().observer == ("native" if poll is None else "polling")
    target = folder / "inj01.mzML"
    body = DOC[: DOC.rindex(CLOSING)]
    step = len(body) // 8 + 1
    with target.open("wb") as fh:
        for start in range(0, len(body), step):
            fh.write(body[start : start + step])
            fh.flush()
            os.fsync(fh.fileno())
            time.sleep(PAUSE)
        assert wait_for(lambda: watcher.status().pending == 1, 5)
        # settled but not closed: must not be handed on
        assert not wait_for(lambda: events.of("ready"), QUIET)
        fh.write(CLOSING)
        fh.flush()
        os.fsync(fh.fileno())
        last_byte_at = time.time()

    assert wait_for(lambda: events.of("ready"), 5)
    assert not wait_for(lambda: len(events.of("ready")) > 1, QUIET)
    [ready] = events.of("ready")
    assert ready.path == target
    assert ready.at - last_byte_at >= SETTLE
    assert watcher.status().pending == 0
    assert watcher.status().last_event_at == ready.at


@pytest.mark.parametrize("temp_name", ["inj02.mzML.part", "inj02.tmp", ".inj02.mzML", "~$inj02"])
@pytest.mark.parametrize("poll", OBSERVERS)
def test_temporary_name_then_rename_hands_on_the_final_name(
    folder: Path, make_watcher: Make, poll: float | None, temp_name: str
) -> None:
    _, events = make_watcher(folder, poll=poll)
    temp, final = folder / temp_name, folder / "inj02.mzML"
    write_file(temp, DOC)
    os.replace(temp, final)

    assert wait_for(lambda: events.of("ready"), 5)
    assert not wait_for(lambda: len(events.of("ready")) > 1, QUIET)
    assert events.paths("ready") == [final]


def test_duplicate_events_collapse_to_one_ready(folder: Path, make_watcher: Make) -> None:
    _, events = make_watcher(folder)
    target = folder / "inj03.mzML"
    with target.open("wb") as fh:
        for i in range(0, len(DOC), 64):  # dozens of "modified" events in a burst
            fh.write(DOC[i : i + 64])
            fh.flush()
    assert wait_for(lambda: events.of("ready"), 5)

    mode = target.stat().st_mode
    for _ in range(5):  # "opened", "closed", "attrib" events without any change
        target.open("ab").close()
        os.chmod(target, mode)
        target.read_bytes()
    assert not wait_for(lambda: len(events.of("ready")) > 1, QUIET)
    assert events.paths("ready") == [target]


@pytest.mark.parametrize("poll", OBSERVERS)
def test_file_changed_after_hand_on_is_handed_on_again(
    folder: Path, make_watcher: Make, poll: float | None
) -> None:
    _, events = make_watcher(folder, poll=poll)
    target = folder / "inj04.mzML"
    write_file(target, DOC)
    assert wait_for(lambda: events.of("ready"), 5)

    write_file(target, mzml_doc("run1-reacquired", points=7))
    assert wait_for(lambda: len(events.of("ready")) == 2, 5)
    assert not wait_for(lambda: len(events.of("ready")) > 2, QUIET)
    assert events.paths("ready") == [target, target]


def test_half_written_file_is_reported_incomplete_then_handed_on_when_finished(
    folder: Path, make_watcher: Make
) -> None:
    _, events = make_watcher(folder, max_write=0.6)
    target = folder / "inj05.mzML"
    half = len(DOC) // 2
    write_file(target, DOC[:half])

    assert wait_for(lambda: events.of("incomplete"), 5)
    assert not events.of("ready")
    [incomplete] = events.of("incomplete")
    assert incomplete.path == target
    assert "inj05.mzML" in incomplete.message
    assert "0.6 s" in incomplete.message

    with target.open("ab") as fh:
        fh.write(DOC[half:])
    assert wait_for(lambda: events.of("ready"), 5)
    assert len(events.of("incomplete")) == 1
    assert events.paths("ready") == [target]


def test_complete_gzip_is_handed_on_and_truncated_gzip_is_not(
    folder: Path, make_watcher: Make
) -> None:
    _, events = make_watcher(folder, max_write=1.0)
    good, cut = folder / "good.mzML.gz", folder / "cut.mzML.gz"
    write_file(good, GZ)
    write_file(cut, GZ[:-12])

    assert wait_for(lambda: events.of("incomplete"), 5)
    assert events.paths("ready") == [good]
    assert events.paths("incomplete") == [cut]


def test_start_up_scan_hands_on_files_already_there_in_acquisition_order(
    folder: Path, make_watcher: Make
) -> None:
    for i, name in enumerate(["z_first.mzML", "a_second.mzML", "m_third.mzML.gz"]):
        write_file(folder / name, gzip.compress(DOC, mtime=0) if name.endswith(".gz") else DOC)
        os.utime(folder / name, (1000 + i, 1000 + i))
    write_file(folder / "unfinished.mzML", DOC[:-50])

    _, events = make_watcher(folder)
    assert wait_for(lambda: len(events.of("ready")) == 3, 5)
    assert [p.name for p in events.paths("ready")] == [
        "z_first.mzML",
        "a_second.mzML",
        "m_third.mzML.gz",
    ]


def test_recursive_watch_sees_subfolders_and_flat_watch_does_not(
    folder: Path, make_watcher: Make
) -> None:
    _, flat_events = make_watcher(folder)
    _, deep_events = make_watcher(folder, recursive=True)
    (folder / "batch7").mkdir()
    write_file(folder / "batch7" / "inj06.mzML", DOC)
    write_file(folder / "inj07.mzML", DOC)

    assert wait_for(lambda: len(deep_events.of("ready")) == 2, 5)
    assert wait_for(lambda: flat_events.of("ready"), 5)
    assert not wait_for(lambda: len(flat_events.of("ready")) > 1, QUIET)
    assert flat_events.paths("ready") == [folder / "inj07.mzML"]


# ---------------------------------------------------------------- the folder goes away


@pytest.mark.parametrize("poll", OBSERVERS)
def test_folder_removed_and_recreated_is_lost_then_back_and_nothing_is_missed(
    tmp_path: Path, folder: Path, make_watcher: Make, poll: float | None
) -> None:
    watcher, events = make_watcher(folder, poll=poll)
    write_file(folder / "before.mzML", DOC)
    assert wait_for(lambda: events.of("ready"), 5)

    shutil.rmtree(folder)
    assert wait_for(lambda: events.of("folder_lost"), 5)
    status = watcher.status()
    assert status.state == "unreachable"
    [lost] = events.of("folder_lost")
    assert str(folder) in lost.message
    assert "every 0.2 s" in lost.message
    assert status.last_error == lost.message

    # files that arrived while it was gone: the share comes back with them in it
    staging = tmp_path / "staging"
    staging.mkdir()
    write_file(staging / "while_gone.mzML", DOC)
    os.rename(staging, folder)
    assert wait_for(lambda: events.of("folder_back"), 5)
    assert watcher.status().state == "watching"
    write_file(folder / "after.mzML", DOC)

    expected = {folder / n for n in ("before.mzML", "while_gone.mzML", "after.mzML")}
    assert wait_for(lambda: set(events.paths("ready")) == expected, 5)
    assert len(events.of("folder_lost")) == 1
    assert len(events.of("folder_back")) == 1
    assert not events.of("error")


def test_folder_swapped_between_health_checks_is_still_watched(
    tmp_path: Path, folder: Path, make_watcher: Make
) -> None:
    _, events = make_watcher(folder)
    staging = tmp_path / "staging"
    staging.mkdir()
    write_file(staging / "carried.mzML", DOC)
    shutil.rmtree(folder)
    os.rename(staging, folder)

    assert wait_for(lambda: events.of("folder_back"), 5)
    write_file(folder / "new.mzML", DOC)
    expected = {folder / "carried.mzML", folder / "new.mzML"}
    assert wait_for(lambda: expected <= set(events.paths("ready")), 5)


def test_folder_missing_at_start_is_waited_for(tmp_path: Path, make_watcher: Make) -> None:
    folder = tmp_path / "share-not-mounted-yet"
    watcher, events = make_watcher(folder)
    assert watcher.status().state == "unreachable"
    assert events.of("folder_lost")

    folder.mkdir()
    write_file(folder / "first.mzML", DOC)
    assert wait_for(lambda: events.paths("ready") == [folder / "first.mzML"], 5)
    assert events.of("folder_back")
    assert watcher.status().state == "watching"


def test_a_failing_callback_does_not_stop_the_watcher(
    folder: Path, make_watcher: Make, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[WatchEvent] = []

    def flaky(event: WatchEvent) -> None:
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("worker queue closed")

    watcher = FolderWatcher(folder, flaky, settle=SETTLE)
    watcher.start()
    try:
        write_file(folder / "one.mzML", DOC)
        assert wait_for(lambda: len(seen) == 1, 5)
        write_file(folder / "two.mzML", DOC)
        assert wait_for(lambda: len(seen) == 2, 5)
    finally:
        assert watcher.stop(5.0)
    assert "on_event callback failed" in (watcher.status().last_error or "")
    assert any(r.name == "asnmon.watch" and r.exc_info for r in caplog.records)


# ---------------------------------------------------------------- converters


def spec_for(script: Path, timeout: float = 30.0) -> ConverterSpec:
    return ConverterSpec([sys.executable, str(script), "{input}", "{output_dir}"], timeout)


def test_run_converter_returns_the_mzml_it_wrote(tmp_path: Path) -> None:
    raw = tmp_path / "with space.raw"
    raw.write_bytes(b"\x01raw" * 100)
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))} {{input}} {{output_dir}}"

    output = run_converter(ConverterSpec(command, 30.0), raw, tmp_path / "converted")

    assert output == tmp_path / "converted" / "with space.mzML"
    assert is_complete(output)


def test_run_converter_failure_carries_the_end_of_stderr(tmp_path: Path) -> None:
    raw = tmp_path / "s1.raw"
    raw.write_bytes(b"raw")
    with pytest.raises(ConvertError, match=r"exited with status 1 on s1\.raw") as info:
        run_converter(spec_for(FAIL), raw, tmp_path / "converted")
    message = str(info.value)
    assert "ERROR: cannot open raw file" in message
    assert "progress line 29" in message
    assert "progress line 5\n" not in message  # only the last ~20 lines


def test_run_converter_without_new_output_fails(tmp_path: Path) -> None:
    raw = tmp_path / "s1.raw"
    raw.write_bytes(b"raw")
    out = tmp_path / "converted"
    out.mkdir()
    write_file(out / "s1.mzML", DOC)  # a leftover from an earlier run is not new output
    silent = ConverterSpec([sys.executable, "-c", "pass", "{input}"], 30.0)
    with pytest.raises(ConvertError, match=r"wrote no new s1\.mzML"):
        run_converter(silent, raw, out)


def test_run_converter_kills_a_hung_process_group_at_its_timeout(tmp_path: Path) -> None:
    raw = tmp_path / "s1.raw"
    raw.write_bytes(b"raw")
    out = tmp_path / "converted"
    started = time.monotonic()
    with pytest.raises(ConvertError, match=r"timed out after 1 s"):
        run_converter(spec_for(HANG, timeout=1.0), raw, out)
    assert time.monotonic() - started < 1.0 + 3.0
    pids = [int(p) for p in (out / "pids.txt").read_text().split()]
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 3)


def test_missing_command_is_a_convert_error(tmp_path: Path) -> None:
    spec = ConverterSpec(["no-such-converter-asnmon", "{input}"], 5.0)
    with pytest.raises(ConvertError, match="cannot start the converter"):
        run_converter(spec, tmp_path / "s1.raw", tmp_path / "out")


@pytest.mark.parametrize(
    ("command", "timeout"), [(["msconvert", "--mzML"], 10.0), ("", 10.0), ("x {input}", 0.0)]
)
def test_converter_spec_rejects_unusable_settings(command: list[str] | str, timeout: float) -> None:
    with pytest.raises(SettingsError):
        ConverterSpec(command, timeout)


def test_converters_need_a_converted_dir(folder: Path) -> None:
    with pytest.raises(SettingsError, match="converted_dir"):
        FolderWatcher(folder, Events(), converters={".raw": spec_for(FAKE)})


def test_raw_file_is_converted_and_the_mzml_handed_on(
    tmp_path: Path, folder: Path, make_watcher: Make
) -> None:
    converted = tmp_path / "converted"
    _, events = make_watcher(folder, converters={"RAW": spec_for(FAKE)}, converted_dir=converted)
    write_file(folder / "s1.RAW", b"\x01raw" * 1000)

    assert wait_for(lambda: events.of("ready"), 10)
    [ready] = events.of("ready")
    assert ready.path == converted / "s1.mzML"
    assert "s1.RAW" in ready.message
    assert not wait_for(lambda: len(events.of("ready")) > 1, QUIET)
    assert len((converted / "calls.log").read_text().splitlines()) == 1


def test_failing_converter_is_reported_with_its_stderr(
    tmp_path: Path, folder: Path, make_watcher: Make
) -> None:
    _, events = make_watcher(
        folder, converters={".raw": spec_for(FAIL)}, converted_dir=tmp_path / "converted"
    )
    write_file(folder / "s2.raw", b"raw")

    assert wait_for(lambda: events.of("convert_error"), 10)
    [error] = events.of("convert_error")
    assert error.path == folder / "s2.raw"
    assert "ERROR: cannot open raw file" in error.message
    assert not events.of("ready")


def test_hanging_converter_times_out_and_is_killed(
    tmp_path: Path, folder: Path, make_watcher: Make
) -> None:
    converted = tmp_path / "converted"
    _, events = make_watcher(
        folder, converters={".raw": spec_for(HANG, timeout=1.0)}, converted_dir=converted
    )
    write_file(folder / "s3.raw", b"raw")
    written = time.monotonic()

    assert wait_for(lambda: events.of("convert_error"), 1.0 + 5.0)
    assert time.monotonic() - written < SETTLE + 1.0 + 3.0
    assert "timed out after 1 s" in events.of("convert_error")[0].message
    pids = [int(p) for p in (converted / "pids.txt").read_text().split()]
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 3)


def test_raw_folder_is_converted_once_after_it_settles(
    tmp_path: Path, folder: Path, make_watcher: Make
) -> None:
    converted = tmp_path / "converted"
    _, events = make_watcher(folder, converters={".d": spec_for(FAKE)}, converted_dir=converted)
    sample = folder / "sample.d"
    (sample / "AcqData").mkdir(parents=True)
    names = ["AcqData/Contents.xml", "AcqData/MSScan.xsd", "AcqData/MSScan.bin", "desktop.ini"]
    for name in names:
        write_file(sample / name, b"\x00" * 4096)
        time.sleep(PAUSE)

    assert wait_for(lambda: events.of("ready"), 10)
    assert not wait_for(lambda: len(events.of("ready")) > 1, QUIET)
    [ready] = events.of("ready")
    assert ready.path == converted / "sample.mzML"
    seen = ready.path.read_text()
    assert all(name in seen for name in names)  # converted only after the last file
    assert (converted / "calls.log").read_text().splitlines() == [str(sample)]


def test_converted_dir_inside_the_watched_folder_does_not_retrigger(
    folder: Path, make_watcher: Make
) -> None:
    converted = folder / "converted"
    _, events = make_watcher(
        folder, recursive=True, converters={".raw": spec_for(FAKE)}, converted_dir=converted
    )
    write_file(folder / "s4.raw", b"raw")

    assert wait_for(lambda: events.of("ready"), 10)
    assert not wait_for(lambda: len(events.of("ready")) > 1, QUIET)
    assert events.paths("ready") == [converted / "s4.mzML"]
    assert len((converted / "calls.log").read_text().splitlines()) == 1


# ---------------------------------------------------------------- with the simulator


@pytest.mark.parametrize("poll", OBSERVERS)
def test_simulated_instrument_files_are_handed_on_and_a_truncated_one_is_not(
    folder: Path, make_watcher: Make, poll: float | None
) -> None:
    simulate = pytest.importorskip("asnmon.simulate")
    config = simulate.apply_faults(simulate.SimConfig(n_samples=1), ["truncated:2"])
    first, cut, third = simulate.plan_run(config)[:3]
    _, events = make_watcher(folder, poll=poll, max_write=1.5)
    for planned in (first, cut, third):  # chunks 50 ms apart, as the instrument writes
        simulate.write_injection(
            planned, folder / f"{planned.stem}.mzML", config, write_seconds=0.4
        )

    assert wait_for(lambda: events.of("incomplete"), 10)
    assert wait_for(lambda: len(events.of("ready")) >= 2, 10)  # the third may settle later
    assert events.paths("ready") == [folder / f"{p.stem}.mzML" for p in (first, third)]
    assert events.paths("incomplete") == [folder / f"{cut.stem}.mzML"]
