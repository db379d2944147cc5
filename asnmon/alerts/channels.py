"""The ways a message leaves the machine: a webhook POST and SMTP mail.

A channel sends once and raises ``AlertSendError`` when it cannot; retries,
back-off and rate limits are the alerter's.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Protocol

from asnmon.alerts.config import AlertConfig, WebhookKind
from asnmon.alerts.message import Message, webhook_payload


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
