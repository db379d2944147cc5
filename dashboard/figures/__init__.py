"""Figure builders: pure functions from store frames (polars) to Plotly figures.

No database, no Dash: each builder is tested without a browser. The two run
plots keep one trace per sample type in ``style.SAMPLE_TYPES`` order, so the
live view can append new injections with ``extendData`` (``run_extension``)
instead of shipping whole figures every second.

Modules: ``base`` (the shared look, the empty figure), ``run`` (IS % and
asparagine over the run), ``calibration``, ``qc`` (Levey-Jennings), ``pools``.
Import from ``dashboard.figures``.
"""

from __future__ import annotations

from dashboard.figures.base import BIG, base_figure, empty_figure
from dashboard.figures.calibration import CAL_LEVEL_TOLERANCE, calibration_figure
from dashboard.figures.pools import pools_figure
from dashboard.figures.qc import levey_jennings_figure
from dashboard.figures.run import OUT_OF_RANGE, asn_figure, is_figure, run_extension, run_series

__all__ = [
    "BIG",
    "CAL_LEVEL_TOLERANCE",
    "OUT_OF_RANGE",
    "asn_figure",
    "base_figure",
    "calibration_figure",
    "empty_figure",
    "is_figure",
    "levey_jennings_figure",
    "pools_figure",
    "run_extension",
    "run_series",
]
