"""Alerts against real servers on loopback: an HTTP server collecting POSTs, aiosmtpd."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from asnmon.alerts import (
    AlertConfig,
    Alerter,
    AlertEvent,
    AlertFeed,
    compose,
    event_from_watch,
    webhook_payload,
)
from asnmon.records import Flag, Severity
from asnmon.store import RunInfo, Store

TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab's proxy variables must not route loopback test traffic."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def wait_for(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Poll a condition with a deadline (no fixed sleeps as synchronisation)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ---------------------------------------------------------------- a webhook server


@dataclass
class Hook:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    fail_first: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_posts(self, n: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.posts) >= n, TIMEOUT)


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.cond:
                failing = len(state.statuses) < state.fail_first
                code = 500 if failing else 200
                state.statuses.append(code)
                if not failing:
                    state.posts.append(json.loads(body))
                state.cond.notify_all()
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code == 200 else b"boom")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _event(i: int, code: str = "IS_LOW") -> AlertEvent:
    return AlertEvent(kind="flag", title=f"{code} in run R1", detail=f"sample {i}", code=code)


class FakeClock:
    """Monotonic time the test can move forward (the hourly limit without an hour's wait)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def test_failing_run_sends_a_handful_of_messages_and_summarises_the_rest(hook: Hook) -> None:
    clock = FakeClock()
    config = AlertConfig(
        instrument="QQQ-1",
        webhook_url=hook.url,
        webhook_kind="generic",
        batch_seconds=0.3,
        max_per_hour=2,
        backoff=0.01,
    )
    alerter = Alerter(config, clock=clock)
    alerter.start()
    try:
        started = time.monotonic()
        for i in range(100):
            alerter.notify(_event(i))
        assert time.monotonic() - started < 1.0, "notify must only enqueue"
        assert hook.wait_posts(1)
        assert alerter.wait_idle(TIMEOUT)
        assert len(hook.posts) == 1
        assert len(hook.posts[0]["events"]) == 100
        assert "100 alerts" in hook.posts[0]["title"]
        assert "and 90 more: 90 x IS_LOW" in hook.posts[0]["text"]

        for i in range(5):
            alerter.notify(_event(i, "RT_SHIFT"))
        assert hook.wait_posts(2)
        for i in range(7):  # the hour's two messages are spent: held back
            alerter.notify(_event(i, "QC_FAIL"))
        assert wait_for(lambda: alerter.status()["held_back"] == 7)
        assert alerter.wait_idle(TIMEOUT)
        assert len(hook.posts) == 2

        clock.offset += 3601.0  # an hour later a new event lets the summary out
        alerter.notify(_event(0, "CARRYOVER"))
        assert hook.wait_posts(3)
        last = hook.posts[2]
        assert last["held_back"] == 7
        assert "7 alert(s) held back by the rate limit" in last["text"]
        assert "7 x QC_FAIL" in last["text"]
        assert "CARRYOVER" in last["text"]
        assert alerter.wait_idle(TIMEOUT)
        status = alerter.status()
        assert status["messages"] == 3
        assert status["held_back"] == 0
        assert status["channels"]["webhook"]["ok"] is True
    finally:
        alerter.stop()
    assert not alerter.status()["running"]


def test_webhook_500_is_retried_with_back_off(hook: Hook) -> None:
    hook.fail_first = 2
    config = AlertConfig(webhook_url=hook.url, batch_seconds=0.05, retries=3, backoff=0.05)
    alerter = Alerter(config)
    alerter.start()
    try:
        alerter.notify(_event(1))
        assert hook.wait_posts(1)
        assert alerter.wait_idle(TIMEOUT)
        assert hook.statuses == [500, 500, 200]
        ch = alerter.status()["channels"]["webhook"]
        assert ch["failed"] == 2
        assert ch["sent"] == 1
        assert ch["ok"] is True
        assert "HTTP 500" in ch["last_error"]
    finally:
        alerter.stop()


def test_unreachable_webhook_is_reported_never_raised() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = AlertConfig(
        webhook_url=f"http://127.0.0.1:{port}/", batch_seconds=0.05, retries=2, backoff=0.01
    )
    alerter = Alerter(config)
    alerter.start()
    try:
        alerter.notify(_event(1))
        assert alerter.wait_idle(TIMEOUT)
        ch = alerter.status()["channels"]["webhook"]
        assert ch["failed"] == 3
        assert ch["sent"] == 0
        assert ch["ok"] is False
        assert "unreachable" in ch["last_error"]
        assert alerter.status()["running"], "a failed alert must not end the alerter"
    finally:
        alerter.stop()


def test_stop_sends_what_was_collected(hook: Hook) -> None:
    alerter = Alerter(AlertConfig(webhook_url=hook.url, batch_seconds=60.0))
    alerter.start()
    alerter.notify(event_from_watch("folder_lost", "D: is gone"))
    assert wait_for(lambda: alerter.status()["queued"] == 0)
    started = time.monotonic()
    alerter.stop()
    assert time.monotonic() - started < 5.0
    assert len(hook.posts) == 1
    assert hook.posts[0]["events"][0]["title"] == "FOLDER LOST"


@pytest.mark.parametrize("kind", ["slack", "teams", "generic"])
def test_payload_shapes_reach_the_server(hook: Hook, kind: str) -> None:
    alerter = Alerter(AlertConfig(webhook_url=hook.url, webhook_kind=kind, batch_seconds=0.05))  # type: ignore[arg-type]
    alerter.start()
    try:
        alerter.notify(_event(3))
        assert hook.wait_posts(1)
    finally:
        alerter.stop()
    body = hook.posts[0]
    if kind == "slack":
        assert set(body) == {"text"}
        assert "IS_LOW in run R1" in body["text"]
    elif kind == "teams":
        assert body["type"] == "message"
        card = body["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert card["content"]["type"] == "AdaptiveCard"
        texts = [b["text"] for b in card["content"]["body"]]
        assert any("IS_LOW in run R1" in t for t in texts)
    else:
        assert body["events"][0]["code"] == "IS_LOW"


def test_watch_events_routine_ones_are_not_alerts() -> None:
    assert event_from_watch("ready", "x") is None
    back = event_from_watch("folder_back", "rescanned")
    assert back is not None
    assert back.severity == "info"
    message = compose("QQQ-1", [back], [])
    assert webhook_payload("slack", message, "QQQ-1")["text"].startswith("*asnmon QQQ-1")


# ---------------------------------------------------------------- e-mail


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_email_over_starttls_with_login(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    received: list[dict[str, Any]] = []
    cond = threading.Condition()

    class Collect:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with cond:
                received.append(
                    {
                        "to": list(envelope.rcpt_tos),
                        "data": envelope.content.decode(),
                        "tls": session.ssl is not None,
                        "login": session.auth_data if session.authenticated else None,
                    }
                )
                cond.notify_all()
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)

    port = _free_port()
    controller = Controller(
        Collect(),
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    config = AlertConfig(
        instrument="QQQ-1",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="starttls",
        smtp_user="asnmon",
        smtp_password="s3cret",
        smtp_cafile=str(cert),
        mail_from="asnmon@lab.example",
        mail_to=("qc@lab.example",),
        batch_seconds=0.05,
        backoff=0.01,
    )
    alerter = Alerter(config)
    alerter.start()
    try:
        for i in range(3):
            alerter.notify(_event(i, "QC_FAIL"))
        with cond:
            assert cond.wait_for(lambda: received, TIMEOUT)
        assert alerter.wait_idle(TIMEOUT)
    finally:
        alerter.stop()
        controller.stop()
    assert len(received) == 1
    mail = received[0]
    assert mail["tls"] is True
    assert mail["login"] == b"asnmon"
    assert mail["to"] == ["qc@lab.example"]
    assert "Subject: asnmon QQQ-1: 3 alerts (3 fail)" in mail["data"]
    assert "QC_FAIL in run R1" in mail["data"]
    assert alerter.status()["channels"]["email"]["sent"] == 1


def test_email_wrong_password_is_a_reported_failure(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    class Nothing:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    port = _free_port()
    controller = Controller(
        Nothing(),
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=lambda *a: AuthResult(success=False, handled=False),
    )
    controller.start()
    config = AlertConfig(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_user="asnmon",
        smtp_password="wrong",
        smtp_cafile=str(cert),
        mail_to=("qc@lab.example",),
        batch_seconds=0.05,
        retries=1,
        backoff=0.01,
    )
    alerter = Alerter(config)
    alerter.start()
    try:
        alerter.notify(_event(1))
        assert alerter.wait_idle(TIMEOUT)
    finally:
        alerter.stop()
        controller.stop()
    ch = alerter.status()["channels"]["email"]
    assert ch["failed"] == 2
    assert ch["ok"] is False
    assert "535" in ch["last_error"] or "Authentication" in ch["last_error"]


# ---------------------------------------------------------------- events from the store


def test_feed_alerts_new_fail_flags_once_and_noteworthy_verdicts(tmp_path: Path) -> None:
    with Store(tmp_path / "feed.duckdb") as store:
        store.ensure_run(RunInfo(run_id="R1", name="R1"))
        old = Flag("CAL_FAIL", Severity.FAIL, "history, before the monitor started")
        store.replace_run_flags("R1", ["CAL_FAIL"], [old])
        feed = AlertFeed(store)
        assert feed.poll() == []

        fail = Flag("RUN_FAIL", Severity.FAIL, "2 of 6 QCs failed", action="Repeat the run.")
        warn = Flag("IS_BIAS", Severity.WARNING, "IS 25 % lower in samples")
        store.replace_run_flags("R1", ["RUN_FAIL", "IS_BIAS"], [fail, warn])
        events = feed.poll()
        assert [e.code for e in events] == ["RUN_FAIL"]
        assert "Repeat the run." in events[0].detail

        store.replace_run_flags("R1", ["RUN_FAIL"], [fail])  # re-judged: same flag again
        assert feed.poll() == []

        store.set_verdict("R1", "pass", "calibration accepted")  # pending -> pass: routine
        assert feed.poll() == []
        store.set_verdict("R1", "fail", "QC failed")
        events = feed.poll()
        assert [(e.kind, e.severity) for e in events] == [("verdict", "fail")]
        assert "pass -> fail" in events[0].title
