"""The "Open flags" tab: one card per group of flags (code, severity, cause).

"IS_LOW ×11, injections 62–72, caused by IS_DRIFT" is one card, drawn right
after its cause, with one button that acknowledges all eleven with one
comment. Acknowledged cards leave the list; a toggle shows them.

The button's id carries the NEWEST member's flag id: the server acknowledges
the group's members up to that id, so a flag that arrived after the card was
drawn is never acknowledged unseen (flag ids only grow).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import dcc, html

from asnmon.qc.headline import FlagGroup, RunCounts
from dashboard import style
from dashboard.inputs import MAX_COMMENT

MAX_FLAG_CARDS = 50  # thousands of cards make a page that takes seconds to draw
MAX_MEMBERS_LISTED = 40  # members listed inside one card


def flags_pane(read_only: bool) -> list[Any]:
    note = (
        "Read-only review: acknowledgements cannot be recorded here; record them in the "
        "running monitor (asnmon run) or open the database for review (--review)."
        if read_only
        else "Acknowledging records who looked (the logged-in person, top right) and what "
        "they decided; the flags stay."
    )
    return [
        html.Div(
            className="ack-form",
            children=[
                dcc.Input(
                    id="ack-comment",
                    placeholder="comment (what you checked / decided)",
                    type="text",
                    className="ack-comment",
                    maxLength=MAX_COMMENT,
                ),
                dcc.Checklist(
                    id="show-acked",
                    options=[{"label": " show acknowledged", "value": "on"}],
                    value=[],
                    className="show-acked",
                ),
                html.Span(note, className="hint"),
            ],
        ),
        html.Div(id="ack-result", className="ack-result", role="status"),
        html.Div(id="flag-summary", className="flag-summary"),
        html.Div(id="flag-list"),
    ]


def flag_summary(counts: RunCounts, groups: Sequence[FlagGroup]) -> str:
    """'14 open (13 FAIL, 1 warning) in 3 cards; 2 acknowledged' — the banner's numbers."""
    cards = sum(1 for g in groups if not g.acknowledged)
    open_part = (
        f"{counts.unacknowledged} open ({counts.open_fail} FAIL, {counts.open_warning} "
        f"warning) in {cards} card(s)"
        if counts.unacknowledged
        else "No open flags"
    )
    return f"{open_part}; {counts.acknowledged} acknowledged"


def _member_line(g: FlagGroup, i: int) -> html.Li:
    m = g.members[i]
    value = m.message.split(":", 1)[0] if m.code in ("READ_ERROR", "INCOMPLETE") else ""
    return html.Li(f"{m.who}" + (f" — {value}" if value else ""))


def group_card(g: FlagGroup, *, read_only: bool = False) -> html.Div:
    look = style.severity(g.severity)
    newest = max(g.members, key=lambda m: m.flag_id)
    acks = sum(m.acks for m in g.members)
    n = len(g.members)
    cause = (
        html.Span(f" caused by {g.cause.code} ({g.cause.who})", className="cause")
        if g.cause is not None
        else None
    )
    members = None
    if n > 1:
        items = [_member_line(g, i) for i in range(min(n, MAX_MEMBERS_LISTED))]
        if n > MAX_MEMBERS_LISTED:
            items.append(html.Li(f"… and {n - MAX_MEMBERS_LISTED} more"))
        members = html.Details(
            className="members", children=[html.Summary(f"{n} injections"), html.Ul(items)]
        )
    label = f"Acknowledge all {n}" if n > 1 else "Acknowledge"
    return html.Div(
        className="flag-card" + (" acked" if g.acknowledged else "") + (" caused" if cause else ""),
        id={"type": "flag-card", "key": g.key},
        style={"borderLeftColor": look.colour},
        children=[
            html.Div(
                className="flag-head",
                children=[
                    html.Span(
                        f"{look.icon} {look.word}",
                        className="badge",
                        style={"background": look.colour, "color": look.text},
                    ),
                    html.Strong(f" {g.title} ", className="card-title"),
                    html.Span(f"— {g.where}", className="where"),
                    cause,
                    html.Span(
                        f" ✓ acknowledged ×{acks}" if g.acknowledged else "", className="acked-tag"
                    ),
                ],
            ),
            html.P(newest.message, className="flag-msg"),
            html.P(f"What to do: {newest.action}", className="flag-action")
            if newest.action
            else None,
            members,
            None
            if g.acknowledged
            else html.Button(
                label,
                id={"type": "ack", "flag": newest.flag_id},
                className="ack-btn",
                disabled=read_only,
                n_clicks=0,
            ),
        ],
    )


def flag_cards(
    groups: Sequence[FlagGroup], *, show_acked: bool = False, read_only: bool = False
) -> list[Any]:
    """The cards (first MAX_FLAG_CARDS), most urgent first; acknowledged ones on request."""
    shown = [g for g in groups if show_acked or not g.acknowledged]
    if not shown:
        hidden = sum(1 for g in groups if g.acknowledged)
        more = f" ({hidden} acknowledged card(s) hidden)" if hidden else ""
        return [html.P(f"✔ No open flags.{more}", className="all-clear")]
    cards: list[Any] = [group_card(g, read_only=read_only) for g in shown[:MAX_FLAG_CARDS]]
    if len(shown) > MAX_FLAG_CARDS:
        more = len(shown) - MAX_FLAG_CARDS
        cards.append(
            html.P(
                f"… and {more} more card(s), less urgent or older: filter the injection "
                "table by flag code to see them.",
                className="flag-more",
            )
        )
    return cards
