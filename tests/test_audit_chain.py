"""The audit trail's hash chain (asnmon.audit), without a database."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asnmon.audit import GENESIS, Event, as_json, canonical, seal, verify_chain

T0 = datetime(2026, 5, 6, 3, 14, 15, 926535)


def chain(n: int) -> list[Event]:
    events: list[Event] = []
    prev = GENESIS
    for i in range(1, n + 1):
        e = seal(
            event_id=i,
            at_utc=T0 + timedelta(seconds=i),
            prev_hash=prev,
            run_id="run-1",
            injection_id=i * 10,
            actor="rita",
            role="reviewer",
            action="acknowledge",
            target=f"flag {i}",
            old=None,
            new=as_json({"comment": f"looked at {i}", "µM": 1.5}),
            reason="",
        )
        events.append(e)
        prev = e.hash
    return events


def test_an_intact_chain_verifies() -> None:
    assert verify_chain(chain(5)) == []
    assert verify_chain([]) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "paul"),
        ("reason", "because"),
        ("new", '{"comment":"nothing to see"}'),
        ("at_utc", T0),
        ("injection_id", 99),
        ("run_id", None),
    ],
)
def test_changing_any_field_names_that_event(field: str, value: object) -> None:
    events = chain(5)
    events[2] = dataclasses.replace(events[2], **{field: value})
    problems = verify_chain(events)
    assert problems, field
    assert problems[0].startswith("event 3 ")
    assert "content does not match its hash" in problems[0]


def test_a_removed_event_is_found() -> None:
    events = chain(5)
    del events[1]
    problems = verify_chain(events)
    assert problems[0].startswith("event 2 is missing")
    assert any("event 3" in p and "link" in p for p in problems)


def test_rehashing_one_event_breaks_the_next_link() -> None:
    events = chain(4)
    forged = seal(**{**_fields(events[1]), "reason": "forged", "prev_hash": events[1].prev_hash})
    events[1] = forged
    problems = verify_chain(events)
    assert len(problems) == 1
    assert problems[0].startswith("event 3 ") and "link" in problems[0]


def _fields(e: Event) -> dict[str, object]:
    d = dataclasses.asdict(e)
    d.pop("hash")
    return d


@given(st.dictionaries(st.text(max_size=5), st.floats() | st.integers() | st.text(max_size=5)))
def test_canonical_is_strict_json_that_reads_back(value: dict[str, object]) -> None:
    text = canonical(value)
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert canonical(back) == text  # a stored value re-hashes to the same text
    assert list(back) == sorted(back)


def test_canonical_orders_keys_and_keeps_unicode() -> None:
    assert canonical({"b": 1, "a": "µM"}) == '{"a":"µM","b":1}'
    assert canonical({"x": float("nan")}) == '{"x":"nan"}'
