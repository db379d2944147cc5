"""While ``asnmon run`` waits for its database at start-up: ``/healthz`` says why.

A supervisor that restarts asnmon at 3 a.m. while someone's ``asnmon dashboard
--db`` holds the file sees a process that is up and ingests nothing. So from
the first failed attempt until the database opens (``asnmon.dbguard.open_waiting``)
a small server on the dashboard's address answers ``/healthz`` with 503 JSON
("database locked by process N, waiting") and every other page with a 503 that
says the same, behind the dashboard's own Host check and password; the JSON
status file beside the database says it too, on the heartbeat's timer. Both
stop the moment the database opens, and the real dashboard takes the port.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asnmon.actions import status_document, write_json_atomic
from asnmon.errors import DatabaseLockedError, StoreError
from asnmon.settings import Settings

if TYPE_CHECKING:
    from dashboard.server import ServerHandle

log = logging.getLogger("asnmon.monitor")


def waiting_sentence(exc: StoreError) -> str:
    """What a supervisor reads: "database locked by process N, waiting"."""
    if isinstance(exc, DatabaseLockedError):
        who = f"process {exc.pid}" if exc.pid is not None else "another process"
        return f"database locked by {who}, waiting"
    return f"database cannot be opened yet ({exc}), waiting"


class StartupWait:
    """``waiting(exc, attempts)`` at each failed open; ``done()`` once it opened (or not)."""

    def __init__(
        self, settings: Settings, status_file: Path, out: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.status_file = status_file
        self._out = out
        self._lock = threading.Lock()
        self._since: float | None = None
        self._attempts = 0
        self._sentence = ""
        self._problem = ""
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._server: ServerHandle | None = None

    # ------------------------------------------------------------ inputs

    def waiting(self, exc: StoreError, attempts: int) -> None:
        with self._lock:
            first = self._since is None
            if first:
                self._since = time.time()
            self._attempts = attempts
            self._sentence = waiting_sentence(exc)
            self._problem = str(exc)
        self._write_status()
        if first:
            self._beat = threading.Thread(
                target=self._beat_loop, name="asnmon-startup-status", daemon=True
            )
            self._beat.start()
            self._serve()

    def done(self, *, opened: bool = False) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(5)
        if self._server is not None:
            self._server.stop()
            self._server = None
        if opened and self._since is not None:
            # The monitor's own first beat comes at its first idle moment, which a
            # reconciliation catch-up can push past the dashboard's start: until then
            # the file would still say "waiting" for a database that is open.
            with self._lock:
                self._sentence = ""
            self._write_status()

    # ------------------------------------------------------------ what it says

    def body(self) -> dict[str, Any]:
        """``/healthz`` while waiting: the shape of the live one, ``ok`` False."""
        with self._lock:
            return {
                "ok": False,
                "starting": True,
                "waiting": self._sentence,
                "waiting_since": self._since,
                "attempts": self._attempts,
                "database": False,
                "database_problem": self._problem,
                "worker": "not started",
                "watcher": "not started",
                "monitor_pid": os.getpid(),
                "problems": [f"DATABASE PROBLEM: {self._sentence}: {self._problem}"],
            }

    def _write_status(self) -> None:
        body = self.body()
        values = {
            "updated": time.time(),
            "heartbeat_every": self.settings.heartbeat_every,
            "monitor_pid": os.getpid(),
            "monitor_started": body["waiting_since"],
            "monitor_stopped_at": None,
            "status_file": str(self.status_file),
            "watcher": "not started",
            "database_problem": body["database_problem"],
            "problems": body["problems"],
        }
        if body["waiting"]:
            values["waiting"] = body["waiting"]
        else:  # opened: starting, nothing wrong to say yet
            values.update(watcher="starting", database_problem="", problems=[])
        try:
            write_json_atomic(self.status_file, status_document(values, []))
        except (OSError, ValueError) as exc:  # a full disk, say: /healthz still answers
            log.warning("cannot write %s while waiting for the database: %s", self.status_file, exc)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_every):
            self._write_status()

    # ------------------------------------------------------------ the server

    def _serve(self) -> None:
        s = self.settings
        if not s.dashboard:
            return
        from dashboard.guard import BasicAuth, HostCheck, is_loopback

        if not is_loopback(s.host) and not s.password and not s.insecure:
            return  # the real dashboard refuses this address; so does this one
        wsgi: Any = self._app
        if s.password:
            wsgi = BasicAuth(wsgi, s.password)
        wsgi = HostCheck(wsgi, s.host, s.allowed_hosts)
        try:
            self._server = _start(wsgi, s.host, s.port, s.max_request_kb)
        except OSError as exc:  # the port is taken: the real dashboard will say so too
            log.warning("no /healthz while waiting for the database: %s", exc)
            return
        if self._out is not None:
            self._out(
                f"waiting for the database; {self._server.url}healthz answers 503 until it opens"
            )

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = self.body()
        if environ.get("PATH_INFO") == "/healthz":
            data = json.dumps(body).encode()
            kind = "application/json"
        else:
            data = (
                f"asnmon is starting: {body['waiting']} ({body['attempts']} attempt(s)); "
                f"{body['database_problem']}\n"
            ).encode()
            kind = "text/plain; charset=utf-8"
        start_response(
            "503 Service Unavailable",
            [("Content-Type", kind), ("Content-Length", str(len(data))), ("Retry-After", "5")],
        )
        return [data]


def _start(wsgi: Any, host: str, port: int, max_request_kb: int) -> ServerHandle:
    from waitress import create_server

    from dashboard.server import ServerHandle

    server = create_server(
        wsgi,
        host=host,
        port=port,
        threads=2,
        ident="asnmon",
        max_request_body_size=max_request_kb * 1024,
    )
    actual = int(server.effective_port)
    thread = threading.Thread(target=server.run, name="asnmon-startup-healthz", daemon=True)
    thread.start()
    shown = f"[{host}]" if ":" in host else host
    return ServerHandle(f"http://{shown}:{actual}/", host, actual, server, thread)
