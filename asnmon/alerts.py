"""Alerts off the screen: a webhook (Slack, Teams, any JSON endpoint) and/or e-mail.

The dashboard only helps someone who looks at it; at 3 a.m. nobody does. An
alert goes out on a new fail-severity flag, a watcher problem (folder lost,
folder back, error) and a change of a run's verdict.

Why the shape: a failing run raises dozens of flags in minutes, so events are
collected for ``batch_seconds`` and sent as one message, at most
``max_per_hour`` messages go out, and what is held back is summarised in the
next message. Sending happens on the alerter's own thread with retries and
back-off; ``notify`` only enqueues, so the ingestion worker never waits on a
mail server, and a failure to notify is logged and shown in ``status()``,
never raised.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal, Protocol

from asnmon.records import Flag, Severity

if TYPE_CHECKING:
    from asnmon.store import Store

log = logging.getLogger("asnmon.alerts")

AlertKind = Literal["flag", "watcher", "verdict", "monitor", "test"]
WebhookKind = Literal["slack", "teams", "generic"]
SmtpSecurity = Literal["starttls", "ssl", "none"]

_MAX_QUEUE = 10_000  # beyond this, events are counted as dropped instead of held
_NOTEWORTHY = frozenset({"at risk", "fail"})  # verdicts whose arrival or departure alerts
_LISTED = 10  # events written out in full in one message; the rest are counted


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One thing worth a person's attention; ``at`` is wall-clock epoch seconds."""

    kind: AlertKind
    title: str
    detail: str = ""
    severity: str = Severity.FAIL.value
    run_id: str | None = None
    code: str | None = None
    at: float = field(default_factory=time.time)
    file: str | None = None  # the injection's file, for a flag (the on_fail hook uses it)
    injection_id: int | None = None


def event_from_flag(
    run_id: str, flag: Flag, file: str | None = None, injection_id: int | None = None
) -> AlertEvent:
    where = f"{file}: " if file else ""
    return AlertEvent(
        kind="flag",
        title=f"{flag.code} in run {run_id}",
        detail=f"{where}{flag.message}" + (f" What to do: {flag.action}" if flag.action else ""),
        severity=flag.severity.value,
        run_id=run_id,
        code=flag.code,
        file=file,
        injection_id=injection_id,
    )


def event_from_watch(kind: str, message: str, at: float | None = None) -> AlertEvent | None:
    """A watcher event (``WatchEvent.kind``/``message``) as an alert, or None for routine ones."""
    titles = {
        "folder_lost": ("FOLDER LOST", Severity.FAIL),
        "folder_back": ("FOLDER BACK", Severity.INFO),
        "error": ("WATCHER ERROR", Severity.FAIL),
    }
    if kind not in titles:
        return None
    title, severity = titles[kind]
    return AlertEvent(
        kind="watcher",
        title=title,
        detail=message,
        severity=severity.value,
        code=kind.upper(),
        at=time.time() if at is None else at,
    )


# The monitor's own health: code -> (title, severity). Each problem alerts when it
# starts and again when it clears, never once per retry.
MONITOR_EVENTS: dict[str, tuple[str, Severity]] = {
    "DATABASE_PROBLEM": ("DATABASE PROBLEM", Severity.FAIL),
    "DATABASE_BACK": ("DATABASE BACK", Severity.INFO),
    "WORKER_PROBLEM": ("WORKER PROBLEM", Severity.FAIL),
    "WORKER_BACK": ("WORKER BACK", Severity.INFO),
    "WORKLIST_PROBLEM": ("WORKLIST PROBLEM", Severity.FAIL),
    "WORKLIST_FIXED": ("WORKLIST FIXED", Severity.INFO),
    "EVENTS_LOST": ("FILE EVENTS LOST", Severity.WARNING),
    "NOT_A_FILE": ("NOT A REGULAR FILE", Severity.WARNING),
    "INSTRUMENT_STALLED": ("INSTRUMENT STALLED", Severity.FAIL),
    "INSTRUMENT_RESUMED": ("INSTRUMENT RESUMED", Severity.INFO),
    "RUN_FINISHED": ("RUN FINISHED", Severity.INFO),  # raised to the verdict's severity
    "ACTION_FAILED": ("ON_FAIL HOOK FAILED", Severity.FAIL),
}


