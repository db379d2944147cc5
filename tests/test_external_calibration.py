"""Assays without an internal standard: quantified on the analyte area, and said so.

The real series is SGI's positive-mode cation method (SCIEX QTRAP 5500): eight
asparagine standards 0.39-50 µM and two unknowns, no IS; asparagine 133.1->116
near 15.7 min, the whole chromatogram drifting by up to ±1.5 min between
injections, an interferent near 10.7 min that is the tallest peak of the Asn
channel in the unknowns, and a misfiled negative-mode file. The assay file and
worklist are written here, from the folder's own method and concentration files.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from asnmon.assay import DEFAULT_ASSAY, Assay, load_assay
from asnmon.cli import main
from asnmon.mzml import read_file
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.records import SampleType
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

SGI_ASSAY = """
[assay]
name = "SGI cations: asparagine, external calibration"
analyte = "asparagine"
unit = "µM"
polarity = "positive"

[[transitions]]
id = "asn"
name = "Asn 133.1>116"
q1 = 133.1
q3 = 116.0
role = "analyte_quant"

[retention]
expected_rt = 15.7
window = 2.0  # the run drifts ±1.5 min between injections

[calibration]
lloq = 0.390625
uloq = 50.0
"""
STANDARDS = {  # file stem -> µM, as in the folder's standardsConcentrations.csv
    "Stds_039uM": 0.390625,
    "Stds_078uM": 0.78125,
    "Stds_1-56uM": 1.5625,
    "Stds_3-125uM": 3.125,
    "Stds_6-25uM": 6.25,
    "Stds_12-5uM": 12.5,
    "Stds_25uM": 25.0,
    "Stds_50uM": 50.0,
}
UNKNOWNS = ("No_1", "No_43")
MISFILED = "25uM"  # negative mode: malate 133.014->115 would fool a naive Q1 lookup
IS_CODES = {"IS_LOW", "IS_HIGH", "IS_DRIFT", "IS_BIAS", "IS_NO_REFERENCE"}


def _levels(stem: str) -> str:
    return f"CAL{list(STANDARDS).index(stem) + 1}"


@pytest.fixture(scope="module")
def sgi(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = realdata / "sgi_cations_aa_mrm"
    here = tmp_path_factory.mktemp("sgi")
    (here / "sgi.toml").write_text(SGI_ASSAY, "utf-8")
    with (folder / "standardsConcentrations.csv").open(encoding="utf-8") as fh:
        stated = {
            r["sample_name"]: float(r["actual_concentration"])
            for r in csv.DictReader(fh)
            if r["component_name"] == "Asn_M0"
        }
    assert {k: stated[k] for k in STANDARDS} == STANDARDS  # our table is the folder's
    with (here / "worklist.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "sample_id", "sample_type", "level", "nominal"])
        for stem, nominal in STANDARDS.items():
            out.writerow([stem, stem, "calibrator", _levels(stem), nominal])
        for stem in UNKNOWNS:
            out.writerow([stem, stem, "sample", "", ""])
    assay = load_assay(here / "sgi.toml")
    store = Store(here / "sgi.duckdb")
    worklist = load_worklist(here / "worklist.csv")
    ingestor = RunIngestor(
        store, assay, RunInfo(run_id="sgi", name="sgi", planned=len(worklist)), worklist
    )
    paths = [folder / f"{s}.mzML" for s in (*STANDARDS, *UNKNOWNS, MISFILED)]
    ingest_paths(ingestor, paths)
    results = {r["file"].removesuffix(".mzML"): r for r in store.results("sgi").to_dicts()}
    flags = store.flags("sgi").to_dicts()
    cal = ingestor.calibration
    store.close()
    return {"assay": assay, "results": results, "flags": flags, "cal": cal, "folder": folder}


def _trapezoid(folder: Path, stem: str, lo: float, hi: float) -> tuple[float, float]:
    """(apex RT, area above the median level) over apex ± 0.15 min of the Asn channel."""
    raw = read_file(folder / f"{stem}.mzML")
    [c] = [c for c in raw.chromatograms if c.q1 == 133.1 and c.q3 == 116.0]
    inside = np.flatnonzero((c.rt >= lo) & (c.rt <= hi))
    apex = int(inside[np.argmax(c.intensity[inside])])
    near = (c.rt >= c.rt[apex] - 0.15) & (c.rt <= c.rt[apex] + 0.15)
    level = float(np.median(c.intensity[inside]))
    return float(c.rt[apex]), float(np.trapezoid(c.intensity[near] - level, c.rt[near]))


def test_every_result_says_there_is_no_internal_standard(sgi: dict[str, object]) -> None:
    results: dict[str, dict[str, object]] = sgi["results"]  # type: ignore[assignment]
    flags: list[dict[str, object]] = sgi["flags"]  # type: ignore[assignment]
    read = [k for k, r in results.items() if not r["error"]]
    assert sorted(read) == sorted([*STANDARDS, *UNKNOWNS])
    for stem in read:
        mine = [f for f in flags if f["file"] == f"{stem}.mzML"]
        ext = [f for f in mine if f["code"] == "EXTERNAL_CALIBRATION"]
        assert len(ext) == 1 and ext[0]["severity"] == "info", stem
        assert "no internal standard" in str(ext[0]["message"])
        assert "IS drift" in str(ext[0]["message"])  # names the rules it skips
        assert not IS_CODES & {f["code"] for f in mine}, stem
        assert not any(f["code"] == "NO_PEAK" for f in mine), stem
        assert results[stem]["is_area"] is None and results[stem]["area_ratio"] is None


def test_check_assay_says_there_is_no_internal_standard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sgi.toml").write_text(SGI_ASSAY, "utf-8")
    assert main(["check-assay", str(tmp_path / "sgi.toml")]) == 0
    assert "internal standard: none -- external calibration" in capsys.readouterr().out


def test_the_misfiled_negative_mode_file_is_refused(sgi: dict[str, object]) -> None:
    results: dict[str, dict[str, object]] = sgi["results"]  # type: ignore[assignment]
    bad = results[MISFILED]
    assert bad["status"] == "no_result" and bad["flags"] == "READ_ERROR"
    assert "negative mode" in str(bad["error"])


def test_asparagine_is_found_where_it_elutes_not_the_interferent(
    sgi: dict[str, object],
) -> None:
    results: dict[str, dict[str, object]] = sgi["results"]  # type: ignore[assignment]
    assay: Assay = sgi["assay"]  # type: ignore[assignment]
    folder: Path = sgi["folder"]  # type: ignore[assignment]
    lo = assay.retention.expected_rt - assay.retention.window
    hi = assay.retention.expected_rt + assay.retention.window
    for stem in (*STANDARDS, *UNKNOWNS):
        row = results[stem]
        apex, area = _trapezoid(folder, stem, lo, hi)
        assert row["analyte_rt"] == pytest.approx(apex, abs=0.05), stem
        assert row["analyte_area"] == pytest.approx(area, rel=0.10), stem
    for stem in UNKNOWNS:  # the channel's tallest peak is elsewhere in these two
        everywhere, _ = _trapezoid(folder, stem, 0.0, 30.0)
        assert abs(everywhere - 10.7) < 0.3
        assert abs(float(results[stem]["analyte_rt"]) - everywhere) > 4.0  # type: ignore[arg-type]


def test_ich_m10_rejects_the_curve_and_says_why(sgi: dict[str, object]) -> None:
    """The standards scatter beyond ±15 % in the data itself: 1.56 µM reads below 0.39 µM.

    The curve (linear, 1/x², on the analyte area) is fitted and rejected: only 4 of
    8 standards back-calculate within limits, 75 % and 6 levels are required.
    """
    cal = sgi["cal"]
    results: dict[str, dict[str, object]] = sgi["results"]  # type: ignore[assignment]
    flags: list[dict[str, object]] = sgi["flags"]  # type: ignore[assignment]
    assert cal is not None and not cal.accepted  # type: ignore[attr-defined]
    reason = cal.reason  # type: ignore[attr-defined]
    assert "only 4/8 standards within limits (75% required)" in reason
    assert "only 4 levels pass (6 required)" in reason
    points = cal.points  # type: ignore[attr-defined]
    excluded = {p.level: p.accuracy_pct - 100.0 for p in points if p.excluded}
    assert set(excluded) == {"CAL3", "CAL4", "CAL6", "CAL7"}
    assert all(abs(d) > 25.0 for d in excluded.values()), excluded
    # the curve is on the analyte areas: its points are the stored areas
    for p in points:
        stem = next(s for s in STANDARDS if _levels(s) == p.level)
        assert p.area_ratio == pytest.approx(results[stem]["analyte_area"])
    # why, in the data: the 1.56 µM standard gives less asparagine than the 0.39 µM one
    assert results["Stds_1-56uM"]["analyte_area"] < results["Stds_039uM"]["analyte_area"]
    run_flags = {f["code"]: f for f in flags if f["file"] is None}
    assert run_flags["CAL_FAIL"]["severity"] == "fail"
    assert "RUN_FAIL" in run_flags


def test_unknowns_wait_on_the_analyte_area_without_a_number(sgi: dict[str, object]) -> None:
    results: dict[str, dict[str, object]] = sgi["results"]  # type: ignore[assignment]
    flags: list[dict[str, object]] = sgi["flags"]  # type: ignore[assignment]
    for stem in UNKNOWNS:
        row = results[stem]
        assert row["status"] == "provisional" and row["conc"] is None
        [nocal] = [
            f for f in flags if f["file"] == f"{stem}.mzML" and f["code"] == "NO_CALIBRATION"
        ]
        assert "analyte area" in str(nocal["message"])
        assert nocal["value"] == pytest.approx(row["analyte_area"])


# ---------------------------------------------------------------- an accepted curve


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A simulated run read with the shipped assay minus its IS transitions."""
    folder = tmp_path_factory.mktemp("ext_sim")
    simulate_run(folder, SimConfig(n_samples=12, seed=5))
    toml = resources.files("asnmon.data").joinpath(DEFAULT_ASSAY).read_text("utf-8")
    blocks = toml.split("[[transitions]]")
    kept = [b for b in blocks[1:] if 'role = "is_' not in b]
    ext = folder / "external.toml"
    ext.write_text(blocks[0] + "".join("[[transitions]]" + b for b in kept), "utf-8")
    external = load_assay(ext)
    assert external.is_quant is None
    store = Store(tmp_path_factory.mktemp("db") / "ext.duckdb")
    worklist = load_worklist(folder / "worklist.csv")
    ingestor = RunIngestor(
        store, external, RunInfo(run_id="ext", name="ext", planned=len(worklist)), worklist
    )
    ingest_paths(ingestor, sorted(folder.glob("*.mzML")))
    with (folder / "truth.csv").open(encoding="utf-8") as fh:
        truth = {r["file"]: float(r["true_conc"]) for r in csv.DictReader(fh)}
    out = {
        "results": store.results("ext"),
        "flags": store.flags("ext"),
        "cal": ingestor.calibration,
        "truth": truth,
    }
    store.close()
    return out


