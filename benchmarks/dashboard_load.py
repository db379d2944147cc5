"""Dashboard under load: N browser-like pages polling a real server every second.

A real waitress server over a real DuckDB of ~2,000 injections; a writer thread
records a new injection every few seconds, as the instrument does. Each simulated
page does what the Dash page does: the 1 s tick POST (``changed.data``); when it
reports a change, the view callbacks that depend on it, in parallel (at most 6
requests at once per page, the browser's limit per host), then the callbacks
their new output triggers (table rows, flag buttons). Payloads are built from the
app's own callback map and the values the page holds, as the renderer does.

Reported per configuration: ticks/s per page (1.0 = the refresh is held), p50/p95
of the tick, of one view refresh (tick answer -> last view answer) and of change
-> screen (writer's commit -> the page's last view answer).

    python benchmarks/dashboard_load.py [--clients 20] [--seconds 40] [--compare]

``--compare`` first runs the dashboard as it was (no shared view cache, 6 threads,
a database query per tick) on the same database, then as it is.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its name would
# shadow the ``dashboard`` package: put the project root there instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
sys.path.append(str(_HERE))  # last: its siblings (big_run), never before the package

from big_run import fill_run  # noqa: E402

from asnmon.assay import load_assay  # noqa: E402
from asnmon.pipeline import RunIngestor  # noqa: E402
from asnmon.records import Outcome  # noqa: E402
from asnmon.store import Store  # noqa: E402
from dashboard.server import THREADS  # noqa: E402

CALLBACK = "/_dash-update-component"
PER_PAGE = 6  # concurrent requests a browser makes to one host
# pattern-matched buttons, and the output whose new children re-draw them
CONTAINERS = {"inj-row": "injections.children", "ack": "flag-list.children"}


class Writer(threading.Thread):
    """The instrument: one more sample injection every ``every`` s; commit times kept."""

    def __init__(self, ing: RunIngestor, outcomes: list[Outcome], start: int, every: float):
        super().__init__(daemon=True, name="bench-writer")
        self.ing, self.outcomes, self.k, self.every = ing, outcomes, start, every
        self.stop = threading.Event()
        self.commits: list[tuple[float, int]] = []  # (time, change counter after)

    def run(self) -> None:
        while not self.stop.wait(self.every):
            o = self.outcomes[self.k % len(self.outcomes)]
            name = f"{self.k + 1:05d}_{o.path.name}"
            self.ing.record(
                replace(o, path=o.path.with_name(name), sha256=f"w{self.k:063d}"),
                acquired_order=float(self.k),
            )
            self.commits.append((time.perf_counter(), self.ing.store.last_change()))
            self.k += 1


# ---------------------------------------------------------------- one simulated page


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every component (as JSON) in a Dash response tree."""
    if isinstance(node, dict):
        if "props" in node and "type" in node:
            yield node
            yield from _walk(node["props"].get("children"))
        else:
            for v in node.values():
                yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _initial_props(layout: Any) -> dict[str, Any]:
    """``id.prop`` -> value, as the page holds it after loading the layout."""
    out: dict[str, Any] = {}
    stack = [layout]
    while stack:
        c = stack.pop()
        if isinstance(c, list | tuple):
            stack.extend(c)
            continue
        cid = getattr(c, "id", None)
        if isinstance(cid, str):
            for prop in c._prop_names:
                out[f"{cid}.{prop}"] = getattr(c, prop, None)
        children = getattr(c, "children", None)
        if children is not None and not isinstance(children, str):
            stack.append(children)
    return out


