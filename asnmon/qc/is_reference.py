"""The IS reference as of each injection (``is_context``), kept as the run grows.

Split from ``asnmon.qc.internal_standard`` (the IS rules), which judges on it.
"""

from __future__ import annotations

import math
import operator
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from asnmon.assay import Assay
from asnmon.drift import Cusum, DriftEpisode
from asnmon.qc._base import IS_BEARING, drift_settings
from asnmon.records import HistoryPoint, SampleType

SETTLE_N = 3  # reference injections before a reference judges the injections that preceded it


@dataclass(frozen=True, slots=True)
class IsContext:
    """The IS-bearing injections of the run and each one's reference, as of its arrival."""

    points: tuple[HistoryPoint, ...]
    reference: tuple[float | None, ...]  # mean IS of the reference injections before it
    n_reference: tuple[int, ...]
    pct: tuple[float | None, ...]  # IS as % of that reference
    outside: tuple[bool, ...]
    episodes: tuple[DriftEpisode, ...] = ()  # CUSUM drift episodes, indexes into ``points``
    # Injections that came before any reference (ZERO, CAL01): IS % of the first reference
    # of SETTLE_N injections, once there is one; None for every other injection.
    settled_pct: tuple[float | None, ...] = ()
    # Indexes into ``points`` of the injections judged before any reference: the only
    # ones a settled IS % can be given to (the rest of ``settled_pct`` is None).
    no_reference: tuple[int, ...] = ()


def is_context(points: Sequence[HistoryPoint], assay: Assay) -> IsContext:
    """Causal IS reference that a drift cannot pull along.

    Each injection is judged against the reference injections before it
    (``Limits.is_reference``: calibrators and QCs "cal_qc", calibrators only, or
    every IS-bearing injection "all"); one outside the window never enters it.
    The CUSUM drift detector runs alongside: when it raises an alarm, the
    reference injections since the drift's onset leave the reference, and none
    enters until the episode ends, so a drifting IS is judged against its
    in-control level and a later drift never re-judges earlier injections.

    Causal, so computed incrementally: the pass over a run's history is kept
    (``_IsScan``) and a call whose points begin with the same points (the same
    objects: records are frozen) only scans the new ones. Without that every
    injection re-scanned the whole run, O(n) per file and O(n^2) per run. The
    same points asked again give the context last returned (it is frozen).
    """
    given = points
    points = list(points)
    if not points:
        return _IsScan(assay).context()
    with _SCANS_LOCK:
        key = (id(assay), id(points[0]))
        scan = _SCANS.pop(key, None)
        if scan is None or scan.assay is not assay or not scan.extends(points, given):
            scan = _IsScan(assay)
        for q in points[len(scan.raw) : -1]:  # the stable prefix becomes the kept pass
            scan.push(q)
        if isinstance(given, tuple):  # a tuple cannot change: asked again, no check
            scan.checked = given
        _SCANS[key] = scan
        while len(_SCANS) > _SCANS_KEPT:
            _SCANS.pop(next(iter(_SCANS)))
        if scan.tail is not None and scan.tail[0] is points[-1]:
            return scan.tail[1]  # asked again (the live IS flag, then the verdict): same answer
        ctx = scan.peek(points[-1])  # often a point being judged, not kept
        scan.tail = (points[-1], ctx)
    return ctx


_SCANS: dict[tuple[int, int], _IsScan] = {}  # (assay, first point) -> pass up to the last call
_SCANS_KEPT = 8  # runs whose pass is kept (a monitor ingests a few runs at once)
_SCANS_LOCK = threading.Lock()


