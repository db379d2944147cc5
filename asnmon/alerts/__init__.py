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

One module per responsibility: ``events`` (what happened), ``config`` (where
to), ``message`` (the text and webhook bodies), ``channels`` (webhook, e-mail),
``alerter`` (batching, rate limit, retries on its thread), ``feed`` (new flags
and verdicts read from the store). Import from ``asnmon.alerts``.
"""

from __future__ import annotations

from asnmon.alerts.alerter import Alerter
from asnmon.alerts.channels import AlertSendError, Channel, EmailChannel, WebhookChannel
from asnmon.alerts.config import AlertConfig, SmtpSecurity, WebhookKind
from asnmon.alerts.events import (
    MONITOR_EVENTS,
    AlertEvent,
    AlertKind,
    event_from_flag,
    event_from_monitor,
    event_from_verdict,
    event_from_watch,
)
from asnmon.alerts.feed import AlertFeed
from asnmon.alerts.message import Message, compose, webhook_payload

__all__ = [
    "MONITOR_EVENTS",
    "AlertConfig",
    "AlertEvent",
    "AlertFeed",
    "AlertKind",
    "AlertSendError",
    "Alerter",
    "Channel",
    "EmailChannel",
    "Message",
    "SmtpSecurity",
    "WebhookChannel",
    "WebhookKind",
    "compose",
    "event_from_flag",
    "event_from_monitor",
    "event_from_verdict",
    "event_from_watch",
    "webhook_payload",
]