@dataclass
class Stats:
    ticks: list[float] = field(default_factory=list)
    views: list[float] = field(default_factory=list)  # tick answer -> last view answer
    screen: list[tuple[float, int]] = field(default_factory=list)  # (done at, seq shown)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Page:
    """One browser tab: its component values, its tick, its view refreshes."""

    def __init__(self, port: int, cmap: dict[str, Any], props: dict[str, Any], pool: Any):
        self.port = port
        self.cmap = cmap
        self.props = dict(props)
        self.pool = pool
        self.slots = threading.Semaphore(PER_PAGE)
        self.pattern_ids: dict[str, list[dict[str, Any]]] = {"inj-row": [], "ack": []}
        self.headers: dict[str, str] = {"Content-Type": "application/json"}
        self.idle: list[http.client.HTTPConnection] = []  # list.pop/append are atomic

    def _post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """One request on one of the page's (at most 6) kept-alive connections."""
        with self.slots:
            try:
                conn = self.idle.pop()
            except IndexError:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                conn.request("POST", CALLBACK, json.dumps(body).encode(), self.headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                raise
            self.idle.append(conn)
        return resp.status, (json.loads(data) if resp.status == 200 and data else None)

    def payload(self, output: str, changed: list[str]) -> dict[str, Any]:
        cb = self.cmap[output]

        def dep(d: dict[str, str]) -> Any:
            if d["id"].startswith("{"):
                kind = json.loads(d["id"])["type"]
                return [
                    {"id": i, "property": d["property"], "value": 0}
                    for i in self.pattern_ids.get(kind, [])
                ]
            key = f"{d['id']}.{d['property']}"
            return {"id": d["id"], "property": d["property"], "value": self.props.get(key)}

        outs = (
            [
                dict(zip(("id", "property"), o.split("."), strict=True))
                for o in output[2:-2].split("...")
            ]
            if output.startswith("..")
            else dict(zip(("id", "property"), output.split("."), strict=True))
        )
        return {
            "output": output,
            "outputs": outs,
            "inputs": [dep(d) for d in cb["inputs"]],
            "changedPropIds": changed,
            "state": [dep(d) for d in cb["state"]],
        }

    def _apply(self, data: dict[str, Any] | None) -> set[str]:
        """Store a response's outputs; the ``id.prop`` keys that changed."""
        changed: set[str] = set()
        for cid, props in ((data or {}).get("response") or {}).items():
            for prop, value in props.items():
                key = f"{cid}.{prop}"
                self.props[key] = value
                changed.add(key)
                for kind, container in CONTAINERS.items():
                    if key == container:
                        self.pattern_ids[kind] = [
                            c["props"]["id"]
                            for c in _walk(value)
                            if isinstance(c["props"].get("id"), dict)
                            and c["props"]["id"].get("type") == kind
                        ]
        return changed

    def _wave(self, trigger: set[str]) -> set[str]:
        """Every server callback with an input in ``trigger``, in parallel."""
        calls = []
        for output, cb in self.cmap.items():
            if output == "changed.data" or not callable(cb.get("callback")):
                continue
            hit = sorted({f"{d['id']}.{d['property']}" for d in cb["inputs"]} & trigger)
            # a re-drawn list of buttons fires the callback on its pattern ids
            redrawn = any(
                d["id"].startswith("{") and CONTAINERS[json.loads(d["id"])["type"]] in trigger
                for d in cb["inputs"]
            )
            if hit or redrawn:
                calls.append((output, hit))
        futures = [self.pool.submit(self._post, self.payload(o, c)) for o, c in calls]
        changed: set[str] = set()
        for f in futures:
            status, data = f.result()
            if status not in (200, 204):
                raise RuntimeError(f"HTTP {status}")
            changed |= self._apply(data)
        return changed

    def run(self, until: float, stats: Stats, interval: float = 1.0) -> None:
        nxt = time.perf_counter()
        n = 0
        while True:
            nxt = max(nxt + interval, time.perf_counter())
            time.sleep(max(0.0, nxt - time.perf_counter()))
            if time.perf_counter() >= until:
                return
            n += 1
            self.props["tick.n_intervals"] = n
            try:
                t0 = time.perf_counter()
                status, data = self._post(self.payload("changed.data", ["tick.n_intervals"]))
                t1 = time.perf_counter()
                with stats.lock:
                    stats.ticks.append(t1 - t0)
                if status != 200:
                    continue  # 204: nothing changed
                first = self.props.get("changed.data") is None
                changed = self._apply(data)
                wave = self._wave(changed)
                while wave:  # the callbacks the new outputs trigger
                    wave = self._wave(wave)
                t2 = time.perf_counter()
                if not first:
                    with stats.lock:
                        stats.views.append(t2 - t1)
                        stats.screen.append((t2, int(self.props["changed.data"]["seq"])))
            except (OSError, RuntimeError, http.client.HTTPException) as exc:
                with stats.lock:
                    stats.errors.append(str(exc))


# ---------------------------------------------------------------- one configuration


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))] * 1000


