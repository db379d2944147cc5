"""Dashboard speed with a big run: each refresh callback's server time, and first page load.

Fills a database with ~2,000 injections quickly: a small simulated run is
processed once through the real pipeline, then its outcomes are recorded again
and again under new file names (``RunIngestor.record``: store, QC, verdict),
so the database looks like one long overnight run.

    python benchmarks/dashboard.py [--injections 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would
# shadow the ``dashboard`` package: put the project root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
sys.path.append(str(_HERE))  # last: its siblings (big_run), never before the package

from big_run import fill_run  # noqa: E402

from asnmon.assay import load_assay  # noqa: E402


def timed(fn: Callable[[], object], repeat: int = 5) -> tuple[float, float, float]:
    """(first call, median and max of the next ``repeat``) in ms.

    The first call in a process pays one-time costs (imports, polars' first use of an
    expression); a monitor pays them once at start, so they are shown apart.
    """
    times = []
    for _ in range(repeat + 1):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times[0], statistics.median(times[1:]), max(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--injections", type=int, default=2000)
    args = parser.parse_args()
    from dashboard.app import create_app
    from dashboard.server import serve

    with tempfile.TemporaryDirectory(prefix="asnmon-bench-") as tmp:
        t = time.perf_counter()
        store, _, _ = fill_run(Path(tmp) / "big.duckdb", args.injections, Path(tmp))
        print(
            f"filled {store.runs()['injections'][0]} injections in {time.perf_counter() - t:.1f} s"
        )
        app = create_app(store, load_assay())
        srv = serve(app, port=0)  # as in production: serving starts before any refresh
        views = app.views  # type: ignore[attr-defined]
        run = "big"
        seen = views.tick(None)
        inj = int(store.results(run)["injection_id"][-1])

        def fresh(fn: Callable[[], object]) -> Callable[[], object]:
            """Each call after a change: the snapshot must be rebuilt (worst case)."""

            def go() -> object:
                views.cache._snaps.clear()
                return fn()

            return go

        cases: list[tuple[str, Callable[[], object]]] = [
            ("tick, nothing changed", lambda: views.tick(seen)),
            ("snapshot rebuild (results + flags)", fresh(lambda: views.snapshot(run))),
            ("banner", fresh(lambda: views.banner(run))),
            ("run plots, full redraw", fresh(lambda: views.run_plots(run, None, None))),
            (
                "run plots, append 1 (extendData)",
                lambda: views.run_plots(
                    run,
                    {
                        "run": run,
                        "last_id": inj - 1,
                        "ref": views.snapshot(run).reference,
                        "drift": 0,
                        "kiosk": False,
                    },
                    {"kinds": ["injection"]},
                ),
            ),
            ("table page", fresh(lambda: views.table(run, None, None, 0, 15))),
            ("flags panel", fresh(lambda: views.flag_cards(run))),
            ("chromatograms + reference", lambda: views.chromatograms(inj, run)),
            ("calibration", lambda: views.calibration(run)),
            ("Levey-Jennings", fresh(lambda: views.levey_jennings(run))),
            ("pools", fresh(lambda: views.pools(run))),
        ]
        print(f"{'callback':<40} {'first ms':>9} {'median ms':>10} {'max ms':>8}")
        for name, fn in cases:
            first, med, worst = timed(fn)
            print(f"{name:<40} {first:>9.1f} {med:>10.1f} {worst:>8.1f}")

        with srv:
            for path in ("", "_dash-layout", "_dash-dependencies"):
                t = time.perf_counter()
                with urllib.request.urlopen(srv.url + path, timeout=30) as resp:
                    size = len(resp.read())
                print(
                    f"first GET /{path:<20} {1000 * (time.perf_counter() - t):8.1f} ms"
                    f"  {size / 1024:7.1f} KiB"
                )
        store.close()


if __name__ == "__main__":
    main()
