"""Banner, heartbeat tile and flag cards as pure builders: records in, components out."""

from __future__ import annotations

import pytest

from asnmon.heartbeat import clock
from asnmon.qc.headline import FlagRow, forecasts, group_flags, headline, run_counts
from dashboard import banner, cards

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:urllib3.*")

RUN = {"run_id": "r", "name": "night", "verdict": "at risk", "verdict_reason": "IS falling"}


def row(fid: int, code: str, severity: str = "fail", pos: int | None = 5, acks: int = 0, **d):
    return FlagRow(
        flag_id=fid,
        code=code,
        severity=severity,
        injection_id=100 + fid,
        position=pos,
        sample_id=f"S{pos}",
        acks=acks,
        message=f"{code} says what. And more.",
        action=f"Act on {code}.",
        details=d,
    )


def drift_rows() -> list[FlagRow]:
    d = row(
        1,
        "IS_DRIFT",
        "fail",
        47,
        started_at=43,
        rate_pct=-2.6,
        level_pct=48.0,
        crossing_at=69,
        remaining=3.0,
        escalated=True,
        target_pct=50.0,
    )
    lows = [row(10 + p, "IS_LOW", "fail", p) for p in range(62, 73)]
    return [row(2, "READ_ERROR", "fail", 28), d, *lows]


def test_banner_verdict_headline_and_counters_agree() -> None:
    rows = drift_rows()
    groups = group_flags(rows)
    counts = run_counts(RUN["verdict"], rows, range(1, 73), 95)
    text = str(
        banner.banner(
            RUN,
            counts,
            head=headline(groups),
            forecasts=forecasts(rows, escalate_n=10),
            watcher=banner.Tile("✔ watching"),
        )
    )
    assert "FAIL" in text  # 13 open fail flags: FAIL whatever the run's verdict
    assert "IS falling -2.6 % per injection since injection 43" in text
    assert "✖ 13" in text and "13 unacknowledged" in text and "72 / 95" in text
    assert "IS_DRIFT forecast" in text
    assert "run verdict AT RISK" in text  # the run's own verdict still named


def test_all_acknowledged_the_banner_returns_to_the_run_verdict_with_zero_open() -> None:
    rows = [FlagRow(**{**_fields(r), "acks": 1}) for r in drift_rows()]
    counts = run_counts(RUN["verdict"], rows, range(1, 73), 95)
    text = str(banner.banner(RUN, counts, head=headline(group_flags(rows))))
    assert "AT RISK" in text and "FAIL'" not in text
    assert "Open FAIL flags" in text and "'0'" in text and "0 unacknowledged" in text


def _fields(r: FlagRow) -> dict[str, object]:
    return {k: getattr(r, k) for k in FlagRow.__slots__}  # type: ignore[attr-defined]


def test_problems_take_the_verdicts_place() -> None:
    counts = run_counts("pass", [], [], None)
    text = str(banner.banner(RUN, counts, problems=["DATABASE PROBLEM: disk full"]))
    assert "DATABASE PROBLEM" in text and "disk full" in text


# ---------------------------------------------------------------- heartbeat tile

NOW = 1_000_000.0


def test_a_quiet_hilic_night_is_not_a_stale_monitor() -> None:
    """12 min per injection, 10 min since the last status: fine for this run."""
    status = {"watcher": "watching", "queue": 0, "pending": 0, "updated": NOW - 600}
    tile = banner.watcher_tile(status, live=True, now=NOW, interval_s=720, since_file_s=600)
    assert not tile.alert and tile.value == "✔ watching"
    assert "one file every ≈ 12.0 min" in tile.detail
    assert f"last file at {clock(NOW - 600)}" in tile.detail  # a time: the tile is not redrawn
    # the same silence on a 2-minute method is three intervals: the monitor looks gone
    tile = banner.watcher_tile(status, live=True, now=NOW, interval_s=120)
    assert tile.alert and "no heartbeat" in tile.value


