"""Nothing a folder holds can block, exhaust or stall the reader or the watcher.

Real things on disk: a FIFO from ``os.mkfifo``, a symlink to ``/dev/zero``, and
decompression bombs written in a streaming way (one compressed 1 MiB block ended
with a full flush is byte-identical every time, so a 12 GiB bomb is that block
written 12,288 times: the test itself never holds more than a few MB).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import os
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import wait_for
from test_mzml import PEAK, RT, array_xml, chrom_xml, document, standard_chroms

from asnmon.errors import NotRegularFileError, ReadError, TooLargeError
from asnmon.fileread import Inflation, ReadLimits
from asnmon.mzml import file_sha256, read_file
from asnmon.watch import FolderWatcher, WatchEvent, is_complete

pytestmark = pytest.mark.timeout(60)

BLOCK = 1 << 20  # inflated bytes per repeated unit
HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n<mzML xmlns="http://psi.hupo.org/ms/mzml"><!--'
TAIL = b"--></mzML>\n"


def _units(wbits: int, fill: bytes) -> tuple[bytes, bytes]:
    """(stream start, repeated unit): each inflates to BLOCK bytes of ``fill``."""
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = fill * (BLOCK // len(fill))
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    unit = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(block) + c.flush(zlib.Z_FULL_FLUSH) == unit  # the trick holds
    return first, unit


def write_gzip_bomb(path: Path, mib: int, *, complete: bool = True) -> Path:
    """A gzip file (one member) that inflates to ``mib`` MiB of an mzML comment.

    ``complete``: with the final block and a correct CRC-32 and length, so it is a
    valid gzip file that ``gzip.decompress`` would inflate to the end.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    start = c.compress(HEAD) + c.flush(zlib.Z_FULL_FLUSH)
    _, unit = _units(31, b" ")
    spaces = b" " * BLOCK
    crc = zlib.crc32(HEAD)
    with path.open("wb") as fh:
        fh.write(start)
        for _ in range(mib):
            fh.write(unit)
            if complete:
                crc = zlib.crc32(spaces, crc)
        if complete:
            crc = zlib.crc32(TAIL, crc)
            end = zlib.compressobj(9, zlib.DEFLATED, -15)
            fh.write(end.compress(TAIL) + end.flush(zlib.Z_FULL_FLUSH) + b"\x03\x00")
            fh.write(struct.pack("<II", crc, (len(HEAD) + mib * BLOCK + len(TAIL)) & 0xFFFFFFFF))
    return path


def zlib_bomb_payload(mib: int, *, complete: bool = False) -> str:
    """Base64 of a zlib stream inflating to ``mib`` MiB of zeros; without ``complete``
    its end (and Adler-32) is left out: the reader must stop long before it."""
    first, unit = _units(15, b"\0")
    stream = first + unit * (mib - 1)
    if complete:
        adler = 1
        for _ in range(mib):
            adler = zlib.adler32(bytes(BLOCK), adler)
        stream += b"\x03\x00" + struct.pack(">I", adler)
    return base64.b64encode(stream).decode()


@pytest.fixture
def peak_memory() -> Iterator[Callable[[], int]]:
    """Peak bytes Python allocated while the test ran (numpy and zlib buffers included)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    yield lambda: tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()


def timed(fn: Callable[[], object], limit: float) -> object:
    """Run ``fn`` in a thread; fail if it has not finished within ``limit`` seconds."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed back to the test below
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit)
    assert not t.is_alive(), f"still running after {limit} s (blocked?)"
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out.get("value")


# ---------------------------------------------------------------- a small, valid self-check


def test_the_bombs_are_valid_streams(tmp_path: Path) -> None:
    path = write_gzip_bomb(tmp_path / "small.mzML.gz", 3)
    data = gzip.decompress(path.read_bytes())
    assert data == HEAD + b" " * (3 * BLOCK) + TAIL
    assert zlib.decompress(base64.b64decode(zlib_bomb_payload(3, complete=True))) == bytes(
        3 * BLOCK
    )
    assert len(read_file(path).chromatograms) == 0  # 3 MiB, under every limit: a document


# ---------------------------------------------------------------- only regular files


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "inj.mzML"
    os.mkfifo(path)
    yield path
    # a thread still blocked in open() for reading is released by a writer opening it
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: nobody is waiting to read, as it should be
        return
    os.close(fd)


def test_a_fifo_is_refused_without_opening_it(fifo: Path) -> None:
    for call in (lambda: read_file(fifo), lambda: file_sha256(fifo)):
        with pytest.raises(NotRegularFileError, match=r"inj.mzML is a named pipe \(FIFO\)"):
            timed(call, 5.0)


