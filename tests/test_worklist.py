"""Worklist CSV and the file-name convention."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from asnmon.assay import Assay
from asnmon.errors import WorklistError
from asnmon.records import SampleType
from asnmon.worklist import (
    file_key,
    load_worklist,
    parse_worklist,
    resolve_sample,
    sample_from_name,
)

HEADER = (
    "file,sample_id,sample_type,level,nominal,matrix,dilution,normalizer,normalizer_unit,"
    "volume_ul,group\n"
)


def test_parse_rows_and_positions() -> None:
    wl = parse_worklist(
        HEADER
        + "001_DBLANK,DB,double_blank,,,,,,,,\n"
        + "004_CAL01,CAL01,calibrator,CAL01,1.0,surrogate,,,,,\n"
        + "030_S1,P-17,sample,,,media,2,,,,ctrl-1\n"
        + "031_S2,L-17,sample,,,intracellular,,0.25,mg protein,100,ctrl-1\n"
    )
    assert len(wl) == 4
    s = wl.lookup("030_S1.mzML")
    assert s is not None and s.dilution == 2.0 and s.group == "ctrl-1" and s.position == 3
    lys = wl.lookup("031_S2.mzML.gz")
    assert lys is not None and lys.normalizer == 0.25 and lys.volume_ul == 100
    cal = wl.lookup("004_CAL01")
    assert cal is not None and cal.sample_type is SampleType.CALIBRATOR and cal.nominal == 1.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a,a,standard,,,,,,,,\n", "row 2, column 'sample_type': 'standard'"),
        ("a,a,sample,,,,zero,,,,\n", "row 2, column 'dilution': 'zero' is not a number"),
        ("a,a,sample,,,,0,,,,\n", "row 2, column 'dilution': must be > 0"),
        ("a,a,sample,,,,nan,,,,\n", "row 2, column 'dilution': 'nan' is not a number"),
        ("a,a,sample,,,,1e999,,,,\n", "row 2, column 'dilution': '1e999' is too large"),
        ("a,a,calibrator,,,,,,,,\n", "row 2: a calibrator needs a 'nominal'"),
        ("a,a,calibrator,,-3,,,,,,\n", "row 2, column 'nominal': must not be negative"),
        ("a,a\x1b[31m,sample,,,,,,,,\n", "row 2, column 'sample_id': holds a control character"),
        ("a,a,sample,,,,,,,,\na,b,sample,,,,,,,,\n", "row 3, column 'file': 'a' already on row 2"),
    ],
)
def test_problems_name_row_and_column(body: str, expected: str) -> None:
    wl = parse_worklist(HEADER + body + "good,G,blank,,,,,,,,\n")
    problems = [str(p) for p in wl.problems]
    assert any(expected in p for p in problems), problems
    assert wl.lookup("a") is None and wl.problems_for("a.mzML")  # held, not guessed
    good = wl.lookup("good.mzML")  # one bad row never stops the others
    assert good is not None and good.sample_type is SampleType.BLANK


POSITION_HEADER = "file,sample_type,position\n"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("\u00b2", "'\u00b2' is not a whole number"),  # "²".isdigit() is True; int("²") raises
        ("\u0663", "'\u0663' is not a whole number"),  # Arabic-Indic 3: int() would take it
        ("3000000000", "3000000000 is outside 1 to 2,147,483,647 (the database limit)"),
        ("0", "0 is outside 1 to"),
        ("-2", "'-2' is not a whole number"),
        ("2.5", "'2.5' is not a whole number"),
        ("two", "'two' is not a whole number"),
    ],
)
def test_a_bad_position_is_a_problem_of_its_row_only(cell: str, expected: str) -> None:
    wl = parse_worklist(POSITION_HEADER + f"before,blank,1\nbad,sample,{cell}\nafter,sample,3\n")
    assert len(wl.problems) == 1
    assert str(wl.problems[0]).startswith(f"row 3, column 'position': {expected}")
    assert wl.problems[0].file == "bad" and wl.problems_for("bad.mzML") == wl.problems
    assert wl.lookup("bad") is None
    before, after = wl.lookup("before"), wl.lookup("after")
    assert before is not None and before.position == 1
    assert after is not None and after.position == 3
    assert len(wl) == 3  # planned injections still count the held one


def test_positions_up_to_the_database_limit_are_stored(tmp_path: Path) -> None:
    """The largest position the parser accepts is one the database holds."""
    from asnmon.store import Store
    from asnmon.worklist import MAX_POSITION

    wl = parse_worklist(POSITION_HEADER + f"x,sample,{MAX_POSITION}\n")
    assert not wl.problems
    with Store(tmp_path / "p.duckdb") as store:
        con = store.reader()
        con.execute("CREATE TABLE t (position INTEGER)")
        con.execute("INSERT INTO t VALUES (?)", [wl.samples[0].position])
        with pytest.raises(duckdb.Error):
            con.execute("INSERT INTO t VALUES (?)", [MAX_POSITION + 1])


def test_missing_and_unknown_columns() -> None:
    with pytest.raises(WorklistError, match="column 'sample_type' is missing"):
        parse_worklist("file,sample_id\na,b\n")
    with pytest.raises(WorklistError, match="column 'volume' is not known"):
        parse_worklist("file,sample_type,volume\na,sample,3\n")
    with pytest.raises(WorklistError, match="empty"):
        parse_worklist("")


def test_load_worklist_with_bom(tmp_path: Path) -> None:
    p = tmp_path / "wl.csv"
    p.write_bytes(("\ufeff" + HEADER + "x,x,blank,,,,,,,,\n").encode("utf-8"))
    assert load_worklist(p).samples[0].sample_type is SampleType.BLANK
    with pytest.raises(WorklistError, match="no such worklist"):
        load_worklist(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("name", "stype", "level", "nominal"),
    [
        ("001_DBLANK.mzML", SampleType.DOUBLE_BLANK, None, None),
        ("double_blank.mzML", SampleType.DOUBLE_BLANK, None, None),
        ("BLANK_3.mzML", SampleType.BLANK, None, None),
        ("002_ZERO.mzML", SampleType.ZERO, None, None),
        ("004_CAL03.mzML", SampleType.CALIBRATOR, "CAL03", 10.0),
        ("Std_05.mzML.gz", SampleType.CALIBRATOR, "CAL05", 50.0),
        ("QC-L_2.mzML", SampleType.QC, "QC-L", 3.0),
        ("run7_qc_high.mzML", SampleType.QC, "QC-H", 400.0),
        ("023_S0012.mzML", SampleType.SAMPLE, None, None),
        ("calibration_notes.mzML", SampleType.SAMPLE, None, None),
    ],
)
def test_file_name_convention(
    name: str, stype: SampleType, level: str | None, nominal: float | None, assay: Assay
) -> None:
    s = sample_from_name(name, assay)
    assert (s.sample_type, s.level, s.nominal) == (stype, level, nominal)
    assert not s.in_worklist


def test_resolve_prefers_worklist_and_fills_nominal_from_level(assay: Assay) -> None:
    wl = parse_worklist(HEADER + "inj9,QC-M-1,qc,QC-M,,,,,,,\n")
    s = resolve_sample("inj9.mzML", wl, assay)
    assert s.in_worklist and s.nominal == 200.0
    unknown = resolve_sample("other.mzML", wl, assay)
    assert not unknown.in_worklist and unknown.sample_type is SampleType.SAMPLE


def test_file_key() -> None:
    assert file_key("a/b/023_S1.mzML.gz") == "023_S1"
    assert file_key("X.mzml") == "X"
    assert file_key("sample.d") == "sample"