def phase(
    label: str,
    store: Store,
    writer_args: tuple[RunIngestor, list[Outcome], int],
    *,
    optimized: bool,
    threads: int,
    clients: int,
    seconds: float,
    every: float,
) -> dict[str, Any]:
    from dashboard.app import create_app
    from dashboard.server import serve

    assay = load_assay()
    app = create_app(store, assay, shared_views=optimized)
    srv = serve(app, port=0, threads=threads)
    props = _initial_props(app.layout)
    pool = ThreadPoolExecutor(max_workers=clients * PER_PAGE, thread_name_prefix="bench-page")
    stats = Stats()
    try:
        pages = [Page(srv.port, app.callback_map, props, pool) for _ in range(clients)]
        for p in pages:  # each loads the page first: its session cookie comes with it
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            conn.close()
            jar = SimpleCookie()
            for raw in resp.headers.get_all("Set-Cookie") or []:
                jar.load(raw)
            name = app.config.csrf_token_name
            if name in jar:
                token = jar[name].value
                p.headers.update({"Cookie": f"{name}={token}", "X-CSRFToken": token})
        warm = time.perf_counter() + 3.0  # every page loads once (full figures)
        threads = [
            threading.Thread(target=p.run, args=(warm + seconds, stats), daemon=True) for p in pages
        ]
        for i, t in enumerate(threads):
            time.sleep(1.0 / clients * (i > 0))  # pages opened over one second
            t.start()
        time.sleep(max(0.0, warm - time.perf_counter()))
        with stats.lock:
            stats.ticks.clear()
            stats.views.clear()
            stats.screen.clear()
        writer = Writer(*writer_args, every=every)
        writer.start()
        for t in threads:
            t.join(seconds + 120)
        writer.stop.set()
        writer.join()
        writer_args = (writer.ing, writer.outcomes, writer.k)
    finally:
        srv.stop()
        pool.shutdown(cancel_futures=True)
    # change -> screen: for each commit, when each page first showed it (or a later seq)
    lags = []
    for when, seq in writer.commits:
        shown = [t for t, s in stats.screen if s >= seq and t >= when]
        if shown:
            by_page = sorted(shown)[: min(clients, len(shown))]
            lags.extend(t - when for t in by_page)
    return {
        "label": label,
        "ticks/s per page": len(stats.ticks) / seconds / clients,
        "tick p50": pct(stats.ticks, 50),
        "tick p95": pct(stats.ticks, 95),
        "view p50": pct(stats.views, 50),
        "view p95": pct(stats.views, 95),
        "change->screen p50": pct(lags, 50),
        "change->screen p95": pct(lags, 95),
        "changes": len(writer.commits),
        "errors": len(stats.errors),
        "next": writer_args,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--injections", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--change-every", type=float, default=4.0)
    parser.add_argument(
        "--threads", help="threads of the shared configurations, e.g. 6,24 (default: serve's)"
    )
    parser.add_argument(
        "--compare", action="store_true", help="first the dashboard as it was, then as it is"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asnmon-load-") as tmp:
        t = time.perf_counter()
        store, ing, samples = fill_run(Path(tmp) / "big.duckdb", args.injections, Path(tmp))
        print(
            f"filled {store.runs()['injections'][0]} injections in {time.perf_counter() - t:.1f} s;"
            f" {args.clients} pages polling every 1 s, a new injection every "
            f"{args.change_every:g} s, {args.seconds:g} s per configuration"
        )
        nxt: tuple[RunIngestor, list[Outcome], int] = (ing, samples, args.injections)
        results = []
        configs = [("before: 6 threads, unshared", False, 6)] if args.compare else []
        for n in [int(t) for t in (args.threads or str(THREADS)).split(",")]:
            configs.append((f"after: {n} threads, shared", True, n))
        for label, optimized, threads in configs:
            r = phase(
                label,
                store,
                nxt,
                optimized=optimized,
                threads=threads,
                clients=args.clients,
                seconds=args.seconds,
                every=args.change_every,
            )
            nxt = r.pop("next")
            results.append(r)
        keys = [k for k in results[0] if k != "label"]
        print(f"{'':<22}" + "".join(f"{r['label']:>28}" for r in results))
        for k in keys:
            unit = " ms" if ("p50" in k or "p95" in k) else ""
            print(f"{k + unit:<22}" + "".join(f"{r[k]:>28.2f}" for r in results))
        store.close()


if __name__ == "__main__":
    main()
