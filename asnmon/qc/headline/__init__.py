"""What the night shift reads first: flags grouped by cause, ranked by what they do.

Issue 12: the banner's FAIL came from a junk file while the collapsing IS was
the last clause; eleven IS_LOW cards came before their cause, IS_DRIFT. So:

- ``IMPACT`` ranks a code by what it does to the run's *results*: a drifting
  IS or a failed curve threatens every injection still to come; a QC failure
  the run's acceptance; one unreadable file only itself. Severity breaks ties
  within a code (an escalated IS_DRIFT outranks a warning one).
- ``cause_of`` links a flag to the run-level trend that explains it: an IS_LOW
  inside a falling IS_DRIFT episode, an RT_SHIFT after an RT_TREND. Its group
  is drawn right after its cause's and carries the cause's name.
- ``group_flags`` puts flags of one code, severity and cause into one
  ``FlagGroup`` ("IS_LOW ×11, injections 62–72"); acknowledged members form
  their own groups, so an open card only ever holds open flags.
- ``run_counts`` is the ONE computation behind the banner's verdict, the open
  fail counter, the unacknowledged count and "N / M injections", so they cannot
  disagree (issue 12: "AT RISK" beside "OPEN FAIL FLAGS ✖ 13").

Pure functions over ``FlagRow`` records; the dashboard builds them from the store.
Modules: ``rows`` (the record), ``ranking`` (impact, causes), ``grouping`` (cards),
``text`` (the headline), ``counts`` (the banner's numbers), ``forecasts``.
Import from ``asnmon.qc.headline``.
"""

from __future__ import annotations

from asnmon.qc.headline.counts import RunCounts, run_counts
from asnmon.qc.headline.forecasts import Forecast, forecasts
from asnmon.qc.headline.grouping import FlagGroup, group_flags, spans
from asnmon.qc.headline.ranking import (
    CAUSED_BY,
    DEFAULT_IMPACT,
    IMPACT,
    SEVERITY_RANK,
    cause_of,
    impact,
)
from asnmon.qc.headline.rows import FlagRow
from asnmon.qc.headline.text import Headline, first_sentence, headline

__all__ = [
    "CAUSED_BY",
    "DEFAULT_IMPACT",
    "IMPACT",
    "SEVERITY_RANK",
    "FlagGroup",
    "FlagRow",
    "Forecast",
    "Headline",
    "RunCounts",
    "cause_of",
    "first_sentence",
    "forecasts",
    "group_flags",
    "headline",
    "impact",
    "run_counts",
    "spans",
]