class _IsScan:
    """``is_context``'s pass over a run, one point at a time, resumable."""

    def __init__(self, assay: Assay) -> None:
        lim = assay.limits
        self.assay = assay
        self.kinds = {
            "cal_qc": (SampleType.CALIBRATOR, SampleType.QC),
            "calibrators": (SampleType.CALIBRATOR,),
        }.get(lim.is_reference, IS_BEARING)
        self.raw: list[HistoryPoint] = []  # every point pushed, IS-bearing or not
        self.det = Cusum(drift_settings(assay))
        self.accepted: list[tuple[int, float]] = []  # (index into pts, IS area) in the reference
        self.total = 0.0
        self.settled: float | None = None
        self.pts: list[HistoryPoint] = []
        self.refs: list[float | None] = []
        self.ns: list[int] = []
        self.pcts: list[float | None] = []
        self.outs: list[bool] = []
        self.no_ref: list[int] = []  # indexes into pts judged before any reference
        # The context with one more point, as last returned (that point, its context).
        self.tail: tuple[HistoryPoint, IsContext] | None = None
        self.checked: tuple[HistoryPoint, ...] | None = None  # the last tuple that extended it

    def extends(self, points: Sequence[HistoryPoint], given: object = None) -> bool:
        """Whether ``points`` begin with every point this pass has taken (and one more).

        ``given``: the sequence ``points`` was copied from; the very tuple this pass
        last took, with nothing taken since, needs no check.
        """
        n = len(self.raw)
        if given is not None and given is self.checked and len(points) == n + 1:
            return True
        return len(points) > n and all(map(operator.is_, self.raw, points[:n]))

    def peek(self, p: HistoryPoint) -> IsContext:
        """The context with ``p`` pushed; then the pass is put back as it was.

        ``push`` only appends to the lists (and drops reference points on an alarm),
        so their lengths, the reference points and the detector's state are what it
        takes to undo it: copying the whole pass instead cost O(n) per call.
        """
        n_raw, n_pts, n_no_ref = len(self.raw), len(self.pts), len(self.no_ref)
        accepted, total, settled, det = (
            list(self.accepted),
            self.total,
            self.settled,
            self.det.state(),
        )
        self.push(p)
        ctx = self.context()
        del self.raw[n_raw:], self.no_ref[n_no_ref:]
        for kept in (self.pts, self.refs, self.ns, self.pcts, self.outs):
            del kept[n_pts:]
        self.accepted, self.total, self.settled = accepted, total, settled
        self.det.restore(det)
        return ctx

    def push(self, p: HistoryPoint) -> None:
        self.tail = None
        self.raw.append(p)
        if p.sample_type not in IS_BEARING or p.error or p.is_area is None or p.is_area <= 0:
            return
        lim = self.assay.limits
        j = len(self.pts)
        self.pts.append(p)
        area = float(p.is_area or 0.0)
        n = len(self.accepted)
        ref = self.total / n if n else None
        pct = 100.0 * area / ref if ref else None
        out = pct is not None and not lim.is_low_pct <= pct <= lim.is_high_pct
        self.refs.append(ref)
        self.ns.append(n)
        self.pcts.append(pct)
        self.outs.append(out)
        if ref is None:
            self.no_ref.append(j)
        det = self.det
        alarms = len(det.episodes)
        det.push(p.order, math.log(area), excluded=out)
        if len(det.episodes) > alarms:  # a drift recognised: its points leave the reference
            onset = det.episodes[-1].start
            while self.accepted and self.accepted[-1][0] >= onset:
                self.total -= self.accepted.pop()[1]
        if p.sample_type in self.kinds and not out and det.in_control:
            self.accepted.append((j, area))
            self.total += area
            if self.settled is None and len(self.accepted) >= SETTLE_N:
                self.settled = self.total / len(self.accepted)

    def context(self) -> IsContext:
        settled_pct: list[float | None] = [None] * len(self.pts)
        if self.settled:
            for j in self.no_ref:
                settled_pct[j] = 100.0 * float(self.pts[j].is_area or 0.0) / self.settled
        return IsContext(
            tuple(self.pts),
            tuple(self.refs),
            tuple(self.ns),
            tuple(self.pcts),
            tuple(self.outs),
            tuple(self.det.episodes),
            tuple(settled_pct),
            tuple(self.no_ref),
        )
