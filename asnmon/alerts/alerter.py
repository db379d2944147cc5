"""The alerter's thread: collects events for ``batch_seconds``, rate-limits, retries.

``notify`` only enqueues, so the ingestion worker never waits on a mail server;
what the hourly limit holds back is summarised in the next message.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from asnmon.alerts.channels import AlertSendError, Channel, EmailChannel, WebhookChannel
from asnmon.alerts.config import AlertConfig
from asnmon.alerts.events import AlertEvent
from asnmon.alerts.message import Message, compose

log = logging.getLogger("asnmon.alerts")

_MAX_QUEUE = 10_000  # beyond this, events are counted as dropped instead of held


@dataclass(slots=True)
class _ChannelState:
    sent: int = 0
    failed: int = 0
    last_ok: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None


class Alerter:
    """Batches, rate-limits and sends alerts on its own thread.

    ``notify`` never blocks and never raises. ``status()`` is a plain dict for
    the dashboard's health view.
    """

    def __init__(
        self,
        config: AlertConfig,
        channels: Sequence[Channel] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        if channels is None:
            built: list[Channel] = []
            if config.webhook_url:
                built.append(
                    WebhookChannel(
                        config.webhook_url, config.webhook_kind, config.instrument, config.timeout
                    )
                )
            if config.smtp_host and config.mail_to:
                built.append(EmailChannel(config))
            channels = built
        self.channels = list(channels)
        self._clock = clock
        self._queue: queue.Queue[AlertEvent | None] = queue.Queue(maxsize=_MAX_QUEUE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="asnmon-alerts", daemon=True)
        self._lock = threading.Lock()
        self._sent_at: deque[float] = deque()  # monotonic times of messages sent, last hour
        self._held: list[AlertEvent] = []
        self._state = {ch.name: _ChannelState() for ch in self.channels}
        self._events = 0
        self._messages = 0
        self._dropped = 0
        self._last_sent: float | None = None
        self._idle = threading.Condition()
        self._busy = False

    # ------------------------------------------------------------ public

    def start(self) -> None:
        if self.channels and not self._thread.is_alive():
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Send what is collected (one attempt per channel, no back-off), then end the thread."""
        self._stop.set()
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            self._thread.join(timeout)

    def notify(self, event: AlertEvent | None) -> None:
        """Enqueue an event (None is ignored so callers can pass ``event_from_watch(...)``)."""
        if event is None or not self.channels or self._stop.is_set():
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self._dropped += 1

    def notify_all(self, events: Iterable[AlertEvent]) -> None:
        for e in events:
            self.notify(e)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enabled": bool(self.channels),
                "running": self._thread.is_alive(),
                "events": self._events,
                "messages": self._messages,
                "queued": self._queue.qsize(),
                "held_back": len(self._held),
                "dropped": self._dropped,
                "last_sent": self._last_sent,
                "channels": {
                    name: {
                        "sent": st.sent,
                        "failed": st.failed,
                        "last_ok": st.last_ok,
                        "last_error": st.last_error,
                        "last_error_at": st.last_error_at,
                        "ok": st.last_error is None
                        or (st.last_ok is not None and st.last_ok > (st.last_error_at or 0)),
                    }
                    for name, st in self._state.items()
                },
            }

    def wait_idle(self, timeout: float) -> bool:
        """True once every queued event has been sent or held (tests and shutdown wait on it)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy or self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    # ------------------------------------------------------------ the thread

    def _loop(self) -> None:
        while True:
            wake = self._next_slot() if self._held else None
            try:
                first = self._queue.get(timeout=None if wake is None else max(0.0, wake))
            except queue.Empty:
                first = None
                if self._held and self._slot_free():
                    self._deliver([])
                continue
            batch: list[AlertEvent] = []
            with self._idle:
                self._busy = True
            try:
                if first is not None:
                    batch.append(first)
                    self._collect(batch)
                if batch or (self._held and self._slot_free()):
                    self._deliver(batch)
            finally:
                for _ in range(len(batch) + (1 if first is None else 0)):
                    self._queue.task_done()
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()
            if self._stop.is_set():
                self._drain_on_stop()
                return

    def _collect(self, batch: list[AlertEvent]) -> None:
        """Keep taking events until ``batch_seconds`` after the first one (or stop)."""
        deadline = self._clock() + self.config.batch_seconds
        while not self._stop.is_set():
            left = deadline - self._clock()
            if left <= 0:
                return
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                return
            if item is None:
                self._queue.task_done()
                return
            batch.append(item)

    def _drain_on_stop(self) -> None:
        rest: list[AlertEvent] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
            if item is not None:
                rest.append(item)
        if rest or self._held:
            self._deliver(rest, final=True)

    def _slot_free(self) -> bool:
        now = self._clock()
        while self._sent_at and now - self._sent_at[0] >= 3600.0:
            self._sent_at.popleft()
        return len(self._sent_at) < self.config.max_per_hour

    def _next_slot(self) -> float:
        """Seconds until the rate limit lets the next message out."""
        if self._slot_free():
            return 0.0
        return max(0.0, self._sent_at[0] + 3600.0 - self._clock())

    def _deliver(self, batch: list[AlertEvent], *, final: bool = False) -> None:
        with self._lock:
            self._events += len(batch)
        if not self._slot_free():
            with self._lock:
                self._held.extend(batch)
                n_held = len(self._held)
            if final:
                log.warning("stopping: %d alert(s) not sent (hourly limit reached)", n_held)
            else:
                log.info("alert rate limit reached: %d event(s) held back", n_held)
            return
        with self._lock:
            held, self._held = self._held, []
        message = compose(self.config.instrument, batch, held)
        self._sent_at.append(self._clock())
        delivered = False
        for channel in self.channels:
            delivered |= self._send(channel, message, retry=not final)
        with self._lock:
            self._messages += 1
            if delivered:
                self._last_sent = time.time()

    def _send(self, channel: Channel, message: Message, *, retry: bool) -> bool:
        attempts = 1 + (max(0, self.config.retries) if retry else 0)
        state = self._state[channel.name]
        for attempt in range(attempts):
            try:
                channel.send(message)
            except AlertSendError as exc:
                with self._lock:
                    state.failed += 1
                    state.last_error = str(exc)
                    state.last_error_at = time.time()
                last = attempt == attempts - 1
                log.warning(
                    "alert via %s failed (attempt %d of %d): %s%s",
                    channel.name,
                    attempt + 1,
                    attempts,
                    exc,
                    " - giving up on this message" if last else "",
                )
                if last or self._stop.wait(self.config.backoff * 2**attempt):
                    return False
                continue
            with self._lock:
                state.sent += 1
                state.last_ok = time.time()
            return True
        return False
