"""Where alerts go and how often: the ``[alerts]`` settings as one frozen record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

WebhookKind = Literal["slack", "teams", "generic"]
SmtpSecurity = Literal["starttls", "ssl", "none"]


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
