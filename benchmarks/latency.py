"""Latency from an injection's last byte to its committed result, and a memory soak.

    python benchmarks/latency.py [--n 200] [--soak 10000] [--settle 0.5]

Latency: the simulator writes N injections in real time (each progressively
over ``--write-seconds``, one every ``--interval``) into a watched folder.
Per file, t0 = ``time.time()`` in simulate_run's ``on_written`` callback, right
after the last chunk is written, fsynced and closed; t1 = ``time.time()`` when
the monitor's ``out`` callback receives the file's live line. The worker calls
``out`` only after ``RunIngestor.ingest`` returned, i.e. after the injection's
transaction committed, so t1 - t0 is "last byte -> result committed" plus the
microseconds of formatting one line. (Polling the store is not an option:
DuckDB allows one process, and a second connection in this process would
contend with the writer and measure itself.) Native events and the polling
observer (poll 0.5 s) are measured in turn; the target with native events is
p95 <= settle + 0.5 s.

Soak: SOAK injections as fast as the monitor takes them (the writer keeps at
most a small backlog), in sequence folders of 100 files, with unique bytes per
copy (a different startTimeStamp, same length), sampling the process RSS before
the first file, at start (after 10 %, once imports and caches are warm),
middle and end. Every tenth sequence folder, the one ten folders back is
deleted, as a lab archives old runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from asnmon.assay import load_assay
from asnmon.monitor import Monitor
from asnmon.settings import Settings
from asnmon.simulate import SimConfig, injection_bytes, plan_run, simulate_run


class Committed:
    """The monitor's ``out``: stamps the first line naming each awaited file."""

    def __init__(self, names: Callable[[], list[str]]) -> None:
        self.at: dict[str, float] = {}
        self._names = names
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        now = time.time()
        if " skip " in line or ": INCOMPLETE" in line or ": CONVERT_ERROR" in line:
            return
        token = line[10:].split(" ", 1)[0] if len(line) > 10 else ""
        if token.endswith(".mzML"):
            with self._lock:
                self.at.setdefault(token, now)

    def count(self) -> int:
        with self._lock:
            return len(self.at)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(n: int, poll: float, settle: float, interval: float, write_seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="asnmon-latency-") as tmp:
        folder = Path(tmp) / "seq"
        folder.mkdir()
        written: dict[str, float] = {}
        stop = threading.Event()

        def on_written(path: Path) -> None:
            written[path.name] = time.time()
            if len(written) >= n:
                stop.set()

        out = Committed(lambda: list(written))
        settings = Settings(folder=str(folder), db=str(Path(tmp) / "lat.duckdb"), settle=settle,
                            poll=poll, dashboard=False)  # fmt: skip
        monitor = Monitor(settings, load_assay(), out=out)
        monitor.start()
        try:
            config = SimConfig(n_samples=n, seed=11)
            simulate_run(folder, config, interval=interval, write_seconds=write_seconds,
                         on_written=on_written, stop=stop)  # fmt: skip
            deadline = time.monotonic() + 30 + 2 * settle + 2 * poll
            while out.count() < len(written) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            monitor.stop()
        lat = [out.at[f] - t for f, t in written.items() if f in out.at]
        return {
            "observer": f"polling {poll:g} s" if poll else "native",
            "n": len(written),
            "missing": len(written) - len(lat),
            "p50": statistics.median(lat),
            "p95": percentile(lat, 0.95),
            "max": max(lat),
        }


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def soak(total: int, settle: float, per_run: int = 100, backlog: int = 20) -> None:
    templates: list[bytes] = []
    config = SimConfig(n_samples=4, seed=5)
    stamp = "2024-05-06T08:00:00Z"
    for inj in plan_run(config)[:30]:
        data = injection_bytes(inj, config, started_at=stamp)
        assert data.count(stamp.encode()) >= 1
        templates.append(data)
    base = datetime(2030, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="asnmon-soak-") as tmp:
        root = Path(tmp) / "instrument"
        root.mkdir()
        out = Committed(list)
        settings = Settings(folder=str(root), db=str(Path(tmp) / "soak.duckdb"), settle=settle,
                            recursive=True, dashboard=False)  # fmt: skip
        monitor = Monitor(settings, load_assay(), out=out)
        monitor.start()
        samples: list[tuple[int, float]] = [(0, rss_mb())]
        began = time.monotonic()
        try:
            for i in range(total):
                while i - out.count() > backlog:
                    time.sleep(0.005)
                run_dir = root / f"seq{i // per_run:04d}"
                if i % per_run == 0:
                    run_dir.mkdir()
                    if (i // per_run) % 10 == 0:
                        shutil.rmtree(root / f"seq{i // per_run - 10:04d}", ignore_errors=True)
                unique = (base + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
                data = templates[i % len(templates)].replace(stamp.encode(), unique.encode())
                tmp_name = run_dir / f".{i:06d}.part"
                tmp_name.write_bytes(data)
                os.replace(tmp_name, run_dir / f"{i:06d}_{i % len(templates) + 1:02d}.mzML")
                if i + 1 in (max(1, total // 10), total // 2, total):
                    while out.count() < i + 1 and time.monotonic() - began < 3600:
                        time.sleep(0.05)
                    samples.append((i + 1, rss_mb()))
        finally:
            monitor.stop()
        seconds = time.monotonic() - began
    rate = total / seconds
    print(f"\nsoak: {total} injections in {seconds:.0f} s ({rate:.1f}/s), settle {settle:g} s")
    labels = ("before", "start", "middle", "end")
    for label, (count, mb) in zip(labels, samples, strict=True):
        print(f"  RSS at {label:<6} ({count:>6} ingested): {mb:8.1f} MiB")
    growth = samples[-1][1] - samples[1][1]
    print(f"  start -> end: {growth:+.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200, help="injections per observer (0: skip)")
    p.add_argument("--soak", type=int, default=0, help="soak with this many injections")
    p.add_argument("--settle", type=float, default=0.5)
    p.add_argument("--interval", type=float, default=0.3)
    p.add_argument("--write-seconds", type=float, default=0.2)
    p.add_argument("--poll", type=float, default=0.5, help="the polling observer's interval")
    a = p.parse_args(argv)
    if a.n:
        rows = [measure(a.n, poll, a.settle, a.interval, a.write_seconds) for poll in (0.0, a.poll)]
        print(f"\nlast byte -> result committed; settle {a.settle:g} s, interval {a.interval:g} s, "
              f"write {a.write_seconds:g} s per file")  # fmt: skip
        print(f"{'observer':<14} {'n':>5} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'missing':>8}")
        for r in rows:
            print(f"{r['observer']:<14} {r['n']:>5} {r['p50']:7.3f} {r['p95']:7.3f} "
                  f"{r['max']:7.3f} {r['missing']:>8}")  # fmt: skip
        native = rows[0]
        verdict = "met" if native["p95"] <= a.settle + 0.5 else "NOT met"
        print(f"target native p95 <= settle + 0.5 s = {a.settle + 0.5:g} s: {verdict}")
    if a.soak:
        soak(a.soak, min(a.settle, 0.1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
