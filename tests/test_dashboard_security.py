"""The dashboard under crafted requests: a real waitress server on loopback, real HTTP.

Host header (DNS rebinding), the session token writes need, password throttling,
request size and callback input checks. Every case is what an attacker (another
web page, another local process, a script guessing passwords) would send.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import ingest_short_run

from asnmon.assay import Assay
from asnmon.store import Store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:urllib3.*")

CALLBACK = "/_dash-update-component"
EVIL = "rebind.attacker.example"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def cookie(self, name: str) -> str | None:
        jar = SimpleCookie()
        for raw in self.headers.get_all("Set-Cookie") or []:
            jar.load(raw)
        return jar[name].value if name in jar else None


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    host: str | None = None,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        hdrs = {"Host": host if host is not None else f"127.0.0.1:{port}", **(headers or {})}
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


@dataclass
class Live:
    port: int
    app: Any


def post(port: int, payload: Any, **kw: Any) -> Reply:
    return request(port, "POST", CALLBACK, json.dumps(payload).encode(), **kw)


# ---------------------------------------------------------------- payloads the page sends


def tick_payload(seen: Any = None) -> dict[str, Any]:
    return {
        "output": "changed.data",
        "outputs": {"id": "changed", "property": "data"},
        "inputs": [{"id": "tick", "property": "n_intervals", "value": 1}],
        "changedPropIds": ["tick.n_intervals"],
        "state": [{"id": "changed", "property": "data", "value": seen}],
    }


def ack_payload(flag_id: Any, comment: Any = "checked") -> dict:
    """One flag's Acknowledge button, as the page sends it (no name: the actor is the session)."""
    pid = {"flag": flag_id, "type": "ack"}
    return {
        "output": "ack-result.children",
        "outputs": {"id": "ack-result", "property": "children"},
        "inputs": [[{"id": pid, "property": "n_clicks", "value": 1}]],
        "changedPropIds": [json.dumps(pid, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
        "state": [{"id": "ack-comment", "property": "value", "value": comment}],
    }


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def flagged(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Iterator[Store]:
    """A small real run whose last injection is short (IS_LOW): flags to acknowledge."""
    tmp = tmp_path_factory.mktemp("sec")
    store = Store(tmp / "db.duckdb")
    ingest_short_run(store, tmp, assay)
    yield store
    store.close()


@pytest.fixture(scope="module")
def live(flagged: Store, assay: Assay) -> Iterator[Any]:
    from dashboard.app import create_app
    from dashboard.server import serve

    app = create_app(flagged, assay)
    with serve(app, port=0) as srv:
        yield Live(srv.port, app)


def acks(store: Store) -> int:
    row = store.reader().execute("SELECT count(*) FROM acknowledgements").fetchone()
    return int(row[0]) if row else 0


def fail_flag(store: Store) -> int:
    flags = store.flags("run")
    return int(flags.filter(pl.col("severity") == "fail")["flag_id"][0])


def page_token(srv: Any) -> tuple[str, str]:
    """What the page's own script has: the cookie the server set with the page."""
    reply = request(srv.port, "GET", "/")
    assert reply.status == 200
    name = srv.app.config.csrf_token_name
    token = reply.cookie(name)
    assert token, "the page must come with a session token cookie"
    return name, token


def with_token(srv: Any) -> dict[str, str]:
    """The headers the page's own requests carry (none where no token is issued)."""
    name = srv.app.config.csrf_token_name
    token = request(srv.port, "GET", "/").cookie(name)
    return {"Cookie": f"{name}={token}", "X-CSRFToken": token} if token else {}


# ---------------------------------------------------------------- Host header


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("GET", "/", None),
        ("GET", "/_dash-layout", None),
        ("GET", "/healthz", None),
        ("POST", CALLBACK, tick_payload()),
    ],
)
def test_a_rebinding_page_gets_400_for_every_request(
    live: Any, method: str, path: str, payload: Any
) -> None:
    body = json.dumps(payload).encode() if payload is not None else None
    for host in (EVIL, f"{EVIL}:{live.port}", "127.0.0.1.nip.io", "localhost.attacker.example"):
        reply = request(live.port, method, path, body, host=host)
        assert reply.status == 400, (host, reply.status)
        assert b"Host" in reply.body
    # the same request under the address the dashboard is served at works
    for host in (f"127.0.0.1:{live.port}", f"localhost:{live.port}", "LOCALHOST."):
        assert request(live.port, method, path, body, host=host).status in (200, 204), host


def test_a_rebinding_page_cannot_acknowledge_even_with_a_token(live: Any, flagged: Store) -> None:
    before = acks(flagged)
    # a rebound page can read the token from its own origin's responses: the Host stops it
    reply = post(live.port, ack_payload(fail_flag(flagged)), headers=with_token(live), host=EVIL)
    assert reply.status == 400
    assert acks(flagged) == before


def test_no_host_header_is_refused(live: Any) -> None:
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        head = s.recv(200)
    assert head.startswith(b"HTTP/1.1 400") or head.startswith(b"HTTP/1.0 400")


def test_allowed_hosts_lets_a_lab_dns_name_in(flagged: Store, assay: Assay) -> None:
    from dashboard.app import create_app
    from dashboard.server import serve

    app = create_app(flagged, assay)
    with serve(app, port=0, allowed_hosts=["asnmon-qqq1.lab.example"]) as srv:
        assert request(srv.port, "GET", "/", host="asnmon-qqq1.lab.example:8050").status == 200
        assert request(srv.port, "GET", "/", host="Asnmon-QQQ1.lab.example.").status == 200
        assert request(srv.port, "GET", "/", host="other.lab.example").status == 400


def test_a_wildcard_binding_takes_ip_literals_but_not_foreign_names(
    flagged: Store, assay: Assay
) -> None:
    from dashboard.app import create_app
    from dashboard.server import serve

    app = create_app(flagged, assay)
    with serve(app, host="0.0.0.0", port=0, password="pw-for-the-lan") as srv:
        auth = {"Authorization": "Basic " + base64.b64encode(b"asnmon:pw-for-the-lan").decode()}
        assert request(srv.port, "GET", "/", headers=auth, host="192.168.1.20:8050").status == 200
        assert request(srv.port, "GET", "/", headers=auth, host=socket.gethostname()).status == 200
        assert request(srv.port, "GET", "/", headers=auth, host=EVIL).status == 400


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8050", "127.0.0.1"),
        ("[::1]:8050", "::1"),
        ("[::1]", "::1"),
        ("LocalHost.", "localhost"),
        ("lab.example:80", "lab.example"),
    ],
)
def test_host_name_strips_the_port(header: str, name: str) -> None:
    from dashboard.guard import host_name

    assert host_name(header) == name


