"""Dashboard log-in over real HTTP: session cookie, throttling, idle timeout, page token."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_dashboard_security import Reply, post, request

from asnmon.assay import Assay
from asnmon.store import RunInfo, Store
from asnmon.users import cli_actor
from dashboard.auth import secret_path, session_key

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:urllib3.*")
PW = "reviewer-pw-1"


@pytest.fixture
def served(tmp_path: Path, assay: Assay) -> Iterator[dict[str, Any]]:
    from dashboard.app import create_app
    from dashboard.server import serve

    store = Store(tmp_path / "lab.duckdb")
    store.ensure_run(RunInfo("r1", "r1", planned=3))
    store.add_user("rita", "reviewer", PW, actor=cli_actor("admin"))
    app = create_app(store, assay, idle_minutes=5 / 60)  # 5 s: the test waits it out
    with serve(app, port=0) as srv:
        yield {"port": srv.port, "app": app, "store": store}
    store.close()


def login(port: int, name: str, password: str, **headers: str) -> Reply:
    body = urllib.parse.urlencode({"name": name, "password": password, "next": "/"}).encode()
    return request(
        port,
        "POST",
        "/login",
        body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )


def session_cookie(served: dict[str, Any], reply: Reply) -> str:
    name = served["app"].server.config["SESSION_COOKIE_NAME"]
    value = reply.cookie(name)
    assert value, reply.headers
    return f"{name}={value}"


def who_payload() -> dict[str, Any]:
    return {
        "output": "who.children",
        "outputs": {"id": "who", "property": "children"},
        "inputs": [
            {"id": "url", "property": "pathname", "value": "/"},
            {"id": "changed", "property": "data", "value": None},
        ],
        "changedPropIds": [],
        "state": [],
    }


def test_the_session_key_is_kept_beside_the_database_with_mode_0600(served: dict) -> None:
    path = secret_path(served["store"].path.resolve())
    assert path.exists()
    assert path.stat().st_mode & 0o777 == 0o600
    assert session_key(served["store"].path.resolve()) == path.read_text().strip().encode()


def test_log_in_sets_a_strict_http_only_session_and_the_page_names_the_person(
    served: dict,
) -> None:
    reply = login(served["port"], "rita", PW)
    assert reply.status == 302
    raw = next(
        c
        for c in reply.headers.get_all("Set-Cookie")
        if c.startswith(served["app"].server.config["SESSION_COOKIE_NAME"])
    )
    assert "HttpOnly" in raw and "SameSite=Strict" in raw
    cookie = session_cookie(served, reply)
    who = post(served["port"], who_payload(), headers={"Cookie": cookie})
    assert who.status == 200 and b"rita (reviewer)" in who.body
    anonymous = post(served["port"], who_payload())
    assert b"Not logged in" in anonymous.body


def test_a_wrong_password_is_refused_and_throttled(served: dict) -> None:
    statuses = [login(served["port"], "rita", "wrong-guess").status for _ in range(7)]
    assert statuses[:5] == [401] * 5
    assert 429 in statuses[5:]
    assert login(served["port"], "rita", PW).status == 429  # not even the right one now


def test_a_log_in_from_another_site_is_refused(served: dict) -> None:
    reply = login(served["port"], "rita", PW, Origin="http://attacker.example")
    assert reply.status == 403


def test_next_never_leaves_the_dashboard(served: dict) -> None:
    body = urllib.parse.urlencode(
        {"name": "rita", "password": PW, "next": "//attacker.example/x"}
    ).encode()
    reply = request(
        served["port"],
        "POST",
        "/login",
        body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 302
    assert reply.headers["Location"] == "/"


def test_the_log_in_ends_after_the_idle_time(served: dict) -> None:
    cookie = session_cookie(served, login(served["port"], "rita", PW))
    assert (
        b"rita (reviewer)" in post(served["port"], who_payload(), headers={"Cookie": cookie}).body
    )
    time.sleep(6.0)
    after = post(served["port"], who_payload(), headers={"Cookie": cookie})
    assert b"Logged out after" in after.body and b"without activity" in after.body


def test_signing_without_the_page_token_is_refused(served: dict) -> None:
    cookie = session_cookie(served, login(served["port"], "rita", PW))
    payload = {
        "output": "..sign-result.children...sign-password.value..",
        "outputs": [
            {"id": "sign-result", "property": "children"},
            {"id": "sign-password", "property": "value"},
        ],
        "inputs": [
            {"id": "sign-reviewed", "property": "n_clicks", "value": 1},
            {"id": "sign-approved", "property": "n_clicks", "value": 0},
            {"id": "sign-reopen", "property": "n_clicks", "value": 0},
        ],
        "changedPropIds": ["sign-reviewed.n_clicks"],
        "state": [
            {"id": "sign-password", "property": "value", "value": PW},
            {"id": "sign-reason", "property": "value", "value": ""},
            {"id": "run", "property": "value", "value": "r1"},
        ],
    }
    reply = post(served["port"], payload, headers={"Cookie": cookie})
    assert reply.status == 403
    assert served["store"].signatures("r1").is_empty()
