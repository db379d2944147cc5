"""A soak with faults injected at random: nothing lost, nothing twice, results unchanged.

    python benchmarks/soak_faults.py --injections 2000

Simulated sequence folders (about 86 injections each) are written one file at
a time into a folder watched by a real ``asnmon run`` process (recursive, native
events), its database on a real small filesystem (a tmpfs). Meanwhile faults
are injected at random moments, each kind in turn:

* ``disk_full``: the filesystem is filled for ``--disk-full-seconds``;
* ``kill``: the monitor is killed (``kill -9``) and started again;
* ``locked``: killed, and another process (a read-only DuckDB connection, as an
  open ``asnmon dashboard --db`` holds) takes the file for ``--lock-seconds``
  before the new monitor starts: it must wait, say so, and go on;
* ``fifo``: a FIFO and a link to ``/dev/zero`` named like injections;
* ``bomb``: a ``.mzML.gz`` inflating to ``--bomb-mb`` MiB of zeros;
* ``overflow``: the monitor stopped (SIGSTOP) while more files arrive than the
  kernel's inotify queue holds.

Passed when every injection is in the database exactly once, its result
(status, concentration, IS %, active flag codes) equals a clean batch
ingestion of the same files in acquisition order, the bomb is one READ_ERROR,
the FIFO and the link are never stored, and the monitor said what happened
(DATABASE PROBLEM, "locked by process N", NOT A REGULAR FILE, FILE EVENTS LOST).
Needs root for the tmpfs mount; prints one JSON line; exit status 0 = passed.
``tests/test_soak.py`` runs a reduced soak (every fault once) with the same code.

Also measured: the write-ahead log (at the end and at most), and the JSON status
file's age at worst while a monitor ran, with the backlog it reported then.
With ``--work`` the soak's database is kept there (``soak.duckdb``) and every
difference is listed in ``differ.json``.

Latest run (README, Benchmarks): 1,520 injections, nothing missing or twice,
every fault said, all results equal to the clean batch (before the watcher's
order fix: 34 of 2,000 IS % values differed).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak_processes import LockHolder, Monitor, StatusWatch, fill, small_filesystem

from asnmon.assay import load_assay
from asnmon.pipeline import RunIngestor, order_paths
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("disk_full", "kill", "locked", "fifo", "bomb", "overflow")


@dataclass(frozen=True, slots=True)
class SoakConfig:
    injections: int = 2000
    faults: int = 12  # in turn through KINDS, at random moments
    seed: int = 1
    disk_full_seconds: float = 30.0
    lock_seconds: float = 10.0
    rate: float = 20.0  # files written per second
    per_run: int = 60  # study samples per sequence folder (about 86 injections with standards)
    bomb_mb: int = 2048  # inflated size of the decompression bomb (about 2 MB on disk)
    fs_size: str = "1g"  # the small filesystem holding the database
    settle: float = 0.3


@dataclass(slots=True)
class SoakResult:
    injections: int
    faults: list[str] = field(default_factory=list)
    exit_code: int | None = None
    monitors_started: int = 0
    seconds_writing: float = 0.0
    seconds_total: float = 0.0
    database_mb: float = 0.0
    wal_mb: float = 0.0  # the write-ahead log left when the last monitor stopped
    wal_mb_max: float = 0.0  # the largest it was seen while the soak ran
    status_age_max_s: float = 0.0  # the JSON status file's age at worst, while a monitor ran
    status_pending_then: int | None = None  # the backlog it reported at that worst moment
    missing: int = 0
    stored_twice: int = 0
    results_differ_from_clean_batch: int = 0
    differ_by_field: dict[str, int] = field(default_factory=dict)  # status, conc, is_pct, flags
    bomb_rows: list[int] = field(default_factory=list)  # READ_ERROR rows per bomb (want 1 each)
    not_files_stored: int = 0  # FIFO and /dev/zero link rows (want 0)
    said: dict[str, bool] = field(default_factory=dict)
    examples: list[list[str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            self.exit_code == 0
            and not (self.missing or self.stored_twice or self.results_differ_from_clean_batch)
            and all(n == 1 for n in self.bomb_rows)
            and self.not_files_stored == 0
            and all(self.said.values())
        )


FIELDS = ("status", "conc", "is_pct", "flags")  # what judged() compares, in its order


def judged(store: Store) -> dict[tuple[str, str], tuple[Any, ...]]:
    rows = store.reader().execute(
        "SELECT i.run_id, i.file, r.status, round(r.conc, 6), round(i.is_pct, 6), "
        "coalesce((SELECT string_agg(f.code, ';' ORDER BY f.code) FROM flags f "
        "WHERE f.injection_id = i.injection_id AND f.active), '') "
        "FROM injections i LEFT JOIN results r ON r.injection_id = i.injection_id AND r.current "
        "WHERE NOT i.superseded"
    )
    return {(r[0].rsplit("/", 1)[-1], r[1]): tuple(r[2:]) for r in rows.fetchall()}


def counts(store: Store) -> dict[tuple[str, str], int]:
    rows = store.reader().execute("SELECT run_id, file, count(*) FROM injections GROUP BY 1, 2")
    return {(r.rsplit("/", 1)[-1], f): n for r, f, n in rows.fetchall()}


def stage(cfg: SoakConfig, staging: Path) -> list[tuple[str, Path]]:
    """Simulated runs, each file renamed ``sNNN_...`` (and its worklist row), so that a
    name on the monitor's terminal tells which run's file it is."""
    staged: list[tuple[str, Path]] = []
    k = 0
    while len(staged) < cfg.injections:
        k += 1
        run_id = f"seq{k:03d}"
        done = staging / run_id / ".staged"  # a run staged before (--work): used again
        if done.exists() and done.read_text("utf-8") == repr(cfg.per_run):
            staged += [(run_id, p) for p in sorted((staging / run_id).glob("s*.mzML"))]
            continue
        run = simulate_run(staging / run_id, SimConfig(n_samples=cfg.per_run, seed=k))
        for path in run.paths:
            renamed = path.with_name(f"s{k:03d}_{path.name}")
            path.rename(renamed)
            staged.append((run_id, renamed))
        with run.worklist_path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        column = rows[0].index("file")
        for row in rows[1:]:
            row[column] = f"s{k:03d}_{row[column]}"
        with run.worklist_path.open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)
        done.write_text(repr(cfg.per_run), "utf-8")
    return staged[: cfg.injections]


def clean_batch(staged: list[tuple[str, Path]], staging: Path, db: Path) -> dict[Any, Any]:
    assay = load_assay()
    with Store(db) as clean:
        for run_id in sorted({r for r, _ in staged}):
            mine = [p for r, p in staged if r == run_id]
            worklist = load_worklist(staging / run_id / "worklist.csv")
            ingestor = RunIngestor(clean, assay, RunInfo(run_id, run_id), worklist)
            for path in order_paths(mine, ingestor.worklist):
                ingestor.ingest(path)
            ingestor.flush()
        return judged(clean)


def wait_for_the_monitor(names: list[str], quiet: float = 90.0) -> None:
    """Until every name was printed, or nothing was printed for ``quiet`` s.

    A file committed by a monitor killed before it printed the file's line is
    never printed (the next monitor finds it stored); the database decides.
    """
    unseen = set(names)
    looked, last_change = 0, time.monotonic()
    while unseen and time.monotonic() - last_change < quiet:
        lines = Monitor.all_lines[looked:]
        looked += len(lines)
        if lines:
            last_change = time.monotonic()
        for line in lines:
            for word in line.split()[1:3]:  # "TIME  NAME ..." or "TIME  skip  NAME: ..."
                unseen.discard(word.rstrip(":"))
        time.sleep(0.5)


def soak(cfg: SoakConfig, work: Path) -> SoakResult:
    """Run the soak in ``work`` (left behind for inspection); see the module docstring."""
    rng = random.Random(cfg.seed)
    Monitor.all_lines, Monitor.started = [], 0
    staged = stage(cfg, work / "staging")
    expected = clean_batch(staged, work / "staging", work / "clean.duckdb")
    result = SoakResult(injections=len(staged))
    plan = sorted(rng.sample(range(1, len(staged)), min(cfg.faults, len(staged) - 1)))
    faults = {i: KINDS[n % len(KINDS)] for n, i in enumerate(plan)}
    watch = work / "watch"
    junk = watch / "junk"  # watched from the start: an overflow's files land in a watched folder
    junk.mkdir(parents=True)
    timers: list[threading.Timer] = []
    holders: list[LockHolder] = []
    bombs: list[tuple[str, str]] = []
    not_files: list[tuple[str, str]] = []
    with small_filesystem(work / "small", cfg.fs_size) as fs:
        db = fs / "soak.duckdb"
        monitor = Monitor(watch, db, cfg.settle)
        monitor.wait_watching()  # the faults begin once the monitor runs (its database exists)
        watch_status = StatusWatch(db, lambda: monitor)
        began = time.monotonic()
        try:
            for i, (run_id, src) in enumerate(staged):
                dest = watch / run_id
                if not dest.exists():
                    dest.mkdir()
                    shutil.copyfile(
                        work / "staging" / run_id / "worklist.csv", dest / "worklist.csv"
                    )
                fault = faults.get(i)
                if fault == "disk_full":
                    filler = fill(fs)
                    timer = threading.Timer(cfg.disk_full_seconds, filler.unlink)
                    timer.start()
                    timers.append(timer)
                elif fault in ("kill", "locked"):
                    monitor.end(signal.SIGKILL)
                    if fault == "locked":
                        holders.append(LockHolder(db, cfg.lock_seconds))
                        result.said[holders[-1].said] = False
                    monitor = Monitor(watch, db, cfg.settle)
                elif fault == "fifo":
                    os.mkfifo(dest / f"fifo_{i}.mzML")
                    (dest / f"zero_{i}.mzML").symlink_to("/dev/zero")
                    not_files += [(run_id, f"fifo_{i}.mzML"), (run_id, f"zero_{i}.mzML")]
                    result.said["NOT A REGULAR FILE"] = False
                elif fault == "bomb":
                    tmp = dest / f".bomb_{i}.part"
                    with gzip.open(tmp, "wb", compresslevel=9) as gz:
                        for _ in range(cfg.bomb_mb):
                            gz.write(b"\0" * (1 << 20))
                    os.replace(tmp, dest / f"bomb_{i}.mzML.gz")
                    bombs.append((run_id, f"bomb_{i}.mzML.gz"))
                elif fault == "overflow":
                    monitor.wait_watching()  # a monitor still starting has no queue to overflow
                    monitor.proc.send_signal(signal.SIGSTOP)
                    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
                    for j in range(limit // 2 + 1000):  # created + closed: two events each
                        (junk / f"n{i}_{j}.txt").touch()
                    result.said["FILE EVENTS LOST"] = False
                tmp = dest / f".{src.name}.part"
                shutil.copyfile(src, tmp)
                os.replace(tmp, dest / src.name)
                if fault == "overflow":
                    monitor.proc.send_signal(signal.SIGCONT)
                if fault is not None:
                    result.faults.append(fault)
                    Monitor.all_lines.append(f"--- soak: {fault} before {src.name}\n")
                time.sleep(1.0 / cfg.rate)
            result.seconds_writing = round(time.monotonic() - began, 1)
            wait_for_the_monitor([src.name for _, src in staged] + [n for _, n in bombs])
            result.exit_code = monitor.end()
        finally:
            watch_status.stop()
            monitor.end(signal.SIGKILL)
            for timer in timers:
                timer.join()
            for holder in holders:
                holder.done()
        result.seconds_total = round(time.monotonic() - began, 1)
        (work / "monitor-output.txt").write_text("".join(Monitor.all_lines), "utf-8")
        result.monitors_started = Monitor.started
        if result.faults.count("disk_full"):
            result.said["DATABASE PROBLEM"] = False  # its DATABASE BACK may come from a successor
        for text in result.said:
            result.said[text] = Monitor.seen(text)
        result.database_mb = round(db.stat().st_size / 2**20, 1)
        wal = db.with_name(db.name + ".wal")
        result.wal_mb = round(wal.stat().st_size / 2**20, 1) if wal.exists() else 0.0
        result.wal_mb_max = round(watch_status.wal_max / 2**20, 1)
        result.status_age_max_s = round(watch_status.worst[0], 1)
        result.status_pending_then = watch_status.worst[1]
        for kept in (db, wal):  # for inspection: the tmpfs goes with the soak
            if kept.exists():
                shutil.copyfile(kept, work / kept.name)
        with Store(db, read_only=True) as store:
            got_counts = counts(store)
            got = judged(store)
    keys = [(r, p.name) for r, p in staged]
    missing = [k for k in keys if got_counts.get(k, 0) == 0]
    twice = [k for k in keys if got_counts.get(k, 0) > 1]
    differ = [k for k in keys if k in got and got[k] != expected.get(k)]
    result.missing, result.stored_twice = len(missing), len(twice)
    result.results_differ_from_clean_batch = len(differ)
    result.differ_by_field = {
        name: sum(got[k][i] != (expected.get(k) or (None,) * len(FIELDS))[i] for k in differ)
        for i, name in enumerate(FIELDS)
    }
    result.bomb_rows = [got_counts.get(k, 0) for k in bombs]
    result.not_files_stored = sum(got_counts.get(k, 0) for k in not_files)
    result.examples = [
        [*k, "clean", repr(expected.get(k)), "soak", repr(got.get(k))]
        for k in (missing + twice + differ)[:5]
    ]
    every = [[*k, expected.get(k), got.get(k)] for k in differ]
    (work / "differ.json").write_text(json.dumps(every, default=str), "utf-8")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    defaults = SoakConfig()
    for name, value in asdict(defaults).items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--work", type=Path, help="work folder (kept; its staged runs are reused)")
    args = ap.parse_args()
    cfg = SoakConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    work = args.work or Path(tempfile.mkdtemp(prefix="asnmon-soak-"))
    shutil.rmtree(work / "watch", ignore_errors=True)  # what an earlier soak in --work left
    for name in ("clean.duckdb", "clean.duckdb.wal", "soak.duckdb", "soak.duckdb.wal"):
        (work / name).unlink(missing_ok=True)
    try:
        result = soak(cfg, work)
    finally:
        if not (args.keep or args.work):
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({**asdict(result), "passed": result.passed}))
    sys.exit(0 if result.passed else 1)


if __name__ == "__main__":
    main()
