"""The monitor never stops silently: database faults, a dead or stuck worker.

Real faults only: a really full (small, mounted) filesystem, a database file
with really corrupted blocks, really deleted or swapped, a real ``asnmon run``
process answering ``/healthz`` over HTTP. Each test first shows the fault
(DATABASE PROBLEM on the terminal, an alert, ``/healthz`` 503 with JSON), then
that ingestion resumes by itself and every file is stored exactly once.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from helpers import (
    MONITOR_SETTLE,
    Lines,
    Proc,
    asnmon_run,
    database_held,
    fill,
    small_filesystem,
    stored_once,
    wait_for,
)

from asnmon.assay import Assay
from asnmon.monitor import Monitor
from asnmon.pipeline import RunIngestor
from asnmon.simulate import SimConfig, SimulatedRun, simulate_run
from asnmon.store import Store
from asnmon.users import Actor

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_thread_leak")]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> SimulatedRun:
    return simulate_run(tmp_path_factory.mktemp("sim") / "ASNSIM", SimConfig(n_samples=4))


Make = Callable[..., tuple[Monitor, Lines]]


class _Posts(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Posts.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Posts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    thread.join(5)
    server.server_close()


def alerted(text: str) -> bool:
    return any(text in json.dumps(m) for m in list(_Posts.received))


def healthz(url: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, parsed JSON): a traceback page would fail the JSON parse."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/healthz", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def count(monitor: Monitor) -> int:
    rows = monitor.store.reader().execute("SELECT count(*) FROM injections").fetchall()
    return int(rows[0][0])


def copy_in(paths: tuple[Path, ...] | list[Path], folder: Path) -> list[str]:
    for src in paths:
        shutil.copyfile(src, folder / src.name)
    return [p.name for p in paths]


# ---------------------------------------------------------------- a full disk


def test_disk_full_is_a_database_problem_then_everything_is_stored_once(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path, webhook: str
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    shutil.copyfile(sim.worklist_path, folder / "worklist.csv")
    with small_filesystem(tmp_path / "small", "40m") as fs:
        db = fs / "monitor.duckdb"
        status_file = tmp_path / "monitor.status.json"  # on a disk with room
        monitor, lines = make_monitor(
            folder,
            db=str(db),
            dashboard=True,
            port=0,
            webhook=webhook,
            batch_seconds=0.2,
            status_file=str(status_file),
            heartbeat_every=0.5,
        )
        assert monitor.dashboard_url is not None
        first = copy_in(sim.paths[:4], folder)
        assert wait_for(lambda: count(monitor) == 4, 20)
        filler = fill(fs)
        later = copy_in(sim.paths[4:10], folder)
        assert wait_for(lambda: lines.having("DATABASE PROBLEM"), 20), lines.having("")
        status, body = healthz(monitor.dashboard_url)
        assert status == 503 and body["ok"] is False and body["database"] is False
        assert "No space left" in body["database_problem"]
        assert any(p.startswith("DATABASE PROBLEM") for p in body["problems"])
        assert wait_for(lambda: alerted("DATABASE PROBLEM"), 10)
        began = time.time()

        def file_says_problem() -> bool:  # rewritten on its timer while the database fails
            doc = json.loads(status_file.read_text("utf-8"))
            problems = doc["monitor"].get("problems", [])
            return doc["written_epoch"] > began and any("DATABASE PROBLEM" in x for x in problems)

        assert wait_for(file_says_problem, 10)
        time.sleep(2.0)  # several retries while the disk stays full
        assert monitor.health()["database_failures"] >= 2
        assert monitor.health()["worker"] == "alive"
        assert not monitor.idle()  # files wait: --exit-when-done must not end now

        filler.unlink()  # the disk comes back
        freed = time.monotonic()
        assert wait_for(lambda: count(monitor) == 10, 40), lines.having("")
        recovery = time.monotonic() - freed
        assert wait_for(lambda: lines.having("DATABASE BACK"), 5)
        assert wait_for(lambda: healthz(monitor.dashboard_url or "")[0] == 200, 10)
        assert wait_for(lambda: alerted("DATABASE BACK"), 10)
        order = [
            f
            for (f,) in monitor.store.reader()
            .execute("SELECT file FROM injections ORDER BY injection_id")
            .fetchall()
        ]
        assert order == first + later  # stored in the order they came, none twice
        print(f"recovery after the disk came back: {recovery:.2f} s")
        monitor.stop()
        assert stored_once(db) == dict.fromkeys(first + later, 1)


# ---------------------------------------------------------------- the file itself


def test_deleted_database_file_is_written_back_with_everything_in_it(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path, webhook: str
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "monitor.duckdb"
    monitor, lines = make_monitor(folder, webhook=webhook, batch_seconds=0.2)
    first = copy_in(sim.paths[:5], folder)
    assert wait_for(lambda: count(monitor) == 5, 20)
    flag_id = monitor.store.reader().execute("SELECT min(flag_id) FROM flags").fetchone()
    assert flag_id is not None and flag_id[0] is not None
    monitor.store.acknowledge(
        int(flag_id[0]), Actor("Ana", "analyst"), "seen before the file was deleted"
    )
    db.unlink()
    assert wait_for(lambda: lines.having("was deleted"), 15)
    assert db.exists()
    assert wait_for(lambda: alerted("deleted"), 10)
    later = copy_in(sim.paths[5:8], folder)
    assert wait_for(lambda: count(monitor) == 8, 20)
    monitor.stop()
    assert stored_once(db) == dict.fromkeys(first + later, 1)
    with Store(db, read_only=True) as store:
        acks = store.reader().execute("SELECT by_name FROM acknowledgements").fetchall()
    assert acks == [("Ana",)]


def test_replaced_database_file_is_saved_aside_and_the_new_one_completed(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "monitor.duckdb"
    monitor, lines = make_monitor(folder)
    first = copy_in(sim.paths[:3], folder)
    assert wait_for(lambda: count(monitor) == 3, 20)
    monitor.store.backup(tmp_path / "older.duckdb")  # what someone restores over it
    more = copy_in(sim.paths[3:6], folder)
    assert wait_for(lambda: count(monitor) == 6, 20)
    os.replace(tmp_path / "older.duckdb", db)  # another inode at the same path
    assert wait_for(lambda: lines.having("was replaced"), 15)
    saved = list(tmp_path.glob("monitor.replaced-*.duckdb"))
    assert len(saved) == 1
    assert stored_once(saved[0]) == dict.fromkeys(first + more, 1)  # nothing lost
    assert wait_for(lambda: count(monitor) == 6, 20)  # the new file gets what it lacked
    monitor.stop()
    assert stored_once(db) == dict.fromkeys(first + more, 1)


# ---------------------------------------------------------------- a real process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def corrupt(db: Path, start_fraction: float = 0.3) -> None:
    """Overwrite 64 bytes of every 4 KiB block past ``start_fraction`` of the file."""
    size = db.stat().st_size
    with db.open("r+b") as fh:
        for offset in range(int(size * start_fraction) // 4096 * 4096, size, 4096):
            fh.seek(offset)
            fh.write(os.urandom(64))


def test_corrupted_database_healthz_503_json_then_restored_file_resumes(
    sim: SimulatedRun, tmp_path: Path, assay: Assay
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "live.duckdb"
    first = copy_in(sim.paths[:6], folder)
    with Store(db) as store:
        ingestor = RunIngestor(store, assay, _run_info(folder, assay))
        for name in first:
            ingestor.ingest(folder / name)
        ingestor.flush()
    shutil.copyfile(db, tmp_path / "good.duckdb")
    corrupt(db)
    port = free_port()
    proc = Proc(
        asnmon_run(folder, db, "--settle", str(MONITOR_SETTLE), "--port", str(port)), merged=True
    )
    out = proc.lines
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: proc.said("DATABASE PROBLEM"), 30), out
        assert wait_for(lambda: _answers(url), 20)
        status, body = healthz(url)
        assert status == 503, body
        assert body["ok"] is False and body["database"] is False
        assert "Corrupt database file" in body["database_problem"]
        later = copy_in(sim.paths[6:8], folder)
        time.sleep(1.0)
        assert proc.popen.poll() is None  # still up, still trying
        os.replace(tmp_path / "good.duckdb", db)  # the lab restores last night's copy
        assert wait_for(lambda: proc.said("was replaced"), 30), out
        assert wait_for(lambda: healthz(url)[0] == 200, 40), healthz(url)
        assert wait_for(lambda: proc.said(*later), 30), out
    finally:
        code = proc.stop()
    assert code == 0, out
    assert stored_once(db) == dict.fromkeys(first + later, 1)


def _answers(url: str) -> bool:
    try:
        healthz(url)
    except (OSError, ValueError):
        return False
    return True


def _run_info(folder: Path, assay: Assay) -> Any:
    from asnmon.store import RunInfo

    return RunInfo(folder.name, folder.name, str(folder), None, assay.name, assay.unit)


# ---------------------------------------------------------------- the worker itself


def test_stuck_worker_is_reported_then_recovers(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path
) -> None:
    """A worker blocked on the database (here: its write lock held elsewhere)."""
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor, lines = make_monitor(folder, dashboard=True, port=0, stuck_after=3.0)
    url = monitor.dashboard_url or ""
    copy_in(sim.paths[:2], folder)
    assert wait_for(lambda: count(monitor) == 2, 20)
    assert wait_for(lambda: healthz(url)[0] == 200, 10)
    before = len(lines.having("WORKER BACK"))
    with monitor.store._lock:  # a write that never returns, as a hung disk gives
        copy_in(sim.paths[2:3], folder)
        assert wait_for(lambda: healthz(url)[1].get("worker") == "stuck", 20)
        status, body = healthz(url)
        assert status == 503 and body["ok"] is False
        assert any(p.startswith("WORKER PROBLEM") for p in body["problems"])
        assert wait_for(lambda: lines.having("WORKER PROBLEM"), 5)
    assert wait_for(lambda: len(lines.having("WORKER BACK")) > before, 15)
    assert wait_for(lambda: count(monitor) == 3, 20)
    assert wait_for(lambda: healthz(url)[0] == 200, 10)


def die_at_ingestion(monkeypatch: pytest.MonkeyPatch, n: int) -> dict[str, int]:
    """The ``n``-th ingestion raises SystemExit, as a library calling ``sys.exit`` would;
    the returned count says how many ingestions were started."""
    real = RunIngestor.ingest
    calls = {"n": 0}

    def ingest(self: RunIngestor, path: Path, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == n:
            raise SystemExit("a library called sys.exit")
        return real(self, path, **kw)

    monkeypatch.setattr(RunIngestor, "ingest", ingest)
    return calls


def test_dead_worker_is_restarted_and_reported(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a BaseException can escape the worker's containment; the watchdog revives it.

    No real input raises one (that is the point of the containment), so one
    ingestion is made to raise SystemExit, as a library calling ``sys.exit`` would.
    """
    folder = tmp_path / "seq"
    folder.mkdir()
    monitor, lines = make_monitor(folder)
    die_at_ingestion(monkeypatch, 1)
    copy_in(sim.paths[:1], folder)
    assert wait_for(lambda: lines.having("WORKER PROBLEM"), 15)
    assert "sys.exit" in lines.having("WORKER PROBLEM")[0]
    assert monitor.health()["worker_restarts"] == 1
    copy_in(sim.paths[1:3], folder)
    # the restarted worker ingests the file the dead one held first, then the rest
    assert wait_for(lambda: count(monitor) == 3, 20)
    order = monitor.store.reader().execute("SELECT file FROM injections ORDER BY injection_id")
    assert [f for (f,) in order.fetchall()] == [p.name for p in sim.paths[:3]]