# ---------------------------------------------------------------- session token


def test_a_plain_post_from_another_process_cannot_acknowledge(live: Any, flagged: Store) -> None:
    flag = fail_flag(flagged)
    before = acks(flagged)
    reply = post(live.port, ack_payload(flag))
    assert reply.status == 403
    assert b"session token" in reply.body
    # a forged token (cookie and header agree, but the server never issued it)
    name = live.app.config.csrf_token_name
    forged = "x" * 24 + "." + "0" * 32
    reply = post(
        live.port, ack_payload(flag), headers={"Cookie": f"{name}={forged}", "X-CSRFToken": forged}
    )
    assert reply.status == 403
    # a real token in the header alone, without the page's cookie
    _, token = page_token(live)
    assert post(live.port, ack_payload(flag), headers={"X-CSRFToken": token}).status == 403
    assert acks(flagged) == before


def test_the_page_token_acknowledges_and_so_does_anyone_who_reads_the_page(
    live: Any, flagged: Store
) -> None:
    # The honest limit: a local process that GETs the page has the token the page has.
    flag = fail_flag(flagged)
    before = acks(flagged)
    reply = post(live.port, ack_payload(flag, "via the token"), headers=with_token(live))
    assert reply.status == 200
    assert b"acknowledged by bench (no accounts)" in reply.body
    assert acks(flagged) == before + 1


def test_reads_need_no_token_and_hand_out_a_fresh_one(live: Any, flagged: Store) -> None:
    name = live.app.config.csrf_token_name
    stale = {"Cookie": f"{name}=old.{'0' * 32}"}  # e.g. from before a restart
    reply = post(live.port, tick_payload(), headers=stale)
    assert reply.status == 200
    fresh = reply.cookie(name)
    assert fresh and fresh != f"old.{'0' * 32}"
    cookie = next(c for c in reply.headers.get_all("Set-Cookie") if c.startswith(name))
    assert "SameSite=Strict" in cookie
    # the healed token writes
    reply = post(
        live.port,
        ack_payload(fail_flag(flagged), ""),
        headers={"Cookie": f"{name}={fresh}", "X-CSRFToken": fresh},
    )
    assert reply.status == 200


