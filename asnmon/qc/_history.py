"""What the rules look up in a run's history, kept as the run grows.

The rules are pure functions of the history (the run's earlier injections, in
order), and several filtered all of it at every injection: the calibrators' RTs
and ion ratios, the RT trend's points, the QCs, the unreadable files. That is
O(n) per file and O(n^2) per run. ``history_index`` keeps those filters for a
history it has seen and only takes the new points when a later call's history
begins with the same points (the same objects: records are frozen, so the same
object is the same values), as ``is_context`` does for the IS. Any other history
(a refit re-quantified it, a file was superseded, another run) is indexed anew.

The last point of a call is not kept: it is often a point being judged, not one
stored, and the next call brings another in its place. Every kept item notes its
position, so a call for a shorter history (the one without the point being
judged) is answered from the same index.
"""

from __future__ import annotations

import operator
import threading
from bisect import bisect_left
from collections.abc import Sequence
from typing import TypeVar

from asnmon.qc._base import IS_BEARING
from asnmon.records import HistoryPoint, SampleType

T = TypeVar("T")


class HistoryIndex:
    """The filters over ``raw`` (a run's history so far); each with the positions taken."""

    __slots__ = (
        "cal_rt",
        "cal_rt_pos",
        "checked",
        "errors",
        "ion",
        "ion_pos",
        "memo",
        "qc",
        "qc_pos",
        "raw",
        "rt",
        "rt_pos",
    )

    def __init__(self) -> None:
        self.raw: list[HistoryPoint] = []
        # Keyed by has_is (the IS's RT, else the analyte's), as the rules choose.
        self.rt_pos: dict[bool, list[int]] = {True: [], False: []}
        self.rt: dict[bool, list[HistoryPoint]] = {True: [], False: []}
        self.cal_rt_pos: dict[bool, list[int]] = {True: [], False: []}
        self.cal_rt: dict[bool, list[float]] = {True: [], False: []}
        self.ion_pos: list[int] = []
        self.ion: list[float] = []
        self.qc_pos: list[int] = []
        self.qc: list[HistoryPoint] = []
        self.errors: list[int] = [0]  # errors[k]: sum(p.error for p in raw[:k])
        self.memo: dict[str, object] = {}  # a rule's own running state over this history
        # The last tuple found to begin with ``raw`` (then as long as it is, but one), and
        # how much of it the index answers for: asked again, it needs no check (a tuple
        # cannot change, and ``raw`` is only ever added to).
        self.checked: tuple[tuple[HistoryPoint, ...], int] | None = None

    def push(self, p: HistoryPoint) -> None:
        i = len(self.raw)
        self.raw.append(p)
        self.errors.append(self.errors[-1] + p.error)
        for has_is in (True, False):
            rt = rt_of(p, has_is)
            if rt is None:
                continue
            if p.sample_type in IS_BEARING and not p.error:
                self.rt_pos[has_is].append(i)
                self.rt[has_is].append(p)
            if p.sample_type is SampleType.CALIBRATOR and not p.error:
                self.cal_rt_pos[has_is].append(i)
                self.cal_rt[has_is].append(rt)
        if p.sample_type is SampleType.CALIBRATOR and p.ion_ratio is not None and not p.error:
            self.ion_pos.append(i)
            self.ion.append(p.ion_ratio)
        if p.sample_type is SampleType.QC:
            self.qc_pos.append(i)
            self.qc.append(p)


def rt_of(p: HistoryPoint, has_is: bool) -> float | None:
    """The RT the rules follow: the IS's apex, or the analyte's without an IS."""
    return p.is_rt if has_is else p.analyte_rt


def rt_kept(p: HistoryPoint, has_is: bool) -> bool:
    """Whether the RT trend follows this injection (``HistoryIndex.rt``)."""
    return p.sample_type in IS_BEARING and not p.error and rt_of(p, has_is) is not None


def upto(pos: list[int], items: list[T], m: int) -> list[T]:
    """The items taken from the first ``m`` points (``pos``: where each was taken)."""
    return items[: bisect_left(pos, m)]


_INDEXES: dict[int, HistoryIndex] = {}  # first point -> the index of its history
_INDEXES_KEPT = 8  # runs whose index is kept (a monitor ingests a few runs at once)
_LOCK = threading.Lock()
MEMO_LOCK = threading.Lock()  # for a rule that keeps running state in ``HistoryIndex.memo``


def history_index(
    points: Sequence[HistoryPoint],
) -> tuple[HistoryIndex, int, Sequence[HistoryPoint]]:
    """(index, m, rest): the index answers for ``points[:m]``; ``rest`` (at most the last
    point) is for the caller to take itself. Items of the index are never changed, only
    added, so a prefix read after the lock is released stays what it was."""
    n = len(points)
    if not n:
        return HistoryIndex(), 0, ()
    with _LOCK:
        key = id(points[0])
        index = _INDEXES.pop(key, None)
        if index is not None and index.checked is not None and index.checked[0] is points:
            m = index.checked[1]
        else:
            if index is None or not all(map(operator.is_, index.raw, points)):
                index = HistoryIndex()
            for p in points[len(index.raw) : n - 1]:
                index.push(p)
            m = min(n, len(index.raw))
            if isinstance(points, tuple):
                index.checked = (points, m)
        _INDEXES[key] = index
        while len(_INDEXES) > _INDEXES_KEPT:
            _INDEXES.pop(next(iter(_INDEXES)))
    return index, m, points[m:]