def test_a_fifo_is_complete_at_once_so_the_reader_can_refuse_it(fifo: Path) -> None:
    assert timed(lambda: is_complete(fifo), 5.0) is True


def test_a_symlink_to_dev_zero_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.mzML"
    link.symlink_to("/dev/zero")
    for call in (lambda: file_sha256(link), lambda: read_file(link)):
        with pytest.raises(NotRegularFileError, match=r"character device \(through a symbolic"):
            timed(call, 5.0)
    assert timed(lambda: is_complete(link), 5.0) is True


def test_a_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = tmp_path / "real.mzML"
    target.write_text(document(standard_chroms()))
    (tmp_path / "link.mzML").symlink_to(target)
    assert len(read_file(tmp_path / "link.mzML").chromatograms) == 4
    assert file_sha256(tmp_path / "link.mzML") == file_sha256(target)


def test_a_fifo_does_not_stop_the_watcher_handing_on_the_next_file(
    tmp_path: Path, no_thread_leak: None
) -> None:
    folder = tmp_path / "instrument"
    folder.mkdir()
    events: list[WatchEvent] = []
    watcher = FolderWatcher(folder, events.append, settle=0.2, poll=0.1, retry_every=0.2)
    watcher.start()
    try:
        os.mkfifo(folder / "a_pipe.mzML")
        (folder / "b_dev.mzML").symlink_to("/dev/zero")
        time.sleep(0.5)  # both are pending (and checked) before the good file comes
        good = folder / "c_good.mzML"
        good.write_text(document(standard_chroms()))
        assert wait_for(lambda: good in [e.path for e in events if e.kind == "ready"], 10.0)
    finally:
        assert watcher.stop(5.0)
        with contextlib.suppress(OSError):  # release a settle thread a regression left blocked
            os.close(os.open(folder / "a_pipe.mzML", os.O_WRONLY | os.O_NONBLOCK))


# ---------------------------------------------------------------- file size


def test_a_file_over_max_file_mb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.mzML"
    path.write_text(document(standard_chroms()) + " " * (3 << 20))
    small = ReadLimits(max_file_mb=2)
    for call in (lambda: read_file(path, limits=small), lambda: file_sha256(path, small)):
        with pytest.raises(TooLargeError, match=r"big.mzML is 3 MB, over the 2 MB limit.*"
                           r"raise \[read\] max_file_mb"):  # fmt: skip
            call()
    assert read_file(path).chromatograms  # the default limit lets it through
    assert is_complete(path, small) is True  # handed on at once, refused by the reader


# ---------------------------------------------------------------- gzip bombs


@pytest.mark.parametrize("gib", [2, 12])
def test_a_gzip_bomb_is_refused_within_bounded_memory_and_time(
    tmp_path: Path, peak_memory: Callable[[], int], gib: int
) -> None:
    path = write_gzip_bomb(tmp_path / "bomb.mzML.gz", gib * 1024, complete=gib == 2)
    assert path.stat().st_size < gib * 1.1 * BLOCK  # ~1,000:1
    started = time.monotonic()
    with pytest.raises(TooLargeError) as info:
        read_file(path)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "bomb.mzML.gz: the gzip stream inflates more than 100 times" in message
    assert "raise [read] max_ratio if this is a genuine file" in message
    assert peak_memory() < 3 * path.stat().st_size + 40 * BLOCK  # the file, and ~8 MiB out
    assert elapsed < 5.0


def test_a_gzip_bomb_under_a_raised_ratio_stops_at_max_inflated_mb(
    tmp_path: Path, peak_memory: Callable[[], int]
) -> None:
    path = write_gzip_bomb(tmp_path / "bomb.mzML.gz", 2048, complete=False)
    limits = ReadLimits(max_inflated_mb=64, max_ratio=1032)
    with pytest.raises(TooLargeError, match=r"inflates beyond 64 MB \(ratio 1,0\d\d:1\); "
                       r"raise \[read\] max_inflated_mb if this is a genuine file"):  # fmt: skip
        read_file(path, limits=limits)
    assert peak_memory() < 3 * path.stat().st_size + 3 * 64 * BLOCK


def test_a_many_member_gzip_bomb_is_judged_as_a_whole(
    tmp_path: Path, peak_memory: Callable[[], int]
) -> None:
    member = gzip.compress(b" " * (4 * BLOCK), mtime=0)  # each under the grace size
    path = tmp_path / "members.mzML.gz"
    with path.open("wb") as fh:
        fh.write(gzip.compress(HEAD, mtime=0))
        for _ in range(512):  # 2 GiB in all
            fh.write(member)
    with pytest.raises(TooLargeError, match="more than 100 times"):
        read_file(path)
    assert peak_memory() < 3 * path.stat().st_size + 40 * BLOCK