def test_two_dashboards_on_one_computer_use_different_cookies(
    flagged: Store, tmp_path: Path, assay: Assay
) -> None:
    from dashboard.app import create_app

    with Store(tmp_path / "other.duckdb") as other:
        a = create_app(flagged, assay).config.csrf_token_name
        b = create_app(other, assay).config.csrf_token_name
    assert a != b  # cookies ignore ports: one monitor's token must not evict the other's


# ---------------------------------------------------------------- callback inputs


def test_flag_id_true_is_not_flag_1(live: Any, flagged: Store) -> None:
    before = acks(flagged)
    for crafted in (True, False, 0, -3, "1", 1.0, [1], None):
        reply = post(live.port, ack_payload(crafted), headers=with_token(live))
        assert reply.status == 400, (crafted, reply.status, reply.body)
        assert reply.body.startswith(b"asnmon: refused")
    assert acks(flagged) == before


def test_an_unknown_flag_is_not_recorded(live: Any, flagged: Store) -> None:
    before = acks(flagged)
    reply = post(live.port, ack_payload(987654), headers=with_token(live))
    assert reply.status == 200
    assert b"Not recorded" in reply.body
    assert acks(flagged) == before


@pytest.mark.parametrize("comment", ["y" * 2_001, ["A. Scientist"], {"text": "a comment"}, 123])
def test_comments_have_types_and_lengths(live: Any, flagged: Store, comment: Any) -> None:
    before = acks(flagged)
    reply = post(live.port, ack_payload(fail_flag(flagged), comment), headers=with_token(live))
    assert reply.status == 400
    assert len(reply.body) < 200 and b"Traceback" not in reply.body
    assert acks(flagged) == before


def test_the_longest_allowed_comment_is_stored(live: Any, flagged: Store) -> None:
    flag = fail_flag(flagged)
    reply = post(live.port, ack_payload(flag, "c" * 2_000), headers=with_token(live))
    assert reply.status == 200
    assert flagged.acknowledgements(flag)["comment"].str.len_chars().max() == 2_000


def _shapes() -> list[tuple[str, bytes]]:
    ack = ack_payload(1)
    no_state = {k: v for k, v in ack.items() if k != "state"}
    deep = b"[" * 100_000 + b"]" * 100_000
    return [
        ("state missing", json.dumps(no_state).encode()),
        ("state short", json.dumps({**ack, "state": []}).encode()),
        ("name not an entry", json.dumps({**ack, "state": ["x", "y"]}).encode()),
        ("inputs not a list", json.dumps({**ack, "inputs": {"a": 1}}).encode()),
        ("pattern input not a list", json.dumps({**ack, "inputs": [ack["inputs"][0][0]]}).encode()),
        (
            "wrong component",
            json.dumps({**ack, "inputs": [[{"id": "tick", "property": "x"}]]}).encode(),
        ),
        ("unknown output", json.dumps({**ack, "output": "nothing.here"}).encode()),
        ("clientside callback", json.dumps({**ack, "output": "root.className"}).encode()),
        (
            "outputs mismatch",
            json.dumps({**ack, "outputs": {"id": "banner", "property": "x"}}).encode(),
        ),
        (
            "trigger not an input",
            json.dumps({**ack, "changedPropIds": ["{bad json.n_clicks"]}).encode(),
        ),
        ("trigger elsewhere", json.dumps({**ack, "changedPropIds": ["tick.n_intervals"]}).encode()),
        ("tick seen a string", json.dumps(tick_payload("seq")).encode()),
        ("tick seen without seq", json.dumps(tick_payload({"prev": 1})).encode()),
        ("tick seq a bool", json.dumps(tick_payload({"seq": True})).encode()),
        ("a list, not an object", b"[1, 2, 3]"),
        ("not JSON", b"{'output': 1"),
        ("nested to exhaust the parser", deep),
        ("empty", b""),
    ]


@pytest.mark.parametrize(("label", "body"), _shapes(), ids=[s[0] for s in _shapes()])
def test_crafted_shapes_get_a_short_400(live: Any, label: str, body: bytes) -> None:
    reply = request(live.port, "POST", CALLBACK, body, headers=with_token(live))
    assert reply.status == 400, (label, reply.status, reply.body[:300])
    assert reply.body.startswith(b"asnmon: refused") and len(reply.body) < 300


