"""Dashboard log-in: who a write is done as.

With accounts in the database (``asnmon user add``), a write (acknowledge,
reintegrate, exclude, edit, sign) needs a log-in: ``/login`` checks the
name and password (Argon2id, throttled per address like the shared
password), and Flask's signed session cookie carries the account name. The
key that signs it is kept beside the database (``<db>.secret``, mode 0600,
made with ``secrets``), so a restart keeps people logged in and copying the
database elsewhere does not carry the key along. A log-in ends after
``idle_minutes`` without an action of the person (the page's own 1 s poll
does not count) and after 12 hours in any case (NIST SP 800-63B §4.2.3).

Without accounts the dashboard is a single bench: writes are done as
``bench (no accounts)``, which may acknowledge and edit but never sign, and
the page says so. Reading never needs a log-in (the lab's wall screen).
"""

from __future__ import annotations

import html
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash
import flask

from asnmon.errors import AccessDenied, StoreError
from asnmon.store import Store
from asnmon.users import BENCH_ACTOR, MAX_PASSWORD, Actor
from dashboard.guard import Throttle, ThrottlePolicy

log = logging.getLogger("asnmon.dashboard")

MAX_SESSION_S = 12 * 3600.0  # NIST SP 800-63B §4.2.3 (AAL2): re-authenticate every 12 h
# Callback inputs the page fires by itself: they keep a page fresh, not a person active.
PASSIVE_INPUTS = frozenset({"tick.n_intervals", "changed.data", "url.search", "url.pathname"})


def secret_path(db: Path) -> Path:
    return db.with_name(db.name + ".secret")


def session_key(db: Path) -> bytes:
    """The session-signing key kept beside ``db`` (created once, mode 0600).

    Where it cannot be written (a read-only folder) a key for this process only
    is used: log-ins then end when the dashboard restarts.
    """
    path = secret_path(db)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("dashboard: %s is readable by others (mode %o); set it to 0600", path, mode)
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 64:
            return key.encode()
        log.warning("dashboard: %s is too short to be a session key; using a new one", path)
        return secrets.token_hex(32).encode()
    except OSError as exc:
        log.warning(
            "dashboard: cannot keep the session key beside the database (%s); log-ins end "
            "when the dashboard restarts",
            exc,
        )
        return secrets.token_hex(32).encode()
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    return key.encode()


@dataclass(frozen=True, slots=True)
class Who:
    """The person behind a request: an actor, or why there is none."""

    actor: Actor | None
    accounts: bool  # the database has accounts: writes need a log-in
    note: str  # one line for the screen