def test_a_genuine_gzip_file_of_high_ratio_but_small_size_reads(tmp_path: Path) -> None:
    doc = document(standard_chroms()).replace("<run ", "<!--" + " " * (4 << 20) + "--><run ")
    path = tmp_path / "padded.mzML.gz"
    path.write_bytes(gzip.compress(doc.encode(), mtime=0))
    assert (4 << 20) / path.stat().st_size > 100  # over max_ratio, under the grace size
    assert len(read_file(path).chromatograms) == 4


def test_the_watcher_hands_a_bomb_on_instead_of_inflating_it(
    tmp_path: Path, peak_memory: Callable[[], int]
) -> None:
    path = write_gzip_bomb(tmp_path / "bomb.mzML.gz", 12 * 1024, complete=False)
    started = time.monotonic()
    assert is_complete(path) is True  # the reader then refuses it (the test above)
    assert time.monotonic() - started < 3.0
    assert peak_memory() < 40 * BLOCK


# ---------------------------------------------------------------- zlib array bombs


def test_a_zlib_array_bomb_is_refused_within_bounded_memory(
    tmp_path: Path, peak_memory: Callable[[], int]
) -> None:
    bomb = array_xml(("MS:1000515", "intensity array"), PEAK, payload=zlib_bomb_payload(3072))
    arrays = array_xml(("MS:1000595", "time array"), RT, unit=("UO:0000031", "minute")) + bomb
    path = tmp_path / "array_bomb.mzML"
    path.write_text(document([chrom_xml("bomb", RT, PEAK, arrays=arrays)]))
    started = time.monotonic()
    with pytest.raises(TooLargeError) as info:
        read_file(path)
    assert "array_bomb.mzML: chromatogram 'bomb' (#0)'s intensity inflates more" in str(info.value)
    assert "raise [read] max_ratio" in str(info.value)
    assert time.monotonic() - started < 5.0
    assert peak_memory() < 4 * path.stat().st_size + 40 * BLOCK


def test_many_small_arrays_share_one_budget(tmp_path: Path) -> None:
    payload = zlib_bomb_payload(2, complete=True)  # 2 MiB each: under the grace size on its own
    chroms = []
    for i in range(20):
        arrays = array_xml(("MS:1000595", "time array"), RT, payload=payload) + array_xml(
            ("MS:1000515", "intensity array"), PEAK, payload=payload
        )
        chroms.append(chrom_xml(f"c{i}", RT, PEAK, arrays=arrays, length=-1))
    path = tmp_path / "many.mzML"
    path.write_text(document(chroms).replace(' defaultArrayLength="-1"', ""))
    with pytest.raises(
        TooLargeError, match=r"'c4' \(#4\)'s time inflates beyond 16 MB \(ratio 1,0\d\d:1\)"
    ):
        read_file(path, limits=ReadLimits(max_inflated_mb=16))
    assert len(read_file(path).chromatograms) == 20  # 80 MiB in all: within the default


@pytest.mark.parametrize(
    "case", ["whole", "trailing", "zeros", "truncated", "corrupt", "empty", "near the limit"]
)
def test_an_array_inflated_in_one_call_is_what_the_bounded_loop_gives(case: str) -> None:
    body = zlib.compress(RT.tobytes())
    data = {
        "trailing": body + b"junk",
        "zeros": zlib.compress(bytes(4 << 20)),  # 1,000:1 and more, still within bounds
        "truncated": body[:-5],
        "corrupt": body[:10] + b"\xff" * 8 + body[18:],
        "empty": b"",
    }.get(case, body)
    limits = ReadLimits(max_inflated_mb=0.1 if case == "near the limit" else 1024.0)
    fast, loop = Inflation("f", limits), Inflation("f", limits)
    whole = fast._inflate_unbounded(data, zlib.MAX_WBITS)  # inflate's first try
    small = None if whole is None else whole[0]
    if whole is not None:
        assert whole[1] == len(data) - (4 if case == "trailing" else 0)  # the stream's end
    try:  # from offset 1 of the same bytes, inflate skips the one call: the bounded loop
        expected = loop.inflate("x", b"\0" + data, start=1)[0]
    except (zlib.error, EOFError):
        expected = None  # the bounded loop says why; the one call must leave it to it
    assert small == expected or small is None
    assert (small is None) == (case in ("truncated", "corrupt", "empty", "near the limit"))
    if small is not None:
        assert (fast.total, fast.total_in) == (loop.total, loop.total_in)