WEIRD: list[Any] = [True, -1, "x" * 5_000, [1, [2]], {"a": {"b": 1}}, 1e308, "", 2**70]


def test_no_crafted_value_in_any_callback_gives_500(live: Any) -> None:
    """Every server callback, each input and state replaced by odd values: 2xx or 400."""
    headers = with_token(live)
    statuses: dict[int, int] = {}
    for output, cb in live.app.callback_map.items():
        if not callable(cb.get("callback")):
            continue
        outputs = (
            [
                dict(zip(("id", "property"), o.split("."), strict=True))
                for o in output.strip(".").split("...")
            ]
            if output.startswith("..")
            else dict(zip(("id", "property"), output.split("."), strict=True))
        )
        deps = [("inputs", d) for d in cb["inputs"]] + [("state", d) for d in cb["state"]]
        for slot in range(len(deps)):
            for weird in WEIRD:
                body: dict[str, Any] = {
                    "output": output,
                    "outputs": outputs,
                    "inputs": [],
                    "state": [],
                }
                for k, (where, dep) in enumerate(deps):
                    value = weird if k == slot else None
                    if dep["id"].startswith("{"):
                        pattern = json.loads(dep["id"])
                        cid = {key: (1 if isinstance(v, list) else v) for key, v in pattern.items()}
                        entry: Any = [{"id": cid, "property": dep["property"], "value": value}]
                    else:
                        entry = {"id": dep["id"], "property": dep["property"], "value": value}
                    body[where].append(entry)
                first = body["inputs"][0]
                first = first[0] if isinstance(first, list) else first
                pid = first["id"]
                pid = (
                    json.dumps(pid, sort_keys=True, separators=(",", ":"))
                    if isinstance(pid, dict)
                    else pid
                )
                body["changedPropIds"] = [f"{pid}.{first['property']}"]
                reply = post(live.port, body, headers=headers)
                statuses[reply.status] = statuses.get(reply.status, 0) + 1
                assert reply.status in (200, 204, 400), (
                    output,
                    deps[slot],
                    weird,
                    reply.body[:300],
                )
    assert statuses.get(400, 0) > 0 and statuses.get(200, 0) + statuses.get(204, 0) > 0


# ---------------------------------------------------------------- request size


def _send_big(port: int, size: int, host: str | None = None) -> bytes:
    """Headers announcing ``size`` bytes, the first MiB of them, then read the reply.

    The server must answer from the headers alone: it never reads 50 MB.
    """
    body = json.dumps(ack_payload(1, "")).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            f"POST {CALLBACK} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(body + b" " * (1024 * 1024))
        return s.recv(4096)


def test_a_50_mb_comment_is_refused_with_413_before_parsing(live: Any, flagged: Store) -> None:
    before = acks(flagged)
    t = time.monotonic()
    head = _send_big(live.port, 50 * 1024 * 1024)
    assert head.split(b"\r\n")[0].endswith(b"413 Request Entity Too Large"), head[:200]
    assert time.monotonic() - t < 20  # answered without waiting for 50 MB
    assert acks(flagged) == before


def test_a_50_mb_comment_sent_whole_is_not_stored(live: Any, flagged: Store) -> None:
    before = acks(flagged)
    body = json.dumps(ack_payload(fail_flag(flagged), "z" * (50 * 1024 * 1024))).encode()
    try:
        reply = request(live.port, "POST", CALLBACK, body, headers=with_token(live))
        assert reply.status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed the connection on the announced length: refused too
    assert acks(flagged) == before


def test_the_request_cap_is_configurable(flagged: Store, assay: Assay) -> None:
    from dashboard.app import create_app
    from dashboard.server import serve

    with serve(create_app(flagged, assay), port=0, max_request_kb=16) as srv:
        assert (
            request(srv.port, "POST", CALLBACK, json.dumps(tick_payload()).encode()).status == 200
        )
        big = json.dumps({**tick_payload(), "pad": "p" * 20_000}).encode()
        assert request(srv.port, "POST", CALLBACK, big).status == 413


# ---------------------------------------------------------------- password guessing


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"asnmon:{password}".encode()).decode()}


