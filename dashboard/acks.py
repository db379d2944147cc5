"""The acknowledgement form: one comment for one flag, a whole group, or all shown.

Who acknowledges is the logged-in person (or the bench without accounts,
``dashboard.auth``), never a typed name. Acknowledged flags leave the list
unless "show acknowledged" is ticked; their cards then say who and when.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html

from dashboard.inputs import MAX_COMMENT

GROUP_MIN = 2  # a group button for a code with at least this many open flags


def ack_form(read_only: bool) -> list[Any]:
    note = (
        "Read-only review: acknowledgements cannot be recorded here; record them in the "
        "running monitor (asnmon run) or open the database for review "
        "(asnmon dashboard --review)."
        if read_only
        else "Acknowledging records who looked (the logged-in person) and what they decided; "
        "the flag stays."
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
                html.Button(
                    "Acknowledge all shown",
                    id="ack-shown",
                    className="ack-btn",
                    n_clicks=0,
                    disabled=read_only,
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
    ]


def visible(rows: Sequence[Mapping[str, Any]], show_acked: bool) -> list[Mapping[str, Any]]:
    """The open-flag rows to draw: unacknowledged only, unless asked for all."""
    return [r for r in rows if show_acked or not r["acks"]]


def group_buttons(rows: Sequence[Mapping[str, Any]], *, read_only: bool) -> html.Div | None:
    """ "Acknowledge all 12 IS_LOW": one button per code with several unacknowledged flags."""
    counts = Counter(r["code"] for r in rows if not r["acks"])
    groups = [(code, n) for code, n in counts.most_common() if n >= GROUP_MIN]
    if not groups:
        return None
    return html.Div(
        className="ack-groups",
        children=[
            html.Button(
                f"Acknowledge all {n} {code}",
                id={"type": "ack-code", "code": code},
                className="ack-btn ack-group",
                n_clicks=0,
                disabled=read_only,
            )
            for code, n in groups
        ],
    )