def test_genuine_zeros_compress_far_past_the_ratio_and_still_read(tmp_path: Path) -> None:
    # like the 13C-tracer TIC in the corpus (931:1): a blank trace of exact zeros
    zeros = [0] * 100_000
    rt = [i / 1000 for i in range(100_000)]
    doc = document([chrom_xml("blank", rt, zeros, dtype="<i8")])
    raw = read_file(write_doc(tmp_path, doc))
    assert raw.chromatograms[0].intensity.sum() == 0


def write_doc(tmp_path: Path, doc: str, name: str = "inj.mzML") -> Path:
    path = tmp_path / name
    path.write_text(doc)
    return path


# ---------------------------------------------------------------- trailing whitespace


@pytest.mark.parametrize("padding", [257, 9000, 3 << 20])
@pytest.mark.parametrize("gz", [False, True])
def test_the_watcher_sees_a_document_closed_before_trailing_whitespace(
    tmp_path: Path, padding: int, gz: bool
) -> None:
    data = (document(standard_chroms(), indexed=True) + " \n" * (padding // 2)).encode()
    path = tmp_path / ("inj.mzML.gz" if gz else "inj.mzML")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    assert is_complete(path) is True
    cut = tmp_path / ("cut.mzML.gz" if gz else "cut.mzML")
    data = data.rstrip()[:-20] + b" " * padding  # cut, then padded: still not complete
    cut.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    assert is_complete(cut) is False
    assert len(read_file(path).chromatograms) == 4


def test_errors_are_read_errors() -> None:
    assert issubclass(TooLargeError, ReadError) and issubclass(NotRegularFileError, ReadError)


# ---------------------------------------------------------------- a whole batch, end to end


def test_asnmon_ingest_reads_every_good_file_past_bombs_and_a_fifo(tmp_path: Path) -> None:
    """Before: the 12 GiB bomb crashed ``asnmon ingest`` (MemoryError) and the next file
    was never read; a FIFO or /dev/zero would hang it. Now each is a stored READ_ERROR
    (the bombs saying which limit to raise) and the run goes on."""
    import subprocess
    import sys

    from asnmon.simulate import SimConfig, plan_run, write_injection
    from asnmon.store import Store

    folder = tmp_path / "seq"
    folder.mkdir()
    config = SimConfig(n_samples=1, seed=3)
    good = [write_injection(p, folder / f"{p.stem}.mzML", config) for p in plan_run(config)[:3]]
    write_gzip_bomb(folder / "000_BOMB.mzML.gz", 12 * 1024, complete=False)
    bomb = array_xml(("MS:1000515", "intensity array"), PEAK, payload=zlib_bomb_payload(3072))
    arrays = array_xml(("MS:1000595", "time array"), RT, unit=("UO:0000031", "minute")) + bomb
    (folder / "000_ARRAY_BOMB.mzML").write_text(document([chrom_xml("b", RT, PEAK, arrays=arrays)]))
    os.mkfifo(folder / "000_PIPE.mzML")
    (folder / "000_ZERO_LINK.mzML").symlink_to("/dev/zero")
    db = tmp_path / "batch.duckdb"
    argv = [sys.executable, "-m", "asnmon.cli", "ingest", str(folder), "--db", str(db), "--quiet"]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr
    with Store(db) as store:
        files = set(store.results("seq")["file"].to_list())
        flags = store.flags("seq")
    errors = {r["file"]: r["message"] for r in flags.iter_rows(named=True)
              if r["code"] == "READ_ERROR"}  # fmt: skip
    assert {p.name for p in good} <= files  # every good file was read
    assert "raise [read] max_ratio" in errors["000_BOMB.mzML.gz"]
    assert "intensity inflates more than 100 times" in errors["000_ARRAY_BOMB.mzML"]
    # refused unread, and stored like any unreadable file (a log line alone is silent)
    assert "named pipe (FIFO)" in errors["000_PIPE.mzML"]
    assert "character device (through a symbolic link)" in errors["000_ZERO_LINK.mzML"]
    again = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert again.returncode == 0, again.stderr
    with Store(db) as store:
        rows = store.results("seq")["file"].to_list()
    assert len(rows) == len(set(rows))  # a second pass records nothing twice


def test_hashing_a_vanished_file_raises_the_os_error_callers_expect(tmp_path: Path) -> None:
    # the pipeline reports "cannot read the file" for an OSError (renamed away mid-run)
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "gone.mzML")
    with pytest.raises(ReadError, match="does not exist"):
        read_file(tmp_path / "gone.mzML")