def test_password_guesses_are_throttled_per_address(
    flagged: Store, assay: Assay, caplog: pytest.LogCaptureFixture
) -> None:
    from dashboard.app import create_app
    from dashboard.guard import ThrottlePolicy
    from dashboard.server import serve

    policy = ThrottlePolicy(free_failures=5, first_lockout=3.0, max_lockout=30.0)
    app = create_app(flagged, assay)
    with (
        caplog.at_level(logging.WARNING, "asnmon.dashboard"),
        serve(app, port=0, password="correct horse", throttle=policy) as srv,
    ):
        assert request(srv.port, "GET", "/").status == 401  # no password yet: not a guess
        statuses = [
            request(srv.port, "GET", "/", headers=_basic(f"guess{i}")).status for i in range(40)
        ]
        assert statuses[:5] == [401] * 5
        assert statuses[5:] == [429] * 35
        locked = request(srv.port, "GET", "/", headers=_basic("correct horse"))
        assert locked.status == 429  # not even the right one is checked while locked
        wait = int(locked.headers["Retry-After"])
        assert 1 <= wait <= 30
        time.sleep(wait)
        deadline = time.monotonic() + 40
        while (ok := request(srv.port, "GET", "/", headers=_basic("correct horse"))).status == 429:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert ok.status == 200
        # success forgets the failures: one typo is a 401 again, not a lockout
        assert request(srv.port, "GET", "/", headers=_basic("one-typo")).status == 401
    lines = [r.getMessage() for r in caplog.records if "wrong passwords" in r.getMessage()]
    assert lines and "127.0.0.1" in lines[0] and "429" in lines[0]


def test_throttle_doubles_and_caps() -> None:
    from dashboard.guard import Throttle, ThrottlePolicy

    now = [0.0]
    t = Throttle(
        ThrottlePolicy(free_failures=2, first_lockout=1.0, max_lockout=8.0), lambda: now[0]
    )
    waits = [t.failed("10.0.0.9")[1] for _ in range(8)]
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert t.locked("10.0.0.9") == 8.0 and t.locked("10.0.0.10") == 0.0
    now[0] = 8.5
    assert t.locked("10.0.0.9") == 0.0
    t.succeeded("10.0.0.9")
    assert t.failed("10.0.0.9") == (1, 0.0)


# ---------------------------------------------------------------- the shared view


@pytest.fixture(scope="module")
def share_live(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Iterator[Any]:
    from dashboard.server import serve
    from dashboard.share_app import create_share_app

    folder = tmp_path_factory.mktemp("share")
    with serve(create_share_app(folder, assay), port=0) as srv:
        yield srv


def test_share_view_checks_host_size_and_inputs(share_live: Any) -> None:
    port = share_live.port
    assert request(port, "GET", "/").status == 200
    assert request(port, "GET", "/", host=EVIL).status == 400
    assert request(port, "GET", "/healthz", host=EVIL).status == 400
    head = _send_big(port, 50 * 1024 * 1024)
    assert b" 413 " in head.split(b"\r\n")[0]
    plots = {
        "output": "..share-is-plot.figure...share-asn-plot.figure..",
        "outputs": [
            {"id": "share-is-plot", "property": "figure"},
            {"id": "share-asn-plot", "property": "figure"},
        ],
        "inputs": [
            {"id": "share-version", "property": "data", "value": "v"},
            {"id": "share-selected", "property": "data", "value": {"instrument": "qqq1"}},
        ],
        "changedPropIds": ["share-selected.data"],
        "state": [],
    }
    reply = post(port, plots)
    assert reply.status == 400 and reply.body.startswith(b"asnmon: refused")
    plots["inputs"][1]["value"] = {"instrument": "qqq1", "run_id": "r1"}
    assert post(port, plots).status == 200
    assert post(port, {**plots, "state": [{"id": "x"}]}).status == 400


def test_dashboard_settings_are_checked() -> None:
    from asnmon.errors import SettingsError
    from asnmon.settings import parse_settings

    s = parse_settings({"dashboard": {"allowed_hosts": ["asnmon.lab.example"]}})
    assert s.allowed_hosts == ("asnmon.lab.example",) and s.max_request_kb == 1024
    with pytest.raises(SettingsError, match="max_request_kb"):
        parse_settings({"dashboard": {"max_request_kb": 0}})
    with pytest.raises(SettingsError, match="allowed_hosts"):
        parse_settings({"dashboard": {"allowed_hosts": "asnmon.lab.example"}})
