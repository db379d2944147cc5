"""The assay file: parsed once, every problem named by its key."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from asnmon.assay import DEFAULT_ASSAY, limit_sources, load_assay, parse_assay
from asnmon.cli import main
from asnmon.errors import AssayError
from asnmon.records import Role


def _default() -> dict[str, Any]:
    text = resources.files("asnmon.data").joinpath(DEFAULT_ASSAY).read_text("utf-8")
    return tomllib.loads(text)


def test_shipped_assay_is_asparagine_with_labelled_is() -> None:
    assay = load_assay()
    assert assay.analyte_quant.q1 == pytest.approx(133.1)
    assert assay.analyte_quant.q3 == pytest.approx(87.1)
    assert assay.is_quant is not None and assay.is_quant.q1 == pytest.approx(139.1)
    assert not assay.external_calibration
    assert assay.by_role(Role.ANALYTE_QUAL) is not None
    assert assay.calibration.weighting == "1/x^2"
    assert assay.limits.is_low_pct == 50 and assay.limits.is_high_pct == 150
    assert [q.name for q in assay.qc_levels] == ["QC-L", "QC-M", "QC-H"]
    assert assay.matrix("plasma") is not None
    assert len(assay.calibrators) == 8


def test_every_sourced_limit_names_its_source() -> None:
    rows = limit_sources()
    keys = {(s, k) for s, k, _, _ in rows}
    assert ("limits", "is_low_pct") in keys
    assert ("calibration", "accuracy_pct") in keys
    assert all(src for *_, src in rows)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["limits"].update(is_low_pct="fifty"), "limits.is_low_pct: must be float"),
        (lambda d: d["limits"].update(is_low_pt=50.0), "did you mean 'is_low_pct'"),
        (
            lambda d: d["calibration"].update(weighting="1/y"),
            "calibration.weighting: must be one of",
        ),
        (lambda d: d["calibration"].update(lloq=600.0), "calibration.lloq: must be below"),
        (lambda d: d["transitions"][0].update(role="quant"), "transitions[0].role"),
        (lambda d: d["transitions"][0].update(q1=-1), "transitions[0].q1"),
        (
            lambda d: d["transitions"][3].update(role="is_quant"),
            "at most one transition may have role 'is_quant'",
        ),
        (lambda d: d["transitions"].pop(2), "an 'is_qual' transition needs an 'is_quant'"),
        (
            lambda d: d["transitions"][1].update(role="analyte_quant"),
            "exactly one transition must have role 'analyte_quant'; found 2",
        ),
        (lambda d: d["assay"].pop("name"), "assay.name: required"),
        (lambda d: d["assay"].update(polarity="pos"), "assay.polarity"),
        (lambda d: d["qc_levels"][0].update(nominal=0.1), "qc_levels.QC-L.nominal"),
        (lambda d: d["limits"].update(run_qc_pass_fraction=2.0), "must be <= 1"),
        (lambda d: d.update(limitz={}), "did you mean 'limits'"),
    ],
)
def test_problems_name_the_key(edit: Any, expected: str) -> None:
    data = _default()
    edit(data)
    with pytest.raises(AssayError) as info:
        parse_assay(data, "test.toml")
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_an_assay_without_internal_standard_is_an_external_calibration() -> None:
    data = _default()
    data["transitions"] = [t for t in data["transitions"] if not t["role"].startswith("is_")]
    assay = parse_assay(data, "external.toml")
    assert assay.is_quant is None
    assert assay.external_calibration
    assert assay.analyte_quant.q3 == pytest.approx(87.1)


def test_all_problems_reported_at_once() -> None:
    data = _default()
    data["limits"]["is_low_pct"] = "x"
    data["calibration"]["model"] = "cubic"
    with pytest.raises(AssayError) as info:
        parse_assay(data)
    assert len(info.value.problems) == 2


def test_check_assay_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-assay"]) == 0
    assert "limits.is_low_pct = 50.0" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('[assay]\nname = "x"\n[limits]\nis_low_pct = -3\n', "utf-8")
    assert main(["check-assay", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "limits.is_low_pct: must be >= 0" in out
    assert "transitions: at least one" in out
    broken = tmp_path / "broken.toml"
    broken.write_text("[assay\n", "utf-8")
    assert main(["check-assay", str(broken)]) == 1
    assert "not valid TOML" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("min_sn = 0", "integration.interference.min_sn: must be > 0"),
        ("apex_gap_fwhm = 0.2", "integration.interference.apex_gap_fwhm: must be >= 0.5"),
        ("min_clean_share = 1.5", "integration.interference.min_clean_share: must be <= 1"),
        ("min_snr = 7", "integration.interference.min_snr: unknown key (did you mean 'min_sn'?)"),
        ("profile_t = 'four'", "integration.interference.profile_t: must be float"),
    ],
)
def test_interference_settings_that_cannot_work_are_refused(table: str, expected: str) -> None:
    data = _default()
    data["integration"]["interference"] = tomllib.loads(table)
    with pytest.raises(AssayError) as err:
        parse_assay(data)
    assert expected in str(err.value)


def test_interference_settings_are_read_and_sourced() -> None:
    data = _default()
    data["integration"]["interference"]["min_sn"] = 7
    data["integration"]["baseline_offset_pct"] = 4.5
    assay = parse_assay(data)
    assert assay.integration.interference.min_sn == 7.0
    assert assay.integration.interference.tail_share == 0.03  # the rest keep their defaults
    assert assay.integration.baseline_offset_pct == 4.5
    data["integration"]["baseline_offset_pct"] = 0
    with pytest.raises(AssayError, match=r"integration.baseline_offset_pct: must be > 0"):
        parse_assay(data)
    keys = {(s, k) for s, k, _, _ in limit_sources()}
    assert ("integration.interference", "min_sn") in keys
    assert ("integration", "baseline_offset_pct") in keys
