"""One numbering: flags name the acquisition position the table shows; re-injections link.

A run missing one worklist injection (it never arrived) used to shift every
later number by one ("since injection 32 (QC-H-02)" where the table shows 33).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor
from asnmon.records import Sample, SampleType
from asnmon.simulate import SimConfig, apply_faults, simulate_run, write_injection
from asnmon.store import RunInfo, Store
from asnmon.worklist import Worklist, load_worklist, reinjection_of

WORKLIST = Worklist(
    (
        Sample("012_BLANK", "BLANK", SampleType.BLANK, 12),
        Sample("022_QC-H-02", "QC-H-02", SampleType.QC, 22, level="QC-H"),
        Sample("023_S0012", "S0012", SampleType.SAMPLE, 23),
        Sample("030_BLANK", "BLANK", SampleType.BLANK, 30),
    )
)


@pytest.mark.parametrize(
    ("name", "position"),
    [
        ("081_S0012.mzML", 23),  # the same sample under a new sequence number
        ("081_S0012_R.mzML", 23),
        ("S0012-reinj2.mzML", 23),
        ("082_S0012 rerun.mzML.gz", 23),
        ("081_QC-H-02_R.mzML", 22),
        ("081_BLANK.mzML", None),  # two BLANK rows: no guess
        ("081_S00123.mzML", None),  # another sample
        ("081_S0012_diluted.mzML", None),  # not a re-injection suffix
        ("023_S0012.mzML", None),  # in the worklist itself
    ],
)
def test_reinjection_of(name: str, position: int | None) -> None:
    found = reinjection_of(name, WORKLIST)
    assert (found.position if found else None) == position
    assert reinjection_of(name, None) is None


def test_flags_name_the_table_position_with_an_injection_missing(
    tmp_path: Path, assay: Assay
) -> None:
    config = apply_faults(SimConfig(n_samples=12), ["is-drift:24:4"])
    sim = simulate_run(tmp_path / "sim", config)
    worklist = load_worklist(sim.worklist_path)
    position = {s.sample_id: s.position for s in worklist.samples}
    missing = next(p for p in sim.paths if p.name.startswith("020_"))  # never arrives
    run = RunInfo("seq", "seq", str(sim.out_dir), None, assay.name, assay.unit, 1.0, 500.0, None)
    with Store(tmp_path / "n.duckdb") as store:
        ingestor = RunIngestor(store, assay, run, worklist)
        for path in sim.paths:
            if path != missing:
                ingestor.ingest(path)
        again = sim.out_dir / "099_S0003_R.mzML"  # a re-injection, not in the worklist
        planned = next(i for i in sim.injections if i.sample.sample_id == "S0003")
        write_injection(planned, again, replace(config, seed=config.seed + 1))  # new bytes
        ingestor.ingest(again)
        ingestor.flush()
        flags = store.flags("seq")
        results = store.results("seq")
        named = [
            (int(n), s)
            for m in flags["message"].to_list()
            for n, s in re.findall(r"injection (\d+) \(([^)]+)\)", m or "")
            if not s.startswith("range ")
        ]
        assert any(s.startswith("S") or s.startswith("QC") for _, s in named), flags["message"]
        assert named, "the IS drift must be reported with the injection it started at"
        for number, sample_id in named:
            assert position[sample_id] == number, (number, sample_id)
        last = ingestor.history[-1]
        assert not last.in_worklist and last.reinjection_of == position["S0003"]
        assert last.order == max(p for p in position.values() if p is not None)
        notes = (
            store.reader()
            .execute("SELECT notes FROM injections WHERE file = ?", [again.name])
            .fetchone()
        )
        assert notes is not None and "re-injection of S0003 (worklist position " in str(notes[0])
        assert results.height == len(sim.paths)  # one missing, one extra
        restored = RunIngestor(store, assay, run, worklist)
        restored.restore()
        assert [h.order for h in restored.history] == [h.order for h in ingestor.history]
