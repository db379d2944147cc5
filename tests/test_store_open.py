"""Opening the database: created whole or not at all; a stranger refused; a lock named.

Real files only: a real small filesystem (tmpfs) really full, a real second
process holding the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers import database_held, fill, small_filesystem

from asnmon.errors import DatabaseLockedError, NotADatabaseError, StoreError
from asnmon.store import RunInfo, Store


def test_creating_on_a_full_disk_leaves_no_file_and_works_once_there_is_room(
    tmp_path: Path,
) -> None:
    """What left the soak's 0-byte soak.duckdb: DuckDB's header write failing on ENOSPC."""
    with small_filesystem(tmp_path / "small", "8m") as fs:
        db = fs / "monitor.duckdb"
        filler = fill(fs)
        with pytest.raises(StoreError, match="No space left"):
            Store(db)
        assert sorted(p.name for p in fs.iterdir()) == ["filler"]  # no half-made file
        filler.unlink()
        with Store(db) as store:
            store.ensure_run(RunInfo("seq", "seq"))
        with Store(db, read_only=True) as store:
            assert store.runs()["run_id"].to_list() == ["seq"]


def test_an_empty_file_left_by_a_failed_creation_is_made_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "monitor.duckdb"
    db.touch()  # what a failed creation by DuckDB itself (or an older asnmon) leaves
    with pytest.raises(NotADatabaseError, match="empty"):
        Store(db, read_only=True)  # a reader never creates
    with caplog.at_level(logging.WARNING, logger="asnmon.store"):
        store = Store(db)
    with store:
        store.ensure_run(RunInfo("seq", "seq"))
        assert store.schema_version() > 0
    assert any("created anew" in r.getMessage() for r in caplog.records)


def test_an_empty_file_beside_a_write_ahead_log_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "monitor.duckdb"
    with Store(db) as store:
        store.ensure_run(RunInfo("seq", "seq"))
    wal = db.with_name(db.name + ".wal")
    wal.write_bytes(b"\1" * 4096)  # a log with something in it: its database was emptied
    db.write_bytes(b"")
    with pytest.raises(NotADatabaseError, match="write-ahead log"):
        Store(db)
    assert db.stat().st_size == 0 and wal.read_bytes() == b"\1" * 4096


@pytest.mark.parametrize(
    "content",
    [b"id,name\n1,a\n" * 500, b"SQLite format 3\0" + b"\0" * 4080, b"x"],
    ids=["csv", "sqlite", "one byte"],
)
def test_a_file_that_is_not_a_database_is_refused_by_name_and_never_written(
    tmp_path: Path, content: bytes
) -> None:
    db = tmp_path / "monitor.duckdb"
    db.write_bytes(content)
    for read_only in (False, True):
        with pytest.raises(NotADatabaseError, match="is not a DuckDB database") as err:
            Store(db, read_only=read_only)
        assert str(db) in str(err.value)
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monitor.duckdb"]


def test_a_folder_at_the_database_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotADatabaseError, match="is a folder"):
        Store(tmp_path)


def test_a_file_held_by_another_process_names_that_process(tmp_path: Path) -> None:
    db = tmp_path / "monitor.duckdb"
    Store(db).close()
    with database_held(db) as holder:
        with pytest.raises(DatabaseLockedError, match=f"locked by process {holder.pid}") as err:
            Store(db)
        assert err.value.pid == holder.pid
    Store(db).close()  # let go: it opens


def test_reopening_a_vanished_file_does_not_make_an_empty_one(tmp_path: Path) -> None:
    """After a fatal error the monitor reopens its file; gone, it must not be replaced by
    an empty database that hides the loss."""
    db = tmp_path / "monitor.duckdb"
    store = Store(db)
    store.ensure_run(RunInfo("seq", "seq"))
    db.unlink()
    with pytest.raises(StoreError, match="no such database"):
        store.reconnect()
    assert not db.exists()


def test_a_half_read_result_in_an_idle_thread_does_not_block_checkpoints(tmp_path: Path) -> None:
    """The soak's write-ahead log grew to 36 MB: a ``fetchone()`` left in a thread that
    then idles (a dashboard thread's ``last_change``, the opening thread's schema
    check) kept its transaction open, and DuckDB declined every checkpoint."""
    import threading

    store = Store(tmp_path / "lab.duckdb")  # opened here; written from another thread
    read, hold = threading.Event(), threading.Event()

    def dashboard_thread() -> None:
        store.last_change()  # one row, read with fetchone(); then the thread idles
        read.set()
        hold.wait(30)

    def worker() -> None:
        for k in range(50):
            store.ensure_run(RunInfo(f"run{k}", f"run{k}"))
            store.set_status({"k": k})
        wal.append(store.wal_bytes())
        done.append(store.checkpoint())
        wal.append(store.wal_bytes())

    wal: list[int] = []
    done: list[bool] = []
    idle = threading.Thread(target=dashboard_thread)
    idle.start()
    try:
        assert read.wait(30)
        writer = threading.Thread(target=worker)
        writer.start()
        writer.join(60)
    finally:
        hold.set()
        idle.join(30)
        store.close()
    assert wal[0] > 0
    assert done == [True] and wal[1] == 0
