"""The banner's headline, grouped flag cards and the one set of counters (issue 12)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from asnmon.qc.headline import (
    FlagRow,
    cause_of,
    forecasts,
    group_flags,
    headline,
    impact,
    run_counts,
    spans,
)

_ids = iter(range(1, 10_000))


def flag(
    code: str,
    severity: str = "fail",
    position: int | None = 10,
    *,
    acks: int = 0,
    run_level: bool = False,
    **details: object,
) -> FlagRow:
    fid = next(_ids)
    return FlagRow(
        flag_id=fid,
        code=code,
        severity=severity,
        injection_id=None if run_level else 1000 + fid,
        position=None if run_level else position,
        sample_id="" if run_level else f"S-{position}",
        file="" if run_level else f"{position:03d}_S.mzML" if position else "x.mzML",
        acks=acks,
        message=f"{code} message. More words.",
        action=f"Do something about {code}. Then more.",
        details=details,
    )


def drift(start: int = 43, at: int = 47, **more: object) -> FlagRow:
    details = {
        "started_at": start,
        "rate_pct": -2.5,
        "level_pct": 61.0,
        "target_pct": 50.0,
        "crossing_at": 62,
        "remaining": 5.0,
        "crossing_time": "2024-05-06T03:40:00+00:00",
        "ended_at": None,
        **more,
    }
    return flag("IS_DRIFT", "warning", at, **details)


@pytest.mark.parametrize(
    ("worse", "better"),
    [
        (("IS_DRIFT", "warning"), ("READ_ERROR", "fail")),  # an IS collapse outranks a junk file
        (("IS_DRIFT", "fail"), ("IS_DRIFT", "warning")),
        (("CAL_FAIL", "fail"), ("QC_FAIL", "fail")),
        (("QC_FAIL", "fail"), ("IS_LOW", "fail")),
        (("IS_LOW", "fail"), ("INCOMPLETE", "fail")),
        (("ALQ", "warning"), ("REF_LOW", "warning")),
        (("SOMETHING_NEW", "fail"), ("REF_HIGH", "warning")),
    ],
)
def test_impact_ranks_by_what_it_does_to_the_results(
    worse: tuple[str, str], better: tuple[str, str]
) -> None:
    assert impact(*worse) > impact(*better)


def test_headline_names_the_is_drift_not_the_junk_file() -> None:
    junk = flag("READ_ERROR", "fail", 28)
    lows = [flag("IS_LOW", "fail", p) for p in range(62, 73)]
    d = drift()
    h = headline(group_flags([junk, *lows, d]))
    assert h is not None
    assert h.code == "IS_DRIFT"
    assert "IS falling -2.5 % per injection since injection 43" in h.text
    assert "reaches 50 % at about injection 62 (≈ 03:40)" in h.text
    assert "— IS_LOW ×11 (injections 62–72)" in h.text  # what it has done so far
    assert "READ_ERROR" not in h.text
    assert h.action == "Do something about IS_DRIFT."  # the action's first sentence
    assert h.line.endswith("→ Do something about IS_DRIFT")
    long = replace(h, action="Pause the queue before the crossing: clean the ion source.")
    assert long.short_action == "Pause the queue before the crossing"


def test_open_consequences_of_an_acknowledged_cause_still_lead() -> None:
    """The IS_DRIFT flag acknowledged, its new IS_LOWs open: they outrank the junk file."""
    d = drift(acks=1)
    lows = [flag("IS_LOW", "fail", p) for p in (62, 63)]
    h = headline(group_flags([*lows, d, flag("READ_ERROR", "fail", 28)]))
    assert h is not None and h.code == "IS_LOW"
    assert h.text.startswith("IS_LOW ×2 (injections 62–63)")


def test_headline_none_when_everything_is_acknowledged_or_info() -> None:
    quiet = [flag("IS_LOW", acks=1), flag("BLQ", "info"), flag("READ_ERROR", acks=2)]
    assert headline(group_flags(quiet)) is None


def test_is_low_inside_the_drift_episode_is_grouped_under_it() -> None:
    d = drift(start=43)
    before = flag("IS_LOW", "fail", 20)  # a short injection before the drift began
    lows = [flag("IS_LOW", "fail", p) for p in range(62, 73)]
    high = flag("IS_HIGH", "fail", 64)  # the drift falls: an IS_HIGH is not its doing
    groups = group_flags([before, *lows, d, high, flag("READ_ERROR", "fail", 28)])
    assert [g.code for g in groups[:2]] == ["IS_DRIFT", "IS_LOW"]  # the cause first
    g = groups[1]
    assert g.cause == d
    assert (g.title, g.where) == ("IS_LOW ×11", "injections 62–72")
    assert cause_of(before, [d]) is None
    assert cause_of(high, [d]) is None
    others = [x for x in groups if x.code == "IS_LOW" and x.cause is None]
    assert [x.members for x in others] == [(before,)]


def test_an_ended_episode_explains_only_its_own_injections() -> None:
    d = drift(start=10, ended_at=30)
    assert cause_of(flag("IS_LOW", position=25), [d]) == d
    assert cause_of(flag("IS_LOW", position=31), [d]) is None


def test_rt_shift_after_an_rt_trend_is_grouped_under_it() -> None:
    trend = flag("RT_TREND", "warning", 40, first_seen_at=40)
    shifts = [flag("RT_SHIFT", "fail", p) for p in (50, 51, 52)]
    groups = group_flags([*shifts, trend])
    assert [g.code for g in groups] == ["RT_TREND", "RT_SHIFT"]
    assert groups[1].cause == trend


def test_acknowledged_members_leave_the_open_group() -> None:
    lows = [flag("IS_LOW", "fail", p, acks=1 if p < 65 else 0) for p in range(62, 70)]
    groups = group_flags(lows)
    assert [(g.acknowledged, len(g.members)) for g in groups] == [(False, 5), (True, 3)]
    assert groups[0].where == "injections 65–69"
    assert groups[0].key != groups[1].key


def test_open_groups_come_before_acknowledged_ones_whatever_their_rank() -> None:
    groups = group_flags([drift(acks=1), flag("REF_LOW", "warning", 5)])
    assert [g.code for g in groups] == ["REF_LOW", "IS_DRIFT"]


def test_info_notes_on_injections_make_no_card_but_run_level_info_does() -> None:
    groups = group_flags([flag("BLQ", "info"), flag("CAL_EXCLUDED", "info", run_level=True)])
    assert [(g.code, g.where) for g in groups] == [("CAL_EXCLUDED", "the whole run")]


@pytest.mark.parametrize(
    ("positions", "text"),
    [
        ([62, 63, 64, 72], "62–64, 72"),
        ([28, 73], "28, 73"),
        ([5], "5"),
        ([3, 1, 2, 2], "1–3"),
        ([1, 3, 5, 7, 9, 11], "1 … 11"),
        ([], ""),
    ],
)
def test_spans(positions: list[int], text: str) -> None:
    assert spans(positions) == text


def test_who_names_the_injection_never_the_database_id() -> None:
    f = FlagRow(flag_id=4711, code="IS_LOW", severity="fail", injection_id=99, position=62)
    assert f.who == "injection 62"
    f = FlagRow.of(
        {
            "flag_id": 4711,
            "code": "IS_LOW",
            "severity": "fail",
            "injection_id": 99,
            "position": 62,
            "sample_id": "S-041",
            "details": '{"reference": 1.0}',
            "acks": None,
        }
    )
    assert (f.who, f.details["reference"], f.acks) == ("injection 62 (S-041)", 1.0, 0)
    assert "4711" not in f.who and "99" not in f.who
    assert FlagRow.of({"flag_id": 1, "code": "X", "details": "not json"}).details == {}


def test_counters_come_from_one_computation_and_agree() -> None:
    flags = [
        *[flag("IS_LOW", "fail", p) for p in range(62, 75)],
        flag("REF_LOW", "warning", 5),
        flag("BLQ", "info", 6),
    ]
    c = run_counts("at risk", flags, range(1, 30), 29)
    assert (c.verdict, c.open_fail, c.unacknowledged, c.acknowledged) == ("fail", 13, 14, 0)
    # every FAIL acknowledged: the banner returns to the run's verdict and says 0 open
    acked = [FlagRow.of({**_row(f), "acks": 1}) if f.severity == "fail" else f for f in flags]
    c = run_counts("at risk", acked, range(1, 30), 29)
    assert (c.verdict, c.open_fail, c.unacknowledged, c.acknowledged) == ("at risk", 0, 1, 13)


def test_progress_never_counts_more_done_than_planned() -> None:
    # two re-injections, one not in the worklist (no position) and one at a used position
    c = run_counts("pass", [], [*range(1, 30), None, 7], 29)
    assert (c.done, c.unlisted) == (29, 2)
    assert c.progress == "29 / 29 (+2 not in the worklist)"
    assert run_counts(None, [], [1, 2], None).progress == "2"
    assert run_counts(None, [], [], None).verdict == "pending"


def _row(f: FlagRow) -> dict[str, object]:
    return {
        "flag_id": f.flag_id,
        "code": f.code,
        "severity": f.severity,
        "injection_id": f.injection_id,
        "position": f.position,
        "details": dict(f.details),
    }


def _forecast_drift(remaining: float, *, escalated: bool = False, **more: object) -> FlagRow:
    return drift(
        rate_low_pct=-2.7,
        rate_high_pct=-2.3,
        confidence=0.9,
        crossing_early=61,
        crossing_late=64,
        remaining=remaining,
        escalated=escalated,
        samples_after=[[62, "S0041"], [63, "S0042"], [64, "QC-L-04"], [65, "S0043"], [66, "X"]],
        **more,
    )


@pytest.mark.parametrize(
    ("remaining", "escalated", "urgency"),
    [(30.0, False, "info"), (15.0, False, "warning"), (8.0, False, "fail"), (25.0, True, "fail")],
)
def test_the_forecast_escalates_as_it_shortens(
    remaining: float, escalated: bool, urgency: str
) -> None:
    (fc,) = forecasts([_forecast_drift(remaining, escalated=escalated)], escalate_n=10)
    assert fc.urgency == urgency
    assert fc.text.startswith("IS -2.5 % per injection (90 % CI -2.7 to -2.3): reaches 50 %")
    assert "at about injection 62, range 61–64, ≈ 03:40" in fc.text
    assert f"in about {remaining:.0f} injection(s)" in fc.text
    assert "Worklist after it (5): S0041 (62), S0042 (63), QC-L-04 (64), S0043 (65) … +1" in fc.text
    assert fc.samples_after[0] == (62, "S0041")


def test_a_crossed_forecast_says_so_and_an_ended_one_is_gone() -> None:
    (fc,) = forecasts([_forecast_drift(-3.0)], escalate_n=10)
    assert fc.urgency == "fail" and "passed 50 % at about injection 62" in fc.text
    assert forecasts([_forecast_drift(5.0, ended_at=70)], escalate_n=10) == []
    # the latest IS_DRIFT flag speaks: an older episode's forecast is not shown twice
    old, new = _forecast_drift(40.0), _forecast_drift(4.0)
    assert [f.remaining for f in forecasts([new, old], escalate_n=10)] == [4.0]


def test_rt_trend_forecast_in_seconds_per_injection() -> None:
    trend = FlagRow(
        flag_id=9000,
        code="RT_TREND",
        severity="warning",
        injection_id=1,
        position=40,
        limit=0.15,
        details={
            "rate_min_per_injection": 0.004,
            "rate_low": 0.003,
            "rate_high": 0.005,
            "crossing_at": 58,
            "crossing_late": 66,
            "remaining": 18.0,
            "crossing_time": "2024-05-06T05:10:00+00:00",
        },
    )
    (fc,) = forecasts([trend, flag("IS_LOW")], escalate_n=10)
    assert fc.code == "RT_TREND" and fc.urgency == "warning"
    assert fc.text == (
        "RT +0.24 s per injection (95 % CI +0.18 to +0.30): reaches its ±0.150 min tolerance "
        "at about injection 58 (latest 66, ≈ 05:10), in about 18 injection(s)."
    )
