"""Serving the dashboard with waitress, in a background thread, with optional basic auth.

The dashboard can acknowledge flags, so anyone who reaches it can write to the
audit trail: binding to anything but loopback needs a password (or an explicit
``insecure=True`` for a lab network the site has decided to trust).
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dash
from waitress import create_server, wasyncore

from asnmon.errors import SettingsError
from dashboard.guard import (
    MAX_REQUEST_KB,
    USER,
    BasicAuth,
    HostCheck,
    ThrottlePolicy,
    WsgiApp,
    is_loopback,
)

__all__ = ["USER", "BasicAuth", "ServerHandle", "is_loopback", "serve"]

log = logging.getLogger("asnmon.dashboard")

# After a change, pages waiting for a shared view computation each hold a thread;
# with 6 the 1 s ticks of 20 pages queued behind them (p95 97 ms, 24: 34 ms;
# benchmarks/dashboard_load.py). An idle thread costs a stack and nothing else.
THREADS = 24
# 20 open pages, each with up to 6 kept-alive connections (a browser's limit per
# host), are 120 connections: waitress's default limit of 100 stops accepting.
CONNECTIONS = 250


@dataclass(slots=True)
class ServerHandle:
    """A running server: ``url`` to open, ``stop()`` to shut it down."""

    url: str
    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    def stop(self, timeout: float = 5.0) -> None:
        # Finish the requests in hand first: closing the server under a running task
        # makes waitress write to a closed trigger (EBADF tracebacks on shutdown).
        dispatcher = getattr(self._server, "task_dispatcher", None)
        if dispatcher is not None:
            dispatcher.shutdown(cancel_pending=True, timeout=timeout)
        if not self._thread.is_alive():
            self._server.close()
            return
        # waitress's socket loop is single-threaded: close its sockets from inside it,
        # else a select() in flight meets a descriptor closed under it (EBADF). Once
        # its map is empty the loop, and so the thread, ends.
        server = self._server
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError:  # the trigger is closed already: the loop is on its way out
            log.debug("dashboard server: trigger already closed at stop", exc_info=True)
            wasyncore.close_all(server._map, ignore_all=True)
        self._thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    app: dash.Dash,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    password: str | None = None,
    insecure: bool = False,
    threads: int = THREADS,
    allowed_hosts: Sequence[str] = (),
    max_request_kb: int = MAX_REQUEST_KB,
    throttle: ThrottlePolicy | None = None,
) -> ServerHandle:
    """Start waitress in a daemon thread; ``port=0`` picks a free port.

    In front of the app, outermost first: waitress refuses a body over
    ``max_request_kb`` (413), ``HostCheck`` a Host the dashboard is not reached
    by (400), ``BasicAuth`` a wrong password (401; 429 when throttled).
    """
    if not is_loopback(host) and not password and not insecure:
        raise SettingsError(
            f"the dashboard would listen on {host}, reachable from other computers, without "
            "a password: anyone on the network could read results and acknowledge flags. "
            "Set a password ([dashboard] password or ASNMON_DASHBOARD_PASSWORD; user "
            "'asnmon'), bind to 127.0.0.1, or pass --insecure if the site accepts an open "
            "dashboard."
        )
    wsgi: WsgiApp = app.server.wsgi_app  # type: ignore[assignment]
    if password:
        wsgi = BasicAuth(wsgi, password, policy=throttle)
    wsgi = HostCheck(wsgi, host, allowed_hosts)
    app.server.config["MAX_CONTENT_LENGTH"] = max_request_kb * 1024  # Flask's own check
    server = create_server(
        wsgi,
        host=host,
        port=port,
        threads=threads,
        ident="asnmon",
        max_request_body_size=max_request_kb * 1024,
        connection_limit=CONNECTIONS,
    )
    # Everything imported and built so far lives as long as the process: keep it out of
    # the cyclic collector, whose full passes over Dash/plotly's objects otherwise add
    # ~170 ms to one refresh in five (measured: benchmarks/dashboard.py, 2,000 injections).
    gc.collect()
    gc.freeze()
    actual = int(server.effective_port)  # type: ignore[union-attr]
    thread = threading.Thread(target=server.run, name="asnmon-dashboard", daemon=True)
    thread.start()
    shown = f"[{host}]" if ":" in host else host
    return ServerHandle(f"http://{shown}:{actual}/", host, actual, server, thread)