def test_a_monitor_with_a_heartbeat_is_judged_by_its_beat() -> None:
    """The monitor's own keys (asnmon.heartbeat): three missed beats, whatever the pace."""
    status = {"watcher": "watching", "updated": NOW - 20, "heartbeat_every": 10}
    assert not banner.watcher_tile(status, live=True, now=NOW, interval_s=720).alert
    status = {**status, "updated": NOW - 40}
    tile = banner.watcher_tile(status, live=True, now=NOW, interval_s=720)
    assert tile.alert and tile.value == "▲ no heartbeat"
    assert "monitor not running (last seen" in tile.detail


def test_the_tile_says_what_the_monitor_says_of_the_instrument() -> None:
    base = {"watcher": "watching", "updated": NOW - 5, "heartbeat_every": 10}
    stalled = {
        **base,
        "instrument": "stalled",
        "instrument_note": "no file for 41 min (3.4 x the median interval of 12.0 min)",
        "median_interval": 720.0,
        "last_file_at": NOW - 2460,
    }
    tile = banner.watcher_tile(stalled, live=True, now=NOW)
    assert tile.alert and tile.value == "▲ instrument stalled" and "41 min" in tile.detail
    acquiring = {**stalled, "instrument": "acquiring", "last_file_at": NOW - 300}
    tile = banner.watcher_tile(acquiring, live=True, now=NOW)
    assert not tile.alert
    assert f"last file at {clock(NOW - 300)}; one file every ≈ 12.0 min" in tile.detail
    done = {**base, "instrument": "finished", "instrument_note": "run r: all 95 are in"}
    assert banner.watcher_tile(done, live=True, now=NOW).value == "✔ run finished"


def test_review_of_a_monitor_that_stopped_cleanly_says_so() -> None:
    status = {"updated": NOW - 900, "heartbeat_every": 10, "monitor_stopped_at": NOW - 899}
    tile = banner.watcher_tile(status, live=False, now=NOW)
    assert tile.value == "■ stopped" and not tile.alert
    assert "monitor stopped (cleanly at" in tile.detail


def test_watcher_errors_show() -> None:
    status = {"watcher": "watching", "updated": NOW, "last_error": "folder lost"}
    tile = banner.watcher_tile(status, live=True, now=NOW)
    assert tile.alert and "folder lost" in tile.detail


# ---------------------------------------------------------------- cards


def test_cards_group_is_low_under_its_cause_with_one_button() -> None:
    groups = group_flags(drift_rows())
    out = cards.flag_cards(groups)
    texts = [str(c) for c in out]
    assert "IS_DRIFT" in texts[0]
    assert "IS_LOW ×11" in texts[1] and "injections 62–72" in texts[1]
    assert "caused by IS_DRIFT (injection 47 (S47))" in texts[1]
    assert "Acknowledge all 11" in texts[1]
    # the button names the newest member: later arrivals are never acknowledged unseen
    assert "'flag': 82" in texts[1]
    assert "READ_ERROR" in texts[2]


def test_acknowledged_cards_leave_the_list_unless_asked_for() -> None:
    rows = [FlagRow(**{**_fields(r), "acks": 1}) for r in drift_rows()]
    groups = group_flags(rows)
    assert "No open flags. (3 acknowledged card(s) hidden)" in str(cards.flag_cards(groups))
    shown = cards.flag_cards(groups, show_acked=True)
    assert len(shown) == 3 and "acknowledged ×11" in str(shown[1])
    assert "Acknowledge" not in str(shown)  # nothing left to acknowledge


def test_cards_are_capped() -> None:
    rows = [row(i, f"CODE_{i}", "warning", i) for i in range(1, cards.MAX_FLAG_CARDS + 8)]
    out = cards.flag_cards(group_flags(rows))
    assert len(out) == cards.MAX_FLAG_CARDS + 1
    assert "7 more card(s)" in str(out[-1])


def test_the_summary_line_uses_the_banner_counts() -> None:
    rows = drift_rows()
    groups = group_flags(rows)
    counts = run_counts("at risk", rows, [], None)
    line = cards.flag_summary(counts, groups)
    assert line == "13 open (13 FAIL, 0 warning) in 3 card(s); 0 acknowledged"