def test_worker_dying_inside_a_backlog_group_loses_none_of_its_files(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files already waiting at start-up are stored in one group; a death in the middle
    rolls the whole group back, so every file of it goes back in line, in order."""
    folder = tmp_path / "seq"
    folder.mkdir()
    copy_in(sim.paths[:4], folder)
    calls = die_at_ingestion(monkeypatch, 2)
    monitor, lines = make_monitor(folder)
    assert wait_for(lambda: lines.having("WORKER PROBLEM"), 15)
    assert wait_for(lambda: count(monitor) == 4, 30), lines.all()[-5:]
    order = monitor.store.reader().execute("SELECT file FROM injections ORDER BY injection_id")
    assert [f for (f,) in order.fetchall()] == [p.name for p in sim.paths[:4]]
    assert calls["n"] >= 6  # the first stored before the death was rolled back, and redone


# ---------------------------------------------------------------- the banner


def _texts(component: Any) -> list[str]:
    """Every string in a Dash component tree."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, list | tuple):
        return [t for c in component for t in _texts(c)]
    children = getattr(component, "children", None)
    return _texts(children) if children is not None else []


def test_banner_says_database_problem_even_when_the_database_cannot_be_read(
    tmp_path: Path, assay: Assay
) -> None:
    from dashboard.app import Views

    store = Store(tmp_path / "x.duckdb")
    problems: list[str] = []
    views = Views(store, assay, health=lambda: {"problems": list(problems)})
    _, _, title = views.banner(None)
    assert "PROBLEM" not in title
    seen = views.tick(None)
    assert seen is not None and views.tick(seen) is None  # nothing changed: no redraw
    problems.append("WORKLIST PROBLEM in run seq (2 file(s) held): row 4, column 'position'")
    assert views.tick(seen) is not None  # a new problem redraws the banner
    children, _, title = views.banner(None)
    assert title.startswith("WORKLIST PROBLEM")
    assert any("row 4" in t for t in _texts(children))
    store.close()  # every read now fails, as with a corrupted or vanished file
    problems.clear()
    children, _, title = views.banner(None)
    assert title.startswith("DATABASE PROBLEM")
    assert any("cannot read" in t for t in _texts(children))
    assert wait_for(lambda: views.tick(seen) is not None, 5)  # past the counter's max age


# ---------------------------------------------------------------- worklist problems


def test_bad_worklist_cell_holds_its_file_loudly_and_a_fix_releases_it(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path, webhook: str
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    good = sim.worklist_path.read_text("utf-8").splitlines()
    header, rows = good[0], good[1:]

    def worklist(bad_row: int | None) -> str:
        lines = [header + ",position"]
        for k, row in enumerate(rows, start=1):
            lines.append(f"{row},{'²' if k == bad_row else k}")
        return "\n".join(lines) + "\n"

    (folder / "worklist.csv").write_text(worklist(bad_row=3), "utf-8")
    monitor, lines = make_monitor(folder, webhook=webhook, batch_seconds=0.2)
    names = copy_in(sim.paths[:5], folder)
    assert wait_for(lambda: lines.having("WORKLIST PROBLEM"), 15)
    assert "row 4" in lines.having("WORKLIST PROBLEM")[0]  # the header is row 1
    assert wait_for(lambda: count(monitor) == 4, 20)  # the other rows go on
    assert wait_for(lambda: lines.having("held"), 10)
    problems = monitor.health()["problems"]
    assert any(p.startswith("WORKLIST PROBLEM") and "1 file(s) held" in p for p in problems)
    assert wait_for(lambda: alerted("WORKLIST PROBLEM"), 10)
    stored = {
        f for (f,) in monitor.store.reader().execute("SELECT file FROM injections").fetchall()
    }
    assert names[2] not in stored  # not stored under a guessed identity

    (folder / "worklist.csv").write_text(worklist(bad_row=None), "utf-8")
    assert wait_for(lambda: count(monitor) == 5, 20)
    assert wait_for(lambda: lines.having("WORKLIST FIXED"), 5)
    assert not monitor.health()["problems"]
    row = (
        monitor.store.reader()
        .execute("SELECT position, sample_id FROM injections WHERE file = ?", [names[2]])
        .fetchone()
    )
    assert row == (3, sim.injections[2].sample.sample_id)


# ---------------------------------------------------------------- order on restart


def _judged(store: Store) -> dict[str, tuple[float | None, str]]:
    """Per file: IS % and the active flag codes, as a clean batch or a restart stored them."""
    rows = store.reader().execute(
        "SELECT i.file, round(i.is_pct, 6), coalesce((SELECT string_agg(f.code, ';' "
        "ORDER BY f.code) FROM flags f WHERE f.injection_id = i.injection_id AND f.active), '') "
        "FROM injections i WHERE NOT i.superseded"
    )
    return {f: (pct, codes) for f, pct, codes in rows.fetchall()}


def test_restart_orders_by_the_files_own_start_time_not_by_file_times(
    make_monitor: Make, sim: SimulatedRun, tmp_path: Path, assay: Assay
) -> None:
    """File times from 1999 and 2031 (a restore, a wrong PC clock) change nothing."""
    import random

    from asnmon.store import RunInfo
    from asnmon.worklist import load_worklist

    folder = tmp_path / "seq"
    folder.mkdir()
    shutil.copyfile(sim.worklist_path, folder / "worklist.csv")
    names = copy_in(sim.paths, folder)
    rng = random.Random(11)
    for name in names:
        when = rng.choice([915_000_000.0, 1_940_000_000.0]) + rng.uniform(0, 3e7)  # 1999 / 2031
        os.utime(folder / name, (when, when))
    with Store(tmp_path / "clean.duckdb") as clean:
        run = RunInfo("seq", "seq", str(folder), None, assay.name, assay.unit)
        ingestor = RunIngestor(clean, assay, run, load_worklist(folder / "worklist.csv"))
        for name in names:  # the clean batch: acquisition order, as the instrument wrote them
            ingestor.ingest(folder / name)
        ingestor.flush()
        expected = _judged(clean)
    monitor, _ = make_monitor(folder)  # a restart: every file is already there
    assert wait_for(lambda: count(monitor) == len(names), 60)
    assert wait_for(monitor.idle, 10)
    order = monitor.store.reader().execute("SELECT file FROM injections ORDER BY injection_id")
    assert [f for (f,) in order.fetchall()] == names
    got = _judged(monitor.store)
    assert got == expected


# ---------------------------------------------------------------- locked at start-up


def test_database_locked_at_start_up_is_waited_for_said_and_alerted(
    sim: SimulatedRun, tmp_path: Path, webhook: str
) -> None:
    """A real second process holds the file; `asnmon run` waits instead of exiting."""
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "live.duckdb"
    Store(db).close()
    names = copy_in(sim.paths[:3], folder)  # already there: the start's reconciliation
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[alerts]\nwebhook = "{webhook}"\nbatch_seconds = 0.2\n', "utf-8")
    port = free_port()  # for the dashboard (and, first, its /healthz)
    url = f"http://127.0.0.1:{port}"
    argv = asnmon_run(folder, db, "--settings", str(settings), "--port", str(port))
    with database_held(db) as holder:
        proc = Proc([*argv, "--settle", str(MONITOR_SETTLE)], merged=True)
        out = proc.lines
        try:
            said = f"is locked by process {holder.pid}"

            def problem() -> list[str]:  # the terminal line (the log's may come first)
                return [x for x in out if "DATABASE PROBLEM" in x and said in x]

            assert wait_for(problem, 30), out
            assert "retries" in problem()[0]
            assert wait_for(lambda: alerted(said), 15), _Posts.received
            # A supervisor asking meanwhile learns why nothing is ingested: 503 JSON, and the
            # status file beside the database says the same (before this: no answer at all).
            waiting = f"database locked by process {holder.pid}, waiting"
            assert wait_for(lambda: proc.said("healthz answers 503"), 30), out
            status_code, body = healthz(url)
            assert status_code == 503 and body["ok"] is False and body["waiting"] == waiting
            assert body["database"] is False and said in body["database_problem"]
            status = db.with_name("live.status.json")
            assert json.loads(status.read_text("utf-8"))["monitor"]["waiting"] == waiting
            time.sleep(1.0)
            assert proc.popen.poll() is None  # waiting, not ended
            assert not proc.said("watching")  # nothing started without its database
            assert holder.stdin is not None
            holder.stdin.close()  # the other process lets go
            assert holder.wait(30) == 0
            assert wait_for(lambda: proc.said("DATABASE BACK"), 40), out
            assert wait_for(lambda: proc.said(*names), 40), out
            # Written as the database opened, before the monitor started (before
            # this, only at the worker's first idle moment: a CI run read "waiting").
            assert "waiting" not in json.loads(status.read_text("utf-8"))["monitor"]
            assert wait_for(lambda: proc.said("dashboard:"), 30), out
            assert wait_for(lambda: healthz(url)[0] == 200, 30)  # the real dashboard took the port
            assert "waiting" not in json.loads(status.read_text("utf-8"))["monitor"]
        finally:
            code = proc.stop()
    assert code == 0, out
    assert stored_once(db) == dict.fromkeys(names, 1)


def test_database_that_is_not_one_is_refused_at_start_up_with_its_name(
    sim: SimulatedRun, tmp_path: Path
) -> None:
    """Waiting cannot fix a file that is not a database: refused, never overwritten."""
    folder = tmp_path / "seq"
    folder.mkdir()
    db = tmp_path / "live.duckdb"
    db.write_bytes(b"id,name\n1,not a database\n" * 1000)
    before = db.read_bytes()
    done = subprocess.run(
        asnmon_run(folder, db, "--no-dashboard"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "is not a DuckDB database" in done.stderr and str(db) in done.stderr
    assert db.read_bytes() == before


def test_started_on_a_full_disk_waits_then_creates_a_whole_database(
    sim: SimulatedRun, tmp_path: Path
) -> None:
    """The soak's first failure: created on a full disk, the database was a 0-byte file
    every later start refused ("not a valid DuckDB database file")."""
    folder = tmp_path / "seq"
    folder.mkdir()
    names = copy_in(sim.paths[:3], folder)
    with small_filesystem(tmp_path / "small", "40m") as fs:
        db = fs / "monitor.duckdb"
        filler = fill(fs)
        argv = asnmon_run(folder, db, "--no-dashboard", "--settle", str(MONITOR_SETTLE))
        proc = Proc(argv, merged=True)
        out = proc.lines
        try:
            said = "cannot create the database"
            assert wait_for(lambda: any(said in x and "No space left" in x for x in out), 30), out
            assert not db.exists()  # no half-made file carries the name
            assert proc.popen.poll() is None
            filler.unlink()
            assert wait_for(lambda: proc.said(*names), 60), out
        finally:
            code = proc.stop()
        assert code == 0, out
        assert stored_once(db) == dict.fromkeys(names, 1)
