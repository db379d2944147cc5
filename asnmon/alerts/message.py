"""A batch of events as one message: its text, and the JSON body each webhook takes.

Pure functions: the alerter decides what goes in a message, these only write it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asnmon.alerts.config import WebhookKind
from asnmon.alerts.events import AlertEvent
from asnmon.records import Severity

_LISTED = 10  # events written out in full in one message; the rest are counted


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