def test_external_calibration_quantifies_samples_on_the_analyte_area(
    simulated: dict[str, object],
) -> None:
    cal = simulated["cal"]
    res: pl.DataFrame = simulated["results"]  # type: ignore[assignment]
    flags: pl.DataFrame = simulated["flags"]  # type: ignore[assignment]
    truth: dict[str, float] = simulated["truth"]  # type: ignore[assignment]
    assert cal is not None and cal.accepted, cal  # type: ignore[attr-defined]
    # the curve's responses are analyte areas (~1e2-1e5), not area ratios (~0.005-2.5)
    assert max(p.area_ratio for p in cal.points) > 1e3  # type: ignore[attr-defined]
    samples = res.filter(
        (pl.col("sample_type") == SampleType.SAMPLE.value) & pl.col("conc").is_not_null()
    )
    assert samples.height >= 8
    for f, c in zip(samples["file"], samples["conc"], strict=True):
        # no IS corrects the simulator's 4 % IS-response variation: ±15 % still holds
        assert c == pytest.approx(truth[Path(f).stem], rel=0.15), f
    assert res["area_ratio"].is_null().all() and res["is_area"].is_null().all()
    qcs = res.filter(pl.col("sample_type") == "qc")
    assert qcs.height >= 6 and qcs["accuracy_pct"].is_not_null().all()
    ext = flags.filter(pl.col("code") == "EXTERNAL_CALIBRATION")
    assert ext.height == res.filter(pl.col("error").is_null()).height
    assert set(ext["severity"]) == {"info"}
    assert not set(flags["code"]) & IS_CODES
