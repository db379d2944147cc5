"""WSGI guards in front of the dashboard: the Host header, basic auth, guess throttling.

They run before Flask or Dash sees a request, so a refused request costs
microseconds and never reaches a callback:

* ``HostCheck``: DNS rebinding lets a web page whose name resolves to
  127.0.0.1 talk to the dashboard as if it were same-origin. Its requests
  carry that page's name in ``Host``; only the names the dashboard is really
  reached by pass (loopback names, the bound address, ``allowed_hosts``).
  An IP literal cannot be rebound, so on a wildcard binding (0.0.0.0, ::) any
  IP literal passes, with the machine's own names.
* ``BasicAuth``: user ``asnmon`` and the password, compared in constant time,
  with a per-address lockout that doubles after each failure past the first
  few (``ThrottlePolicy``), answered HTTP 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
import math
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("asnmon.dashboard")

USER = "asnmon"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
# The largest request the page sends is the run list it echoes back (about 80 bytes
# a run: ~30 KB for a year of daily runs); 1 MiB leaves a wide margin and refuses a
# 50 MB comment with HTTP 413 before anything parses it.
MAX_REQUEST_KB = 1024


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def host_name(header: str) -> str:
    """``Host`` without its port, lower case, without a trailing dot (``[::1]`` -> ``::1``)."""
    h = header.strip().lower()
    if h.startswith("["):
        h = h[1:].partition("]")[0]
    elif h.count(":") == 1:
        h = h.partition(":")[0]
    return h.rstrip(".")


def _plain(text: str, status: str, start_response: Callable[..., Any]) -> list[bytes]:
    body = f"asnmon: {text}\n".encode()
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


class HostCheck:
    """WSGI middleware: 400 for any ``Host`` the dashboard is not reached by."""

    def __init__(self, app: WsgiApp, bound: str, allowed: Sequence[str] = ()) -> None:
        self.app = app
        names = {*LOOPBACK_NAMES, "127.0.0.1", "::1", host_name(bound)}
        names |= {host_name(a) for a in allowed if a.strip()}
        bound_ip = _ip(bound)
        self.any_ip = bound_ip is not None and bound_ip.is_unspecified
        if self.any_ip:
            # every interface: the machine's own names reach it too
            names |= {host_name(socket.gethostname()), host_name(socket.getfqdn())}
        self.names = frozenset(n for n in names if n)

    def allows(self, header: str | None) -> bool:
        if not header:
            return False  # every browser sends Host; without one nothing can be checked
        name = host_name(header)
        if name in self.names:
            return True
        ip = _ip(name)
        return ip is not None and (self.any_ip or ip.is_loopback)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        header = environ.get("HTTP_HOST")
        if self.allows(header):
            return self.app(environ, start_response)
        log.warning(
            "dashboard: refused a request for Host %r from %s (not an address this "
            "dashboard is reached by; add it to [dashboard] allowed_hosts if it is)",
            (header or "")[:100],
            environ.get("REMOTE_ADDR", "?"),
        )
        return _plain(
            "this dashboard is not served under that host name (Host header refused; "
            "a lab DNS name goes into [dashboard] allowed_hosts).",
            "400 Bad Request",
            start_response,
        )


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Failed passwords tolerated per client address, then a doubling lockout.

    Defaults after OWASP's Authentication Cheat Sheet ("account lockout" with an
    exponentially growing lockout) and NIST SP 800-63B §5.2.2 (no more than 100
    consecutive failures): 5 free failures, then 1 s, 2 s, 4 s ... up to 15 min.
    """

    free_failures: int = 5
    first_lockout: float = 1.0
    max_lockout: float = 900.0
    remember: int = 10_000  # addresses tracked at most (the oldest are forgotten)


class Throttle:
    """Failures per client address; ``locked(addr)`` says for how long it must wait."""

    def __init__(self, policy: ThrottlePolicy, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self.clock = clock
        self._lock = threading.Lock()
        self._state: OrderedDict[str, tuple[int, float]] = OrderedDict()  # failures, until

    def locked(self, addr: str) -> float:
        """Seconds ``addr`` still has to wait (0 when it may try)."""
        with self._lock:
            until = self._state.get(addr, (0, 0.0))[1]
        return max(0.0, until - self.clock())

    def failed(self, addr: str) -> tuple[int, float]:
        """Count a failure: failures in a row, and the lockout it starts (0 while free)."""
        p = self.policy
        with self._lock:
            failures = self._state.pop(addr, (0, 0.0))[0] + 1
            over = failures - p.free_failures
            wait = min(p.first_lockout * 2.0 ** (over - 1), p.max_lockout) if over > 0 else 0.0
            self._state[addr] = (failures, self.clock() + wait)
            while len(self._state) > p.remember:
                self._state.popitem(last=False)
        return failures, wait

    def succeeded(self, addr: str) -> None:
        with self._lock:
            self._state.pop(addr, None)


class BasicAuth:
    """WSGI middleware: HTTP basic auth, user ``asnmon``, constant-time comparison, throttled."""

    def __init__(
        self,
        app: WsgiApp,
        password: str,
        realm: str = "asnmon",
        policy: ThrottlePolicy | None = None,
    ) -> None:
        self.app = app
        self._expected = f"{USER}:{password}".encode()
        self.realm = realm
        self.throttle = Throttle(policy or ThrottlePolicy())

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        addr = str(environ.get("REMOTE_ADDR", "?"))
        wait = self.throttle.locked(addr)
        if wait > 0:
            # not even a right password is checked now: a lockout that answered
            # "right" would still let a guesser test one password per request
            return self._too_many(wait, start_response)
        header = environ.get("HTTP_AUTHORIZATION", "")
        if self._ok(header):
            self.throttle.succeeded(addr)
            return self.app(environ, start_response)
        if header:  # a browser's first request carries no password: not a guess
            failures, wait = self.throttle.failed(addr)
            if wait > 0:
                log.warning(
                    "dashboard: %d wrong passwords in a row from %s; refusing it for %.3g s "
                    "(HTTP 429)",
                    failures,
                    addr,
                    wait,
                )
                return self._too_many(wait, start_response)
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", f'Basic realm="{self.realm}", charset="UTF-8"'),
                ("Content-Type", "text/plain; charset=utf-8"),
            ],
        )
        return [b"asnmon: this dashboard needs the user 'asnmon' and its password.\n"]

    @staticmethod
    def _too_many(wait: float, start_response: Callable[..., Any]) -> list[bytes]:
        seconds = max(1, math.ceil(wait))
        body = (
            f"asnmon: too many wrong passwords from this address; try again in {seconds} s.\n"
        ).encode()
        start_response(
            "429 Too Many Requests",
            [
                ("Retry-After", str(seconds)),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    def _ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return False
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected)