class Auth:
    """Log-in, log-out and the idle timeout over Flask's session, for one store."""

    def __init__(
        self,
        store: Store,
        *,
        idle_minutes: float = 30.0,
        cookie: str = "asnmon_session",
        policy: ThrottlePolicy | None = None,
    ) -> None:
        self.store = store
        self.idle_s = idle_minutes * 60.0
        self.cookie = cookie
        self.throttle = Throttle(policy or ThrottlePolicy())

    # ------------------------------------------------------------ wiring

    def install(self, app: dash.Dash) -> None:
        server = app.server
        server.secret_key = session_key(self.store.path.resolve())
        server.config.update(
            SESSION_COOKIE_NAME=self.cookie,
            SESSION_COOKIE_SAMESITE="Strict",
            SESSION_COOKIE_HTTPONLY=True,
        )
        server.add_url_rule("/login", "asnmon_login", self._login, methods=["GET", "POST"])
        server.add_url_rule("/logout", "asnmon_logout", self._logout, methods=["GET", "POST"])
        server.before_request(self._touch)

    def _touch(self) -> None:
        """A person's action (not the page's own poll) restarts the idle clock."""
        sess = flask.session
        if "user" not in sess or self._expired(sess):
            return
        req = flask.request
        active = req.method == "GET" and req.path == "/"
        if req.method == "POST" and req.path.endswith("_dash-update-component"):
            body = req.get_json(silent=True) or {}
            changed = body.get("changedPropIds") if isinstance(body, dict) else None
            active = isinstance(changed, list) and any(
                isinstance(c, str) and c not in PASSIVE_INPUTS for c in changed
            )
        if active:
            sess["seen"] = time.time()

    def _expired(self, sess: Any) -> str:
        now = time.time()
        if now - float(sess.get("since", 0)) > MAX_SESSION_S:
            return "after 12 hours"
        if now - float(sess.get("seen", 0)) > self.idle_s:
            return f"after {self.idle_s / 60:g} minutes without activity"
        return ""

    # ------------------------------------------------------------ who

    def who(self) -> Who:
        """The actor of the current request (inside a Flask request, e.g. a callback)."""
        try:
            accounts = self.store.has_accounts()
        except StoreError as exc:
            return Who(None, True, f"the database does not answer ({exc})")
        sess = flask.session
        if not accounts:
            if "user" in sess:
                sess.clear()
            return Who(
                BENCH_ACTOR,
                False,
                "Single bench, no accounts: changes are recorded as 'bench (no accounts)'; "
                "signing needs accounts (asnmon user add).",
            )
        name = sess.get("user")
        if not name:
            return Who(None, True, "Not logged in: log in to acknowledge, edit or sign.")
        why = self._expired(sess)
        if why:
            sess.clear()
            return Who(None, True, f"Logged out {why}: log in again to make changes.")
        role = self._current_role(str(name))
        if role is None:
            sess.clear()
            return Who(None, True, f"The account {name} is disabled: log in with another.")
        actor = Actor(str(name), role)
        return Who(actor, True, f"Logged in as {actor.name} ({actor.role}).")

    def _current_role(self, name: str) -> str | None:
        """The account's role now (a role changed or an account disabled since log-in)."""
        users = self.store.users()
        for row in users.iter_rows(named=True):
            if row["name"] == name and not row["disabled"]:
                return str(row["role"])
        return None

    def refusal(self, who: Who) -> str:
        """The plain message for a write without an actor."""
        return f"✖ Not recorded: {who.note}"

    # ------------------------------------------------------------ routes

    def _login(self) -> Any:
        req = flask.request
        nxt = _safe_next(req.values.get("next", "/"))
        if req.method == "GET":
            return _page(nxt, "")
        if not _same_origin(req):
            return _page(nxt, "This log-in form was not sent by this dashboard."), 403
        addr = str(req.remote_addr or "?")
        wait = self.throttle.locked(addr)
        if wait > 0:
            return _page(nxt, f"Too many wrong passwords: try again in {wait:.0f} s."), 429
        name = (req.form.get("name") or "")[:100]
        password = (req.form.get("password") or "")[:MAX_PASSWORD]
        try:
            actor = self.store.authenticate(name, password)
        except AccessDenied as err:
            failures, wait = self.throttle.failed(addr)
            log.warning(
                "dashboard: failed log-in for %r from %s (%d in a row)", name, addr, failures
            )
            return _page(nxt, str(err).capitalize() + "."), 401
        self.throttle.succeeded(addr)
        now = time.time()
        flask.session.clear()
        flask.session.update(user=actor.name, since=now, seen=now)
        log.info("dashboard: %s (%s) logged in from %s", actor.name, actor.role, addr)
        return flask.redirect(nxt)

    def _logout(self) -> Any:
        flask.session.clear()
        return flask.redirect("/login?out=1")


def _safe_next(value: str) -> str:
    """Only a path on this dashboard (no open redirect to another site)."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


def _same_origin(req: flask.Request) -> bool:
    """A browser names the page a form came from; another site's page is refused."""
    origin = req.headers.get("Origin") or req.headers.get("Referer")
    if not origin or origin == "null":
        return origin is None  # a script without a browser sends neither
    return urlsplit(origin).netloc == req.host


def _page(nxt: str, message: str) -> str:
    out = flask.request.args.get("out") and not message
    note = "You are logged out." if out else message
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>asnmon: log in</title>
<link rel="stylesheet" href="/assets/asnmon.css">
<link rel="stylesheet" href="/assets/signoff.css"></head>
<body><main class="login-page">
<h1>asnmon</h1>
<p>Log in to acknowledge flags, edit the run and sign it. Reading needs no log-in:
<a href="/">back to the dashboard</a>.</p>
<form method="post" action="/login" class="login-form">
<input type="hidden" name="next" value="{html.escape(nxt)}">
<label>Account <input id="login-name" name="name" autocomplete="username" required
 maxlength="100" autofocus></label>
<label>Password <input id="login-password" name="password" type="password"
 autocomplete="current-password" required maxlength="{MAX_PASSWORD}"></label>
<button id="login-submit" type="submit">Log in</button>
</form>
<p id="login-message" class="login-message" role="status">{html.escape(note)}</p>
</main></body></html>"""