def event_from_monitor(
    code: str, message: str, run_id: str | None = None, severity: Severity | None = None
) -> AlertEvent:
    """A monitor health change (``MONITOR_EVENTS``) as an alert; ``severity`` overrides."""
    title, default = MONITOR_EVENTS[code]
    return AlertEvent(
        kind="monitor",
        title=title,
        detail=message,
        severity=(severity or default).value,
        run_id=run_id,
        code=code,
    )


def event_from_verdict(run_id: str, old: str | None, new: str, reason: str = "") -> AlertEvent:
    severity = {"fail": Severity.FAIL, "at risk": Severity.WARNING}.get(new.lower(), Severity.INFO)
    return AlertEvent(
        kind="verdict",
        title=f"run {run_id}: verdict {old or 'none'} -> {new}",
        detail=reason,
        severity=severity.value,
        run_id=run_id,
        code="VERDICT",
    )


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Where and how often to send; built from Settings by ``from_settings``."""

    instrument: str = "asnmon"
    webhook_url: str | None = None
    webhook_kind: WebhookKind = "generic"
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_security: SmtpSecurity = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_cafile: str | None = None
    mail_from: str | None = None
    mail_to: tuple[str, ...] = ()
    batch_seconds: float = 60.0
    max_per_hour: int = 6
    retries: int = 4
    backoff: float = 5.0
    timeout: float = 15.0

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url) or bool(self.smtp_host and self.mail_to)

    @classmethod
    def from_settings(cls, settings: object) -> AlertConfig:
        """Read the ``[alerts]`` keys off a Settings object; absent keys keep defaults."""
        names = {
            "instrument": "instrument",
            "webhook_url": "webhook",
            "webhook_kind": "webhook_kind",
            "smtp_host": "smtp_host",
            "smtp_port": "smtp_port",
            "smtp_security": "smtp_security",
            "smtp_user": "smtp_user",
            "smtp_password": "smtp_password",
            "smtp_cafile": "smtp_cafile",
            "mail_from": "mail_from",
            "mail_to": "mail_to",
            "batch_seconds": "batch_seconds",
            "max_per_hour": "max_per_hour",
            "retries": "retries",
        }
        values: dict[str, Any] = {}
        for ours, theirs in names.items():
            value = getattr(settings, theirs, None)
            if value is not None:
                values[ours] = tuple(value) if ours == "mail_to" else value
        return cls(**values)


# ---------------------------------------------------------------- message text


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    text: str
    events: tuple[AlertEvent, ...]
    held_back: int  # events summarised (rate limit) rather than listed


def compose(instrument: str, events: Sequence[AlertEvent], held: Sequence[AlertEvent]) -> Message:
    """One message for a batch; events held back by the rate limit are summarised first."""
    all_events = [*held, *events]
    fails = sum(e.severity == Severity.FAIL.value for e in all_events)
    head = f"asnmon {instrument}: {len(all_events)} alert" + ("s" if len(all_events) != 1 else "")
    if fails:
        head += f" ({fails} fail)"
    lines: list[str] = []
    if held:
        counts = Counter(e.code or e.kind for e in held)
        lines.append(
            f"{len(held)} alert(s) held back by the rate limit since "
            f"{_clock(held[0].at)}: " + ", ".join(f"{n} x {c}" for c, n in counts.most_common())
        )
    for e in list(events)[:_LISTED]:
        lines.append(f"[{_clock(e.at)}] {e.severity.upper()} {e.title}: {e.detail}".rstrip(": "))
    if len(events) > _LISTED:
        more = Counter(e.code or e.kind for e in list(events)[_LISTED:])
        lines.append(
            f"... and {len(events) - _LISTED} more: "
            + ", ".join(f"{n} x {c}" for c, n in more.most_common())
        )
    return Message(head, "\n".join(lines), tuple(all_events), len(held))


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S")


def webhook_payload(kind: WebhookKind, message: Message, instrument: str) -> dict[str, Any]:
    """The JSON body each service accepts.

    Slack incoming webhooks take ``{"text": ...}``. Teams takes an Adaptive
    Card wrapped in a ``message`` (the Workflows "post to a channel when a
    webhook request is received" template; the old Office 365 connectors that
    took MessageCards are being retired by Microsoft). ``generic`` is our own
    shape for scripts and other chat systems.
    """
    if kind == "slack":
        return {"text": f"*{message.title}*\n{message.text}"}
    if kind == "teams":
        body: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": message.title, "weight": "Bolder", "wrap": True},
        ]
        body += [
            {"type": "TextBlock", "text": line, "wrap": True} for line in message.text.split("\n")
        ]
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": body,
                    },
                }
            ],
        }
    return {
        "source": "asnmon",
        "instrument": instrument,
        "title": message.title,
        "text": message.text,
        "held_back": message.held_back,
        "events": [
            {
                "kind": e.kind,
                "severity": e.severity,
                "code": e.code,
                "title": e.title,
                "detail": e.detail,
                "run_id": e.run_id,
                "at": datetime.fromtimestamp(e.at).isoformat(timespec="seconds"),
            }
            for e in message.events
        ],
    }


# ---------------------------------------------------------------- channels


class WebhookChannel:
    """JSON POST; any 2xx is success, anything else (or no answer) a failure to retry."""

    name = "webhook"

    def __init__(self, url: str, kind: WebhookKind, instrument: str, timeout: float) -> None:
        self.url = url
        self.kind = kind
        self.instrument = instrument
        self.timeout = timeout

    def send(self, message: Message) -> None:
        data = json.dumps(webhook_payload(self.kind, message, self.instrument)).encode()
        request = urllib.request.Request(
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "asnmon-alerts"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if not 200 <= response.status < 300:
                    raise AlertSendError(f"webhook answered HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            raise AlertSendError(f"webhook answered HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise AlertSendError(f"webhook unreachable: {exc}") from exc


class EmailChannel:
    """SMTP with STARTTLS (port 587), implicit TLS (465) or plain (lab relays), optional login."""

    name = "email"

    def __init__(self, config: AlertConfig) -> None:
        if not config.smtp_host or not config.mail_to:
            raise ValueError("e-mail alerts need smtp_host and mail_to")
        self.config = config

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.smtp_cafile)

    def send(self, message: Message) -> None:
        c = self.config
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = c.mail_from or f"asnmon-{c.instrument}@localhost"
        mail["To"] = ", ".join(c.mail_to)
        mail.set_content(message.text + "\n\n-- asnmon on " + c.instrument + "\n")
        host = c.smtp_host or ""
        try:
            smtp: smtplib.SMTP
            if c.smtp_security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    host, c.smtp_port, timeout=c.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(host, c.smtp_port, timeout=c.timeout)
            with smtp:
                smtp.ehlo()
                if c.smtp_security == "starttls":
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if c.smtp_user:
                    smtp.login(c.smtp_user, c.smtp_password or "")
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise AlertSendError(f"e-mail via {host}:{c.smtp_port} failed: {exc}") from exc


class AlertSendError(Exception):
    """A channel could not deliver; caught by the alerter, logged, shown in status."""


class Channel(Protocol):
    """What a channel looks like to the alerter (tests may pass their own)."""

    name: str

    def send(self, message: Message) -> None: ...


# ---------------------------------------------------------------- the alerter


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


class AlertFeed:
    """New fail flags and verdict changes, read from the store by whoever calls ``poll``.

    Reading the store (rather than hooking every place a flag is written)
    catches all of them: per-injection flags, INCOMPLETE/CONVERT_ERROR,
    run-level flags after a refit, Westgard rules. Run-level flags are
    re-inserted whenever the run is re-judged, so each (run, injection, code)
    alerts once. History present at construction is not alerted.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._seq = store.last_change()
        self._flag_id = store.max_flag_id()
        self._verdicts = {r: v for r, (v, _) in store.run_verdicts().items()}
        self._seen: set[tuple[str, int | None, str]] = set()

    def poll(self) -> list[AlertEvent]:
        """Events since the last call; one cheap query when nothing changed."""
        seq = self.store.last_change()
        if seq == self._seq:
            return []
        self._seq = seq
        events: list[AlertEvent] = []
        for row in self.store.alert_flags_since(self._flag_id):
            self._flag_id = max(self._flag_id, int(row["flag_id"]))
            key = (str(row["run_id"]), row["injection_id"], str(row["code"]))
            if key in self._seen:
                continue
            self._seen.add(key)
            flag = Flag(
                code=str(row["code"]),
                severity=Severity(row["severity"]),
                message=row["message"] or "",
                action=row["action"] or "",
            )
            injection = row["injection_id"]
            events.append(
                event_from_flag(
                    key[0], flag, row["file"], int(injection) if injection is not None else None
                )
            )
        verdicts = self.store.run_verdicts()
        for run_id, (verdict, reason) in verdicts.items():
            old = self._verdicts.get(run_id)
            if old is not None and old != verdict and {old, verdict} & _NOTEWORTHY:
                events.append(event_from_verdict(run_id, old, verdict, reason))
            self._verdicts[run_id] = verdict
        return events
