"""One file through every stage, and the run it belongs to.

``process`` is the pure part: read -> integrate -> quantify -> flag, for one file
against the run's current curve. ``ingestor`` is the run's single writer: it stores
each outcome and keeps the run's memory; ``run_qc`` re-judges the run after each
file (curve, Westgard, IS and RT trends); ``batch`` ingests many files in
acquisition order and re-quantifies after a reviewer's edit.
"""

from asnmon.pipeline.batch import ingest_paths, order_paths, requantify
from asnmon.pipeline.ingestor import IngestReport, RunIngestor
from asnmon.pipeline.process import process_file

__all__ = [
    "IngestReport",
    "RunIngestor",
    "ingest_paths",
    "order_paths",
    "process_file",
    "requantify",
]
