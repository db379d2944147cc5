"""What the sign-off pane pays to show "audit trail intact" on every redraw.

    python benchmarks/audit_verify.py [--events 10000] [--repeat 20]

A simulated run with a collapsing IS is ingested into a real DuckDB file and its
flags are acknowledged again and again (``acknowledge_many``, one audit event per flag)
until the trail holds EVENTS events. Then, in the same run:

- the full walk, ``Store.verify_audit()``: what ``asnmon audit verify`` and the
  report do, and what the pane did on every redraw before it kept a checkpoint;
- the pane's check (``dashboard.signoff.ChainWatch``): its first call (a full
  walk), a redraw with nothing new, and a redraw after one new event.

Printed as medians in ms and as the ratio of the full walk to the pane's redraw.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # dashboard.py here
sys.path.insert(0, str(HERE.parent))

from asnmon.assay import load_assay  # noqa: E402
from asnmon.pipeline import RunIngestor, ingest_paths  # noqa: E402
from asnmon.simulate import Faults, SimConfig, plan_run, simulate_run  # noqa: E402
from asnmon.store import RunInfo, Store  # noqa: E402
from asnmon.users import Actor  # noqa: E402
from asnmon.worklist import load_worklist  # noqa: E402


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in ms."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def fill(store: Store, work: Path, events: int) -> list[int]:
    """A real run with fail flags, acknowledged until the trail holds ``events`` events."""
    assay = load_assay()
    # a collapsing IS: most injections raise a flag, so one acknowledgement records many events
    config = replace(SimConfig(n_samples=40), faults=Faults(is_drift=(8, 6.0)))
    n = len(plan_run(config))
    sim = simulate_run(work / "run", config)
    ingestor = RunIngestor(
        store,
        assay,
        RunInfo("run", "run", folder=str(sim.out_dir), planned=n),
        worklist=load_worklist(sim.worklist_path),
    )
    ingest_paths(ingestor, sim.paths)
    ingestor.flush()
    flags = [int(f) for f in store.flags("run", active_only=False)["flag_id"].to_list()]
    print(f"{n} injections, {len(flags)} flags", flush=True)
    if not flags:
        raise SystemExit("the simulated run raised no flags to acknowledge")
    ana = Actor("ana", "analyst")
    while store.audit_head()[0] < events:
        left = events - store.audit_head()[0]
        store.acknowledge_many(flags[:left], ana, "seen", again=True)
    return flags


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="asnmon-audit-") as tmp:
        store = Store(Path(tmp) / "db.duckdb")
        print(f"filling a trail of {args.events} events ...", flush=True)
        flags = fill(store, Path(tmp), args.events)
        count = store.audit_head()[0]
        full_repeat = max(3, args.repeat // 4)
        full = timed(lambda: store.verify_audit(), full_repeat)
        print(f"events in the trail:               {count}")
        print(f"full walk (verify_audit):          {full:8.1f} ms  (median of {full_repeat})")
        try:
            from dashboard.signoff import ChainWatch
        except ImportError:  # a checkout from before the checkpoint: the pane was the full walk
            print("pane redraw:                       the full walk (no ChainWatch here)")
            store.close()
            return 0
        watch = ChainWatch(store)
        start = time.perf_counter()
        watch.check()
        first = 1000 * (time.perf_counter() - start)
        steady = timed(watch.check, args.repeat)
        ana = Actor("ana", "analyst")

        def one_more() -> None:
            store.acknowledge(flags[0], ana, "again")

        def after_one() -> float:
            one_more()
            start = time.perf_counter()
            watch.check()
            return 1000 * (time.perf_counter() - start)

        grown = statistics.median(after_one() for _ in range(args.repeat))
        assert watch.check().problems == (), "the benchmark's trail should be intact"
        print(f"pane, first redraw (full walk):    {first:8.1f} ms")
        print(f"pane, redraw, nothing new:         {steady:8.1f} ms  (median of {args.repeat})")
        print(f"pane, redraw after one new event:  {grown:8.1f} ms  (median of {args.repeat})")
        print(f"full walk / redraw, nothing new:   {full / max(steady, 1e-6):8.0f} x")
        print(f"full walk / redraw, one new event: {full / max(grown, 1e-6):8.0f} x")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
