"""A re-injection not in the worklist is judged as its original everywhere.

``099_QC-M-01_R`` re-injects the worklist's QC-M-01: it is a QC-M in the table, in
the run's QC tally and verdict, in the banner's counters and in the status file --
not an unknown sample because its name does not follow the file-name convention
(which reads ``QC-M-01`` as no type at all). A re-injected diluted sample keeps its
dilution, so its concentration is the original's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl

from asnmon.actions import run_document
from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor
from asnmon.qc.headline import FlagRow, run_counts
from asnmon.simulate import SimConfig, simulate_run, write_injection
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist, reinjection_of


def test_a_reinjected_qc_counts_as_its_level_in_table_tally_verdict_and_counters(
    tmp_path: Path, assay: Assay
) -> None:
    config = SimConfig(n_samples=4, seed=11)
    sim = simulate_run(tmp_path / "sim", config)
    worklist = load_worklist(sim.worklist_path)
    qc = next(i for i in sim.injections if i.sample.sample_id == "QC-M-01")
    # Re-injected and reading 40 % high: a QC failure the verdict must count.
    again = write_injection(
        replace(qc, true_conc_vial=qc.true_conc_vial * 1.4),
        sim.out_dir / "099_QC-M-01_R.mzML",
        replace(config, seed=config.seed + 1),
    )
    n_qc = sum(1 for s in worklist.samples if s.sample_type.value == "qc")
    with Store(tmp_path / "r.duckdb") as store:
        ingestor = RunIngestor(store, assay, RunInfo("R", "R"), worklist)
        for path in [*sim.paths, again]:
            ingestor.ingest(path)
        ingestor.flush()
        results = store.results("R")
        [row] = results.filter(pl.col("file") == again.name).to_dicts()
        # The table: a QC-M, not in the worklist, its own name.
        assert (row["sample_type"], row["level"], row["position"]) == ("qc", "QC-M", None)
        assert row["nominal"] == qc.sample.nominal and row["sample_id"] == "099_QC-M-01_R"
        assert abs(row["accuracy_pct"] - 140.0) < 10.0
        # Its flags are a QC's: judged against the QC-M tolerance.
        flags = store.flags("R").filter(pl.col("file") == again.name)
        assert "QC_FAIL" in flags["code"].to_list(), flags["message"].to_list()
        # The run's tally counts it, and agrees with the table: every worklist QC plus
        # the re-injection, passes as the table's accuracies say.
        qcs = results.filter(pl.col("sample_type") == "qc")
        assert qcs.height == n_qc + 1
        within = int(((qcs["accuracy_pct"] - 100).abs() <= assay.limits.qc_accuracy_pct).sum())
        assert within == n_qc  # the originals pass, the re-injection does not
        verdict, reason = store.run_verdicts()["R"]
        assert f"{within} of {n_qc + 1} QCs pass" in reason, reason
        # The banner: all worklist positions done, the re-injection beside them.
        counts = run_counts(
            verdict,
            [FlagRow.of(r) for r in store.flags("R").iter_rows(named=True)],
            results["position"].to_list(),
            len(worklist.samples),
        )
        assert (counts.done, counts.planned, counts.unlisted) == (len(worklist.samples),) * 2 + (1,)
        # The status file: the same type and the link to the original.
        doc = run_document(
            "R",
            verdict,
            reason,
            results.to_dicts(),
            store.flags("R").to_dicts(),
            link=lambda f: o.position if (o := reinjection_of(f, worklist)) else None,
        )
        [extra] = [i for i in doc["injections"] if not i["in_worklist"]]
        assert (extra["sample_type"], extra["reinjection_of"]) == ("qc", qc.position)
        # After a restart the run's memory agrees.
        restored = RunIngestor(store, assay, RunInfo("R", "R"), worklist)
        restored.restore()
        assert [(h.sample_type, h.level) for h in restored.history] == [
            (h.sample_type, h.level) for h in ingestor.history
        ]
        assert restored.history[-1].level == "QC-M"
