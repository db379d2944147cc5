"""The banner's numbers from one computation, so they cannot disagree."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from asnmon.qc.headline.rows import FlagRow, makes_card


@dataclass(frozen=True, slots=True)
class RunCounts:
    """Every number the banner shows, from one computation (they must agree)."""

    verdict: str  # what the banner shows: "fail" while a FAIL flag is open, else the run's
    run_verdict: str  # the run's own, from its acceptance rules
    open_fail: int  # unacknowledged fail flags
    open_warning: int  # unacknowledged warnings (injection info notes excluded)
    acknowledged: int  # flags acknowledged (fail or warning)
    done: int  # worklist positions acquired
    planned: int | None  # worklist length
    unlisted: int  # injections not in the worklist (re-injections, extra files)

    @property
    def unacknowledged(self) -> int:
        return self.open_fail + self.open_warning

    @property
    def progress(self) -> str:
        """'29 / 29 (+2 not in the worklist)': never more done than planned."""
        text = f"{self.done} / {self.planned}" if self.planned else f"{self.done}"
        return text + (f" (+{self.unlisted} not in the worklist)" if self.unlisted else "")


def run_counts(
    run_verdict: str | None,
    flags: Iterable[FlagRow],
    positions: Iterable[int | None],
    planned: int | None,
) -> RunCounts:
    """The banner's numbers. ``positions``: each stored injection's worklist position."""
    open_fail = open_warning = acked = 0
    for f in flags:
        if not makes_card(f) or f.severity not in ("fail", "warning"):
            continue
        if f.acknowledged:
            acked += 1
        elif f.severity == "fail":
            open_fail += 1
        else:
            open_warning += 1
    placed: set[int] = set()
    unlisted = 0
    for p in positions:
        if p is None:
            unlisted += 1
        elif p in placed:
            unlisted += 1  # a second injection at one position: a re-injection
        else:
            placed.add(p)
    own = (run_verdict or "pending").lower()
    return RunCounts(
        verdict="fail" if open_fail else own,
        run_verdict=own,
        open_fail=open_fail,
        open_warning=open_warning,
        acknowledged=acked,
        done=len(placed),
        planned=planned,
        unlisted=unlisted,
    )
