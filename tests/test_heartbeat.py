"""The heartbeat's rules: pace from start stamps, stall, staleness (pure functions)."""

from __future__ import annotations

import pytest

from asnmon.heartbeat import (
    RunPace,
    judge_stall,
    median_interval,
    monitor_seen,
    pace_of,
    parse_stamp,
    status_values,
)

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        ([], None),
        ([T0], None),
        ([T0, T0 + 600], None),  # one interval is one injection's accident
        ([T0, T0 + 600, T0 + 1200], 600.0),
        ([T0 + 1200, T0, None, T0 + 600], 600.0),  # order of arrival does not matter
        ([T0, T0 + 600, T0 + 1200, T0 + 4800, T0 + 5400], 600.0),  # one long gap
        ([T0, T0, T0 + 60, T0 + 120], 60.0),  # the same stamp twice (a duplicate) is no step
    ],
)
def test_median_interval(starts: list[float | None], expected: float | None) -> None:
    assert median_interval(starts) == expected


def pace(n: int, planned: int | None, every: float = 600.0) -> RunPace:
    return pace_of(
        "seq",
        starts=[T0 + k * every for k in range(n)],
        written=[T0 + k * every + 500 for k in range(n)],
        positions=list(range(1, n + 1)),
        planned=planned,
    )


def test_stalled_after_factor_times_the_median_interval_and_not_before() -> None:
    p = pace(10, 30)
    last = T0 + 9 * 600 + 500
    assert p.median_interval == 600.0
    assert p.expected_next_at == last + 600
    assert p.expected_end_at == last + 20 * 600
    assert judge_stall(p, last + 3 * 600 - 1, 3.0) is None
    stall = judge_stall(p, last + 3 * 600 + 1, 3.0)
    assert stall is not None
    assert "30.0 min" in stall.message and "3 x" in stall.message and "10.0 min" in stall.message
    assert "10 of 30 worklist injections" in stall.message
    assert judge_stall(p, last + 2 * 600, 1.5) is not None


def test_past_the_expected_end_with_the_last_injection_missing() -> None:
    p = pace(29, 30)
    last = T0 + 28 * 600 + 500
    stall = judge_stall(p, last + 2 * 600 + 1, 3.0)
    assert stall is not None and "expected end" in stall.message


def test_no_stall_when_finished_or_the_pace_is_unknown() -> None:
    finished = pace(30, 30)
    assert finished.finished
    assert judge_stall(finished, T0 + 10**6, 3.0) is None
    assert judge_stall(pace(2, 30), T0 + 10**6, 3.0) is None
    no_list = judge_stall(pace(10, None), T0 + 10**6, 3.0)
    assert no_list is not None and "no worklist" in no_list.message


def test_reinjections_count_apart_from_worklist_positions() -> None:
    p = pace_of(
        "seq",
        starts=[T0 + k * 60 for k in range(31)],
        written=[T0 + k * 60 for k in range(31)],
        positions=[*range(1, 30), None, None],
        planned=29,
    )
    assert (p.injections, p.in_worklist, p.not_in_worklist, p.finished) == (31, 29, 2, True)
    values = status_values(p, None)
    assert values["instrument"] == "finished"
    assert (values["injections"], values["in_worklist"], values["not_in_worklist"]) == (31, 29, 2)


def test_monitor_seen_running_gone_and_stopped() -> None:
    assert monitor_seen({"updated": T0, "heartbeat_every": 10}, T0 + 29)[0]
    alive, text = monitor_seen({"updated": T0, "heartbeat_every": 10}, T0 + 31)
    assert not alive and text.startswith("monitor not running (last seen")
    assert not monitor_seen({}, T0)[0]
    alive, text = monitor_seen({"updated": T0, "monitor_stopped_at": T0 + 1}, T0 + 5)
    assert not alive and "stopped" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T02:00:00Z", 1796090400.0),
        ("2026-12-01T03:00:00+01:00", 1796090400.0),
        ("", None),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_stamp(text: object, expected: float | None) -> None:
    assert parse_stamp(text) == expected
