"""Serving: loopback-only without a password, basic auth, /healthz, read-only acks."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from asnmon.assay import Assay
from asnmon.errors import SettingsError
from asnmon.store import RunInfo, Store

pytestmark = pytest.mark.filterwarnings(
    # dash -> requests -> urllib3 warns about its deprecated [secure] extra on import
    "ignore::DeprecationWarning:urllib3.*"
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "db.duckdb")
    s.ensure_run(RunInfo("r1", "r1", planned=3))
    yield s
    s.close()


def _get(url: str, password: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if password is not None:
        token = base64.b64encode(f"asnmon:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "lab-pc.example.org"])
def test_non_loopback_without_password_is_refused(store: Store, assay: Assay, host: str) -> None:
    from dashboard.app import create_app
    from dashboard.server import serve

    with pytest.raises(SettingsError, match="without a password"):
        serve(create_app(store, assay), host=host, port=0)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("10.0.0.1", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    from dashboard.server import is_loopback

    assert is_loopback(host) is loopback


def test_basic_auth_and_healthz(store: Store, assay: Assay) -> None:
    from dashboard.app import create_app
    from dashboard.server import serve

    with serve(create_app(store, assay), host="127.0.0.1", port=0, password="s3cret") as srv:
        assert _get(srv.url)[0] == 401
        assert _get(srv.url, "wrong")[0] == 401
        status, body = _get(srv.url, "s3cret")
        assert status == 200
        assert b"asnmon" in body
        status, body = _get(srv.url + "healthz", "s3cret")
        health = json.loads(body)
        assert status == 200
        assert health["database"] is True
        assert health["last_change"] >= 1


def test_open_insecure_binding_is_allowed_when_asked(store: Store, assay: Assay) -> None:
    from dashboard.app import create_app
    from dashboard.server import serve

    with serve(create_app(store, assay), host="0.0.0.0", port=0, insecure=True) as srv:
        assert _get(f"http://127.0.0.1:{srv.port}/healthz")[0] == 200


def test_read_only_review_says_acknowledgements_cannot_be_recorded(
    tmp_path: Path, assay: Assay
) -> None:
    from asnmon.users import BENCH_ACTOR
    from dashboard.app import Views
    from dashboard.auth import Who

    with Store(tmp_path / "ro.duckdb") as s:
        s.ensure_run(RunInfo("r1", "r1"))
    with Store(tmp_path / "ro.duckdb", read_only=True) as ro:
        message = Views(ro, assay).acknowledge([1], Who(BENCH_ACTOR, False, ""), "checked")
    assert "read-only" in message
    assert message.startswith("✖")
