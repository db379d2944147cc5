"""Work shared by every open page: the change counter and each view per change.

Twenty pages polling every second ask the same questions: "anything new?"
and, after a change, the same views with the same inputs. Answered one by
one, the ticks queue behind twenty copies of each heavy view on the server's
threads (measured: benchmarks/dashboard_load.py). So:

* ``ChangeCounter``: ``Store.last_change()`` queried at most every ``max_age``
  seconds, however many pages ask; one thread refreshes while the others
  answer from the value in hand;
* ``PerChange``: a view's output computed once per (change counter, inputs);
  a page asking while it is being computed waits for that computation
  instead of starting its own;
* ``TickFastPath``: a WSGI layer that answers the tick that finds nothing new
  (HTTP 204, as Dash does) from the counter, without Flask or Dash.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from asnmon.store import Store
from dashboard.guard import WsgiApp

T = TypeVar("T")
# A tick that finds nothing new is answered from a counter at most this old: the
# page's own 1 s interval dwarfs it (a flag reaches the screen 0.2 s later at most).
MAX_AGE = 0.2


class ChangeCounter:
    """The store's change counter, re-read at most every ``max_age`` seconds."""

    def __init__(
        self, store: Store, max_age: float = MAX_AGE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._seq: int | None = None
        self._at = float("-inf")
        self.queries = 0  # database reads so far (tests, benchmark)

    def value(self) -> int:
        seq = self._seq
        if seq is not None and self.clock() - self._at < self.max_age:
            return seq
        # One thread re-reads; the others answer from the value in hand meanwhile.
        if not self._lock.acquire(blocking=seq is None):
            return seq  # type: ignore[return-value]  # blocking=False only when seq is set
        try:
            if self._seq is None or self.clock() - self._at >= self.max_age:
                self._seq = self.store.last_change()
                self._at = self.clock()
                self.queries += 1
            return self._seq
        finally:
            self._lock.release()


def _key(args: object) -> str:
    return json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)


class PerChange:
    """Each view's output once per (change counter, inputs), shared by all pages.

    Only the last two counter values are kept (a page may still be one change
    behind); older outputs, figures of thousands of points, are dropped.
    """

    def __init__(self, counter: ChangeCounter, keep: int = 128) -> None:
        self.counter = counter
        self.keep = keep
        self._recent: list[int] = []  # the two newest counter values seen
        self._lock = threading.Lock()
        self._done: OrderedDict[tuple[str, int, str], Any] = OrderedDict()
        self._running: dict[tuple[str, int, str], Future[Any]] = {}
        self.computed = 0  # computations so far (tests, benchmark)

    def get(self, name: str, args: object, compute: Callable[[], T], seq: int | None = None) -> T:
        """``compute()``'s value for (``seq``, default the counter's, ``args``)."""
        key = (name, self.counter.value() if seq is None else seq, _key(args))
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]  # type: ignore[no-any-return]
            running = self._running.get(key)
            if running is None:
                mine: Future[Any] = Future()
                self._running[key] = mine
        if running is not None:
            return running.result()  # type: ignore[no-any-return]
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._running[key]
            mine.set_exception(exc)  # the waiters see the same error; nothing is kept
            raise
        with self._lock:
            del self._running[key]
            self._done[key] = value
            self.computed += 1
            self._forget_old(key[1])
        mine.set_result(value)
        return value

    def _forget_old(self, seq: int) -> None:
        if seq not in self._recent:
            self._recent = sorted([*self._recent, seq])[-2:]
            oldest = self._recent[0]
            for k in [k for k in self._done if k[1] < oldest]:
                del self._done[k]
        while len(self._done) > self.keep:
            self._done.popitem(last=False)

    def __len__(self) -> int:
        return len(self._done)


class TickFastPath:
    """WSGI: the page's "anything new?" tick, when nothing is, answered 204 here.

    Only a request that is exactly the page's tick (its callback, its shape, a
    valid session cookie) for which ``unchanged(seen)`` says nothing is new is
    answered here; everything else goes on to Dash, which checks it in full
    (``dashboard.inputs``) and reports what changed.
    """

    def __init__(
        self,
        app: WsgiApp,
        unchanged: Callable[[dict[str, Any]], bool],
        *,
        output: str,
        state: str,
        valid: Callable[[object, dict[str, Any]], bool],
        max_bytes: int = 4096,
    ) -> None:
        self.app = app
        self.unchanged = unchanged
        self.output = output
        self.state = state  # "id.property" of the store holding the last seen counter
        self.valid = valid  # (body, environ): the full shape check, and the session cookie
        self.max_bytes = max_bytes
        self.answered = 0

    def _seen(self, body: object) -> dict[str, Any] | None:
        if not isinstance(body, dict) or body.get("output") != self.output:
            return None
        for entry in body.get("state") or ():
            if isinstance(entry, dict) and f"{entry.get('id')}.{entry.get('property')}" == (
                self.state
            ):
                value = entry.get("value")
                return value if isinstance(value, dict) else None
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "POST" and str(environ.get("PATH_INFO", "")).endswith(
            "_dash-update-component"
        ):
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if 0 < length <= self.max_bytes:
                raw = environ["wsgi.input"].read(length)
                environ["wsgi.input"] = io.BytesIO(raw)  # Dash reads it again if we pass
                try:
                    body = json.loads(raw)
                except (ValueError, RecursionError):
                    body = None
                seen = self._seen(body)
                if seen is not None and self.valid(body, environ) and self.unchanged(seen):
                    self.answered += 1
                    start_response("204 NO CONTENT", [("Content-Length", "0")])
                    return [b""]
        return self.app(environ, start_response)
