"""Worklist CSV and the file-name convention."""

from __future__ import annotations

from pathlib import Path

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
        ("a,a,calibrator,,,,,,,,\n", "row 2: a calibrator needs a 'nominal'"),
        ("a,a,sample,,,,,,,,\na,b,sample,,,,,,,,\n", "row 3, column 'file': 'a' already on row 2"),
    ],
)
def test_problems_name_row_and_column(body: str, expected: str) -> None:
    with pytest.raises(WorklistError) as info:
        parse_worklist(HEADER + body)
    assert any(expected in p for p in info.value.problems), info.value.problems


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
