"""Work shared by all open pages: one counter read, one computation per change and inputs.

Behaviour only (timings live in benchmarks/dashboard_load.py): the same change
counter gives the same object, a change gives a new one, twenty pages asking at
once cause one computation, and the tick that finds nothing new is answered
without Dash — but never a request that is not exactly the page's tick.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from asnmon.assay import Assay
from asnmon.store import RunInfo, Store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:urllib3.*")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "db.duckdb")
    s.ensure_run(RunInfo("r1", "r1", planned=3))
    yield s
    s.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_counter_reads_the_database_once_per_max_age(store: Store) -> None:
    from dashboard.shared import ChangeCounter

    clock = Clock()
    counter = ChangeCounter(store, max_age=0.2, clock=clock)
    first = counter.value()
    with ThreadPoolExecutor(20) as pool:
        seen = list(pool.map(lambda _: counter.value(), range(200)))
    assert seen == [first] * 200
    assert counter.queries == 1
    store.ensure_run(RunInfo("r2", "r2"))  # a change
    assert counter.value() == first  # not yet re-read: at most max_age old
    clock.now += 0.2
    assert counter.value() > first
    assert counter.queries == 2


def test_same_counter_same_object_and_a_new_one_after_a_change(store: Store) -> None:
    from dashboard.shared import ChangeCounter, PerChange

    clock = Clock()
    memo = PerChange(ChangeCounter(store, max_age=0.2, clock=clock))
    calls: list[int] = []

    def figure() -> dict[str, Any]:
        calls.append(1)
        return {"data": [{"y": [1, 2, 3]}], "n": len(calls)}

    a = memo.get("run-plots", ("r1", None), figure)
    b = memo.get("run-plots", ("r1", None), figure)
    assert a is b and len(calls) == 1
    other = memo.get("run-plots", ("r2", None), figure)  # other inputs: its own entry
    assert other is not a and len(calls) == 2
    store.ensure_run(RunInfo("r3", "r3"))
    clock.now += 1
    c = memo.get("run-plots", ("r1", None), figure)
    assert c is not a and c["n"] == 3
    assert len(memo) == 3  # this change and the one before are kept
    for run in ("r4", "r5"):
        store.ensure_run(RunInfo(run, run))
        clock.now += 1
        memo.get("run-plots", ("r1", None), figure)
    assert len(memo) == 2  # older changes' figures are dropped


def test_twenty_pages_asking_at_once_cause_one_computation(store: Store) -> None:
    from dashboard.shared import ChangeCounter, PerChange

    memo = PerChange(ChangeCounter(store))
    started = threading.Event()
    calls: list[int] = []

    def slow() -> object:
        calls.append(1)
        started.set()
        time.sleep(0.3)
        return object()

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: memo.get("banner", "r1", slow), range(20)))
    assert len(calls) == 1
    assert all(r is results[0] for r in results)


def test_an_error_reaches_every_waiter_and_is_not_kept(store: Store) -> None:
    from asnmon.errors import StoreError
    from dashboard.shared import ChangeCounter, PerChange

    memo = PerChange(ChangeCounter(store))
    calls: list[int] = []

    def failing() -> object:
        calls.append(1)
        time.sleep(0.2)
        raise StoreError("database is gone")

    def ask(_: int) -> str:
        try:
            memo.get("banner", "r1", failing)
        except StoreError as err:
            return str(err)
        return "no error"

    with ThreadPoolExecutor(5) as pool:
        assert list(pool.map(ask, range(5))) == ["database is gone"] * 5
    assert memo.get("banner", "r1", lambda: "recovered") == "recovered"


# ---------------------------------------------------------------- through the real server


def _tick(seen: Any) -> bytes:
    return json.dumps(
        {
            "output": "changed.data",
            "outputs": {"id": "changed", "property": "data"},
            "inputs": [{"id": "tick", "property": "n_intervals", "value": 3}],
            "changedPropIds": ["tick.n_intervals"],
            "state": [{"id": "changed", "property": "data", "value": seen}],
        }
    ).encode()


def _banner(changed: Any) -> bytes:
    return json.dumps(
        {
            "output": "..banner.children...fail-count.data..",
            "outputs": [
                {"id": "banner", "property": "children"},
                {"id": "fail-count", "property": "data"},
            ],
            "inputs": [
                {"id": "changed", "property": "data", "value": changed},
                {"id": "run", "property": "value", "value": None},
            ],
            "changedPropIds": ["changed.data"],
            "state": [],
        }
    ).encode()


def _post(port: int, body: bytes, cookie: str | None = None) -> tuple[int, bytes, list[str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Host": f"127.0.0.1:{port}"}
    if cookie:
        headers["Cookie"] = cookie
    try:
        conn.request("POST", "/_dash-update-component", body, headers)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.headers.get_all("Set-Cookie") or []
    finally:
        conn.close()


def test_the_server_shares_views_and_answers_idle_ticks_without_dash(
    store: Store, assay: Assay
) -> None:
    from dashboard.app import create_app
    from dashboard.server import serve

    app = create_app(store, assay)
    views = app.views  # type: ignore[attr-defined]
    fast = app.server.wsgi_app
    name = app.config.csrf_token_name
    with serve(app, port=0) as srv:
        status, body, cookies = _post(srv.port, _tick(None))
        assert status == 200
        seen = json.loads(body)["response"]["changed"]["data"]
        token = next(c for c in cookies if c.startswith(name)).split(";")[0]

        # idle ticks with the page's cookie: answered before Dash, HTTP 204
        before = fast.answered
        for _ in range(5):
            assert _post(srv.port, _tick(seen), token)[0] == 204
        assert fast.answered == before + 5
        # without the cookie Dash answers (and hands out a token): still 204
        status, _, cookies = _post(srv.port, _tick(seen))
        assert status == 204 and any(c.startswith(name) for c in cookies)
        assert fast.answered == before + 5
        # a crafted tick never takes the fast path: Dash refuses it
        bad = json.loads(_tick(seen))
        bad["changedPropIds"] = ["nothing.here"]
        assert _post(srv.port, json.dumps(bad).encode(), token)[0] == 400

        # twenty pages refreshing the banner at once: one computation
        computed = views.per_change.computed
        with ThreadPoolExecutor(20) as pool:
            replies = list(pool.map(lambda _: _post(srv.port, _banner(seen), token), range(20)))
        assert {r[0] for r in replies} == {200}
        assert len({r[1] for r in replies}) == 1
        assert views.per_change.computed == computed + 1

        # a change: the tick reports it (not the fast path) and the banner is new
        store.ensure_run(RunInfo("r2", "second run", planned=5))
        time.sleep(0.3)  # > the counter's max age
        status, body, _ = _post(srv.port, _tick(seen), token)
        assert status == 200
        changed = json.loads(body)["response"]["changed"]["data"]
        assert changed["seq"] > seen["seq"] and changed["prev"] == seen["seq"]
        assert "run" in changed["kinds"]
        computed = views.per_change.computed
        status, body, _ = _post(srv.port, _banner(changed), token)
        assert status == 200 and views.per_change.computed == computed + 1
        assert body != replies[0][1]


def test_a_monitor_problem_is_news_even_when_the_database_did_not_move(
    store: Store, assay: Assay
) -> None:
    from dashboard.app import create_app
    from dashboard.server import serve

    problems: list[str] = []
    app = create_app(store, assay, health=lambda: {"problems": list(problems)})
    name = app.config.csrf_token_name
    with serve(app, port=0) as srv:
        status, body, cookies = _post(srv.port, _tick(None))
        seen = json.loads(body)["response"]["changed"]["data"]
        token = next(c for c in cookies if c.startswith(name)).split(";")[0]
        assert _post(srv.port, _tick(seen), token)[0] == 204
        problems.append("WORKER PROBLEM: dead")  # no database write at all
        status, body, _ = _post(srv.port, _tick(seen), token)
        assert status == 200
        changed = json.loads(body)["response"]["changed"]["data"]
        assert changed["problems"] == ["WORKER PROBLEM: dead"]
        assert _post(srv.port, _banner(changed), token)[1].count(b"WORKER PROBLEM") >= 1
