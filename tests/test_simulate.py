"""The simulator: sequence, file validity, faults, determinism, progressive writing.

Files are parsed here with lxml directly (plus one read through asnmon.mzml),
so a reader bug cannot hide a simulator bug.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import re
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from asnmon.assay import Assay
from asnmon.records import SampleType
from asnmon.simulate import (
    TRACES,
    TRUTH_HEADER,
    WORKLIST_HEADER,
    Faults,
    PlannedInjection,
    SimConfig,
    SimulatedRun,
    apply_faults,
    parse_fault,
    plan_run,
    render_traces,
    simulate_run,
    time_axis,
    write_injection,
)

NS = "{http://psi.hupo.org/ms/mzml}"
FAULTS = (
    "is-drift:40:2.5",
    "rt-step:30:0.2",
    "short:25",
    "over-curve",
    "depleted",
    "biased-qc:QC-M:25",
    "carryover",
    "truncated:20",
    "junk:35",
    "broken-curve",
)


# ---------------------------------------------------------------- helpers


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _decode(bda: etree._Element) -> np.ndarray:
    accs = {p.get("accession") for p in bda.iter(f"{NS}cvParam")}
    assert "MS:1000574" in accs, "arrays must be zlib-compressed"
    assert "MS:1000523" in accs, "arrays must be 64-bit floats"
    raw = zlib.decompress(base64.b64decode(bda.findtext(f"{NS}binary") or ""))
    return np.frombuffer(raw, dtype="<f8")


def _traces(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, etree._Element]]:
    """Chromatogram id -> (time, intensity, element)."""
    root = etree.parse(str(path)).getroot()
    out = {}
    for chrom in root.iter(f"{NS}chromatogram"):
        t, y = (_decode(b) for b in chrom.iter(f"{NS}binaryDataArray"))
        out[chrom.get("id")] = (t, y, chrom)
    return out


def _srm_id(i: int) -> str:
    tr = TRACES[i]
    return f"SRM SIC Q1={tr.q1:g} Q3={tr.q3:g} sample=1 period=1 experiment=1 transition={i}"


def _area(path: Path, index: int, centre: float = 3.2) -> float:
    """Trapezoid area above the median baseline within ±0.4 min of ``centre``."""
    t, y, _ = _traces(path)[_srm_id(index)]
    base = float(np.median(y[(t > 4.5) & (t < 5.5)]))
    m = (t > centre - 0.4) & (t < centre + 0.4)
    return float(np.trapezoid(y[m] - base, t[m]))


def _write(inj: PlannedInjection, config: SimConfig, folder: Path) -> Path:
    return write_injection(inj, folder / f"{inj.stem}.mzML", config)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> SimulatedRun:
    return simulate_run(tmp_path_factory.mktemp("clean"), SimConfig(n_samples=40))


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory) -> SimulatedRun:
    config = apply_faults(SimConfig(n_samples=40), FAULTS)
    return simulate_run(tmp_path_factory.mktemp("faulty"), config)


# ---------------------------------------------------------------- the sequence


def test_run_writes_files_in_acquisition_order_matching_the_worklist(
    clean_run: SimulatedRun,
) -> None:
    files = sorted(clean_run.out_dir.glob("*.mzML"))
    assert files == list(clean_run.paths)
    assert len(files) == len(clean_run.injections) == len(plan_run(SimConfig(n_samples=40)))
    with clean_run.worklist_path.open(encoding="utf-8") as fh:
        assert tuple(next(csv.reader(fh))) == WORKLIST_HEADER
    rows = _rows(clean_run.worklist_path)
    assert [r["file"] for r in rows] == [p.stem for p in files]
    assert [int(r["file"][:3]) for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["file"].endswith("_" + r["sample_id"]) for r in rows)
    truth = _rows(clean_run.truth_path)
    assert tuple(truth[0]) == TRUTH_HEADER
    assert [r["file"] for r in truth] == [r["file"] for r in rows]


def test_sequence_has_blanks_calibrators_qcs_and_paired_cultures(clean_run: SimulatedRun) -> None:
    rows = _rows(clean_run.worklist_path)
    types = [r["sample_type"] for r in rows]
    assert types[:3] == ["double_blank", "double_blank", "zero"]
    cals = [r for r in rows if r["sample_type"] == "calibrator"]
    assert [r["sample_id"] for r in cals[:8]] == [f"CAL{i:02d}" for i in range(1, 9)]
    assert [r["sample_id"] for r in cals[8:]] == [f"CAL{i:02d}-b" for i in range(1, 9)]
    assert [float(r["nominal"]) for r in cals[:8]] == [1, 2.5, 10, 25, 50, 100, 250, 500]
    uloq = types.index("calibrator") + 7
    assert rows[uloq + 1]["sample_type"] == "blank", "a blank must follow the ULOQ"
    assert types[-8:] == ["calibrator"] * 8
    qcs = [r["level"] for r in rows if r["sample_type"] == "qc"]
    for level in ("QC-L", "QC-M", "QC-H"):
        assert qcs.count(level) >= 2
    samples = [r for r in rows if r["sample_type"] == "sample"]
    assert len(samples) == 40
    assert {r["matrix"] for r in samples} == {"plasma", "media", "intracellular"}
    lysates = [r for r in samples if r["matrix"] == "intracellular"]
    for r in lysates:
        assert 0.1 <= float(r["normalizer"]) <= 0.5
        assert r["normalizer_unit"] == "mg protein"
        assert float(r["volume_ul"]) == 100
        partner = [s for s in samples if s["group"] == r["group"] and s is not r]
        assert [s["matrix"] for s in partner] == ["media"]
    # between two QC sets there are at most qc_every samples
    gaps = "".join("Q" if t == "qc" else "s" if t == "sample" else "." for t in types)
    assert max(len(run) for run in gaps.replace(".", "").split("Q")) <= 15


def test_true_concentrations_fall_where_the_matrices_put_them() -> None:
    planned = plan_run(SimConfig(n_samples=120))
    by_matrix: dict[str, list[PlannedInjection]] = {}
    for p in planned:
        if p.sample.sample_type == SampleType.SAMPLE:
            by_matrix.setdefault(p.sample.matrix or "", []).append(p)
    plasma = np.array([p.true_conc for p in by_matrix["plasma"]])
    assert 40 < np.median(plasma) < 70
    for p in planned:
        assert p.true_conc == pytest.approx(p.true_conc_vial * p.sample.dilution)
        if p.sample.sample_type == SampleType.SAMPLE:
            assert 1.0 <= p.true_conc_vial <= 500.0, "no fault, so every sample is in range"


def test_simulated_transitions_include_the_shipped_assay(assay: Assay) -> None:
    pairs = {(t.q1, t.q3) for t in TRACES}
    for transition in assay.transitions:
        assert (transition.q1, transition.q3) in pairs
    assert {(133.1, 70.1), (134.05, 74.0)} <= pairs  # ornithine and aspartate neighbours


# ---------------------------------------------------------------- the files


def test_every_file_is_valid_mzml_with_the_expected_chromatograms(
    clean_run: SimulatedRun,
) -> None:
    stamps = []
    for path in clean_run.paths:
        root = etree.parse(str(path)).getroot()
        assert root.tag == f"{NS}indexedmzML"
        run = root.find(f"{NS}mzML/{NS}run")
        assert run is not None
        assert run.get("id")
        stamps.append(run.get("startTimeStamp"))
        traces = _traces(path)
        assert list(traces) == ["TIC", *(_srm_id(i) for i in range(len(TRACES)))]
        for i, tr in enumerate(TRACES):
            t, y, chrom = traces[_srm_id(i)]
            targets = [
                float(p.get("value"))
                for p in chrom.iter(f"{NS}cvParam")
                if p.get("name") == "isolation window target m/z"
            ]
            assert targets == [tr.q1, tr.q3]
            assert "MS:1000130" in {p.get("accession") for p in chrom.findall(f"{NS}cvParam")}
            assert t.size == y.size == 1801
            assert np.isfinite(y).all()
            assert (y >= 0).all()
            assert t[0] == 0.0
            assert t[-1] == pytest.approx(6.0)
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


def test_index_offsets_point_at_their_chromatograms(clean_run: SimulatedRun) -> None:
    data = clean_run.paths[3].read_bytes()
    offsets = re.findall(rb'<offset idRef="([^"]+)">(\d+)</offset>', data)
    assert len(offsets) == len(TRACES) + 1
    for ref, offset in offsets:
        start = int(offset)
        assert data[start:].startswith(b"<chromatogram ")
        assert f'id="{ref.decode()}"'.encode() in data[start : start + 300]


def test_peaks_are_realistic() -> None:
    config = SimConfig()
    planned = plan_run(config)
    cal8 = next(p for p in planned if p.sample.sample_id == "CAL08")
    traces = render_traces(cal8, config)
    t = time_axis(config)
    for i in (0, 2):  # analyte and IS quantifiers
        apex = t[np.argmax(traces[i])]
        assert apex == pytest.approx(3.2, abs=0.05)
        assert 1e5 < traces[i].max() < 1e7
        half = traces[i] > traces[i].max() / 2
        fwhm = t[half][-1] - t[half][0]
        assert 0.1 < fwhm < 0.3
    sample = next(p for p in planned if p.sample.matrix == "plasma")
    orn = render_traces(sample, config)[4]
    assert t[np.argmax(orn)] == pytest.approx(TRACES[4].rt, abs=0.05)


def test_ratio_qualifier_and_is_behave(tmp_path: Path) -> None:
    config = SimConfig(is_cv=0.0, ratio_cv=0.0)
    planned = plan_run(config)
    cal5 = next(p for p in planned if p.sample.sample_id == "CAL05")  # 50 µM
    path = _write(cal5, config, tmp_path)
    analyte, qual, is_area = _area(path, 0), _area(path, 1), _area(path, 2)
    expected = config.slope * 50 + config.intercept
    assert analyte / is_area == pytest.approx(expected, rel=0.03)
    assert qual / analyte == pytest.approx(config.ion_ratio, rel=0.1)
    assert is_area == pytest.approx(config.is_area, rel=0.03)


def test_time_array_in_seconds_when_asked(tmp_path: Path) -> None:
    config = SimConfig(time_unit="second", include_tic=False, indexed=False)
    path = _write(plan_run(config)[5], config, tmp_path)
    traces = _traces(path)
    assert "TIC" not in traces
    t, _, chrom = traces[_srm_id(0)]
    assert t[-1] == pytest.approx(360.0)
    assert "second" in {p.get("unitName") for p in chrom.iter(f"{NS}cvParam")}
    assert etree.parse(str(path)).getroot().tag == f"{NS}mzML"


# ---------------------------------------------------------------- faults


def test_is_drift_lowers_the_is_area_by_the_expected_factor(tmp_path: Path) -> None:
    clean = SimConfig(is_cv=0.0)
    drift = apply_faults(clean, ["is-drift:40:2.5"])
    before_c, after_c = plan_run(clean)[38], plan_run(clean)[59]
    before_d, after_d = plan_run(drift)[38], plan_run(drift)[59]
    assert before_d.is_factor == 1.0
    assert "is-drift" not in before_d.faults
    assert after_d.is_factor == pytest.approx(0.975**20)
    assert "is-drift" in after_d.faults
    (tmp_path / "c").mkdir()
    (tmp_path / "d").mkdir()
    ratio_before = _area(_write(before_d, drift, tmp_path / "d"), 2) / _area(
        _write(before_c, clean, tmp_path / "c"), 2
    )
    ratio_after = _area(_write(after_d, drift, tmp_path / "d"), 2) / _area(
        _write(after_c, clean, tmp_path / "c"), 2
    )
    assert ratio_before == pytest.approx(1.0, abs=0.01)
    assert ratio_after == pytest.approx(0.975**20, rel=0.02)


def test_short_injection_scales_both_areas_and_keeps_the_ratio(tmp_path: Path) -> None:
    clean = SimConfig(is_cv=0.0)
    short = apply_faults(clean, ["short:20"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _write(plan_run(clean)[19], clean, tmp_path / "a")
    b = _write(plan_run(short)[19], short, tmp_path / "b")
    assert _area(b, 2) / _area(a, 2) == pytest.approx(0.3, rel=0.03)
    assert _area(b, 0) / _area(b, 2) == pytest.approx(_area(a, 0) / _area(a, 2), rel=0.03)


def test_rt_step_moves_every_peak_from_its_injection_on(faulty_run: SimulatedRun) -> None:
    truth = _rows(faulty_run.truth_path)
    assert all(float(r["rt_shift"]) == 0 for r in truth[:29])
    assert all(float(r["rt_shift"]) == pytest.approx(0.2) for r in truth[29:])
    t, y, _ = _traces(faulty_run.paths[40])[_srm_id(2)]
    assert t[np.argmax(y)] == pytest.approx(3.4, abs=0.05)


def test_faults_are_recorded_in_the_ground_truth(faulty_run: SimulatedRun) -> None:
    truth = {r["file"]: r for r in _rows(faulty_run.truth_path)}
    work = {r["file"]: r for r in _rows(faulty_run.worklist_path)}
    tagged = {f: set(r["faults"].split(";")) - {""} for f, r in truth.items()}
    everything = set().union(*tagged.values())
    assert everything == {
        "is-drift",
        "rt-step",
        "short",
        "over-curve",
        "depleted",
        "biased-qc",
        "carryover",
        "truncated",
        "junk",
        "broken-curve",
    }
    over = [f for f, s in tagged.items() if "over-curve" in s]
    assert len(over) == 1
    assert float(truth[over[0]]["true_conc_vial"]) > 500
    assert work[over[0]]["matrix"] == "media"
    depleted = [f for f, s in tagged.items() if "depleted" in s]
    assert len(depleted) == 1
    assert float(truth[depleted[0]]["true_conc_vial"]) < 1.0
    assert work[depleted[0]]["matrix"] == "plasma"
    biased = [f for f, s in tagged.items() if "biased-qc" in s]
    assert len(biased) == 1
    assert work[biased[0]]["level"] == "QC-M"
    assert float(truth[biased[0]]["true_conc_vial"]) == pytest.approx(250.0)
    assert [f[:3] for f, s in tagged.items() if "short" in s] == ["025"]
    assert float(next(r for f, r in truth.items() if f.startswith("025"))["is_factor"]) == 0.3
    assert len([f for f, s in tagged.items() if "broken-curve" in s]) == 6
    assert sum(1 for r in work.values() if r["sample_type"] == "sample") == 40


def test_carryover_blank_shows_the_set_fraction_of_the_lloq(faulty_run: SimulatedRun) -> None:
    work = _rows(faulty_run.worklist_path)
    blank = next(i for i, r in enumerate(work) if r["sample_type"] == "blank")
    cal1 = next(i for i, r in enumerate(work) if r["sample_id"] == "CAL01")
    ratio = _area(faulty_run.paths[blank], 0) / _area(faulty_run.paths[cal1], 0)
    assert ratio == pytest.approx(0.4, abs=0.1)
    clean = SimConfig(n_samples=40)
    plan = plan_run(clean)
    assert plan[blank].carryover_pct is not None
    assert plan[blank].carryover_pct < 20


def test_truncated_file_lacks_its_closing_tag(faulty_run: SimulatedRun) -> None:
    path = faulty_run.paths[19]
    data = path.read_bytes()
    assert data.startswith(b"<?xml")
    assert b"</indexedmzML>" not in data
    assert b"</mzML>" not in data
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(data)


def test_junk_file_is_not_xml(faulty_run: SimulatedRun) -> None:
    path = faulty_run.paths[34]
    assert path.suffix == ".mzML"
    data = path.read_bytes()
    assert len(data) > 1000
    assert not data.lstrip().startswith(b"<")
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(data)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("is-drift:40:2.5", {"is_drift": (40, 2.5)}),
        ("is-drift", {"is_drift": (40, 2.5)}),
        ("rt-step:30:0.2", {"rt_step": (30, 0.2)}),
        ("short:25", {"short_injection": 25}),
        ("over-curve", {"over_curve": True}),
        ("depleted", {"depleted": True}),
        ("biased-qc:QC-M:25", {"biased_qc": ("QC-M", 25.0, False)}),
        ("biased-qc:QC-H:-20:all", {"biased_qc": ("QC-H", -20.0, True)}),
        ("carryover", {"carryover": 40.0}),
        ("carryover:60", {"carryover": 60.0}),
        ("truncated", {"truncated": 20}),
        ("junk:12", {"junk": 12}),
        ("broken-curve", {"broken_curve": True}),
    ],
)
def test_parse_fault(spec: str, expected: dict[str, object]) -> None:
    assert parse_fault(spec) == expected
    dataclasses.replace(Faults(), **parse_fault(spec))  # every key is a Faults field


@pytest.mark.parametrize(
    "spec", ["is-drif:40", "is-drift:x", "short:1:2", "biased-qc:QC-X", "over-curve:3", ""]
)
def test_parse_fault_rejects_bad_specs_and_lists_the_valid_ones(spec: str) -> None:
    with pytest.raises(ValueError, match="valid fault specs: is-drift"):
        parse_fault(spec)


def test_fault_positions_outside_the_run_are_refused() -> None:
    with pytest.raises(ValueError, match="outside this run"):
        plan_run(apply_faults(SimConfig(n_samples=5), ["short:500"]))


def test_broken_curve_scrambles_only_the_first_calibration_set() -> None:
    planned = plan_run(apply_faults(SimConfig(n_samples=5), ["broken-curve"]))
    cals = [p for p in planned if p.sample.sample_type == SampleType.CALIBRATOR]
    first = [(p.sample.nominal, p.true_conc_vial) for p in cals[:8]]
    assert sum(nom != true for nom, true in first) >= 3  # < 75 % of standards can pass
    assert all(p.sample.nominal == p.true_conc_vial for p in cals[8:])


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    config = apply_faults(SimConfig(n_samples=4), ["junk:5", "truncated:6"])
    a = simulate_run(tmp_path / "a", config)
    simulate_run(tmp_path / "b", config)
    names = [p.name for p in a.paths] + ["worklist.csv", "truth.csv"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    c = simulate_run(tmp_path / "c", dataclasses.replace(config, seed=8))
    assert a.paths[5].read_bytes() != c.paths[5].read_bytes()
    # one injection rewritten alone is the same file
    single = write_injection(a.injections[7], tmp_path / "single.mzML", config)
    assert single.read_bytes() == a.paths[7].read_bytes()


# ---------------------------------------------------------------- progressive writing


def test_file_grows_while_written_and_closes_last(tmp_path: Path) -> None:
    config = SimConfig(n_samples=1)
    inj = plan_run(config)[5]
    path = tmp_path / f"{inj.stem}.mzML"
    seen: list[tuple[int, bool]] = []  # (size, closing tag present) as a watcher sees it
    with ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(write_injection, inj, path, config, write_seconds=1.0)
        while not wait([job], timeout=0.01).done:
            if path.exists():
                data = path.read_bytes()
                seen.append((len(data), b"</indexedmzML>" in data))
        job.result(timeout=10)  # re-raises a writer error here
    final = path.read_bytes()
    assert final.rstrip().endswith(b"</indexedmzML>")
    sizes = [size for size, _ in seen]
    assert sizes == sorted(sizes)
    assert len({s for s in sizes if 0 < s < len(final)}) >= 3, f"no growth seen: {sizes[:20]}"
    assert all(size == len(final) for size, closed in seen if closed)


def test_paced_run_reports_each_file_when_written(tmp_path: Path) -> None:
    seen: list[tuple[str, bool]] = []

    def on_written(p: Path) -> None:
        seen.append((p.name, p.read_bytes().rstrip().endswith(b"</indexedmzML>")))

    config = SimConfig(n_samples=1)
    run = simulate_run(tmp_path, config, interval=0.02, write_seconds=0.05, on_written=on_written)
    assert [name for name, _ in seen] == [p.name for p in run.paths]
    assert all(closed for _, closed in seen)
    assert run.seconds >= 0.02 * (len(run.paths) - 1)


def test_stop_event_ends_a_paced_run_early(tmp_path: Path) -> None:
    stop = threading.Event()
    written: list[Path] = []

    def on_written(p: Path) -> None:
        written.append(p)
        if len(written) == 2:
            stop.set()

    run = simulate_run(
        tmp_path, SimConfig(n_samples=5), interval=0.01, on_written=on_written, stop=stop
    )
    assert len(run.paths) == 2 < len(run.injections)


# ---------------------------------------------------------------- the project's reader


def test_project_reader_reads_a_simulated_file(clean_run: SimulatedRun, assay: Assay) -> None:
    from asnmon.mzml import read_file, read_injection

    path = clean_run.paths[5]
    raw = read_file(path)
    assert raw.meta.polarity == "positive"
    assert raw.meta.started_at is not None
    srm = [c for c in raw.chromatograms if c.kind == "srm"]
    assert len(srm) == len(TRACES)
    assert {(c.q1, c.q3) for c in srm} == {(t.q1, t.q3) for t in TRACES}
    injection = read_injection(path, assay)
    assert set(injection.traces) == {t.id for t in assay.transitions}
    assert injection.traces["is_quant"].rt[-1] == pytest.approx(6.0)


# ---------------------------------------------------------------- the realistic mode


def _realistic(*scenarios: str, seed: int = 7) -> SimConfig:
    return SimConfig(mode="realistic", scenarios=scenarios, n_samples=1, seed=seed)


def _cal(config: SimConfig, sample_id: str = "CAL08") -> PlannedInjection:
    return next(p for p in plan_run(config) if p.sample.sample_id == sample_id)


def _read(path: Path, assay: Assay) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Traces by assay transition id, through the project's reader."""
    from asnmon.mzml import read_injection

    inj = read_injection(path, assay)
    return {k: (np.asarray(c.rt), np.asarray(c.intensity)) for k, c in inj.traces.items()}


def _cubic_residual(y: np.ndarray) -> np.ndarray:
    """Residual from the cubic through four neighbours (as benchmarks/real_noise.py)."""
    interp = (-y[:-4] + 4 * y[1:-3] + 4 * y[3:-1] - y[4:]) / 6.0
    return (y[2:-2] - interp) / np.sqrt(1.0 + 34.0 / 36.0)


def test_realistic_noise_grows_with_the_signal_and_comes_in_ion_steps() -> None:
    from asnmon.simulate import REALISM, render_acquisition

    tops, bases, levels = [], [], []
    for seed in range(6):
        config = _realistic(seed=seed)
        y = render_acquisition(_cal(config), config)[2].intensity  # IS quantifier
        r = _cubic_residual(y)
        level = y[2:-2]
        top = level > 0.5 * y.max()
        window = np.lib.stride_tricks.sliding_window_view(y, 5).max(axis=1)
        quiet = window < 5 * REALISM.baseline  # the point and its four neighbours
        tops.append(np.std(r[top]))
        bases.append(np.std(r[quiet]))
        levels.append(np.mean(level[top]))
        steps = y / REALISM.quantum
        assert np.allclose(steps, np.round(steps)), "intensities are whole ions x 1/dwell"
    top_sd, base_sd, top_level = np.median(tops), np.median(bases), np.median(levels)
    assert top_sd > 20 * base_sd, (top_sd, base_sd)
    # relative noise at the top: flicker 3.7 % plus shot noise, as measured on real tops
    assert 0.025 < top_sd / top_level < 0.08, top_sd / top_level
    # and at the baseline it is shot noise: sigma^2 ~ q x level
    q = REALISM.quantum * REALISM.poisson_gain
    assert 0.5 < base_sd / np.sqrt(q * REALISM.baseline) < 2.0


@pytest.mark.parametrize(("scenarios", "lo", "hi"), [((), 15, 25), (("low-points",), 11, 15)])
def test_realistic_points_across_the_peak(scenarios: tuple[str, ...], lo: int, hi: int) -> None:
    from asnmon.simulate import render_acquisition, true_signal

    for seed in range(8):
        config = _realistic(*scenarios, seed=seed)
        inj = _cal(config)
        y = render_acquisition(inj, config)[0].intensity  # analyte quantifier, as acquired
        base = np.median(y[:8])
        measured = int(np.count_nonzero(y - base > 0.05 * (y.max() - base)))
        assert lo <= true_signal(inj, config).points_across <= hi
        assert lo - 2 <= measured <= hi + 2, (seed, measured)


def test_realistic_files_are_valid_mzml_that_asnmon_reads(tmp_path: Path, assay: Assay) -> None:
    config = _realistic("truncated-is", "late-qualifier", "drift", "interferent")
    run = simulate_run(tmp_path, config)
    for path in run.paths[:6]:
        root = etree.parse(str(path)).getroot()
        assert root.tag == f"{NS}indexedmzML"
        traces = _traces(path)
        assert list(traces) == ["TIC", *(_srm_id(i) for i in range(len(TRACES)))]
        for t, y, _ in traces.values():
            assert t.size == y.size > 20
            assert np.all(np.diff(t) > 0)
            assert np.isfinite(y).all() and (y >= 0).all()
        read = _read(path, assay)
        assert set(read) == {t.id for t in assay.transitions}
        t, _ = read["is_quant"]
        spacing = np.diff(t) * 60
        assert 0.55 < np.median(spacing) < 0.9, "the real file's 0.72 s cycle"
        assert spacing.max() - spacing.min() > 0.05, "the cycle varies, as on a real run"
    truth = _rows(run.truth_path)
    assert {r["mode"] for r in truth} == {"realistic"}
    for r, inj in zip(truth, run.injections, strict=True):
        assert r["file"] == inj.stem
        if r["true_area_ratio"]:
            ratio = float(r["true_analyte_area"]) / float(r["true_is_area"])
            assert float(r["true_area_ratio"]) == pytest.approx(ratio, rel=1e-6)


def test_truncated_is_acquisition_ends_while_its_peak_tails(tmp_path: Path, assay: Assay) -> None:
    from asnmon.simulate import true_signal

    for seed in range(4):
        config = _realistic("truncated-is", seed=seed)
        inj = _cal(config)
        read = _read(_write(inj, config, tmp_path), assay)
        t_is, y_is = read["is_quant"]
        t_an, y_an = read["asn_quant"]
        apex = t_is[np.argmax(y_is)]
        assert t_is[-1] < t_an[-1] - 0.1, "the analyte's window goes on after the IS stops"
        assert t_is[-1] > apex
        # the IS ends on its tail: well above its quiet level, at 2-8 % of the apex
        tail = np.mean(y_is[-3:]) / y_is.max()
        assert 0.01 < tail < 0.15, (seed, tail)
        assert np.mean(y_is[:5]) < 0.01 * y_is.max(), "it started at baseline"
        # the analyte (same shape) at the IS cut is still far above its own late baseline
        at_cut = y_an[np.searchsorted(t_an, t_is[-1])]
        assert at_cut > 5 * np.median(y_an[-8:])
        truth = true_signal(inj, config)
        assert truth.is_window_end == pytest.approx(t_is[-1], abs=1e-4)
        assert 2.0 <= truth.is_end_pct <= 8.0
    clean_config = _realistic(seed=0)
    t_is, y_is = _read(_write(_cal(clean_config), clean_config, tmp_path), assay)["is_quant"]
    assert np.mean(y_is[-5:]) < 0.01 * y_is.max(), "without the scenario the tail is whole"


def test_late_qualifier_starts_on_the_rising_peak(tmp_path: Path, assay: Assay) -> None:
    for seed in range(4):
        config = _realistic("late-qualifier", seed=seed)
        read = _read(_write(_cal(config), config, tmp_path), assay)
        t_q, y_q = read["asn_qual"]
        t_a, y_a = read["asn_quant"]
        apex = t_a[np.argmax(y_a)]
        assert t_q[0] > t_a[0] + 0.2
        assert t_q[0] <= apex + 0.02
        assert y_q[0] > 0.08 * y_q.max(), "the first acquired point is already on the peak"
        assert t_q[-1] == pytest.approx(t_a[-1]), "it ends with the quantifier"


def test_interferent_adds_a_nearby_peak_to_the_analyte_only(tmp_path: Path, assay: Assay) -> None:
    from asnmon.simulate import render_acquisition

    for seed in range(4):
        with_it = _realistic("interferent", seed=seed)
        inj = _cal(with_it, "CAL05")
        acq = render_acquisition(inj, with_it)
        base = render_acquisition(inj, _realistic(seed=seed))
        extra = acq[0].intensity - base[0].intensity
        assert np.array_equal(acq[2].intensity, base[2].intensity), "the IS is untouched"
        apex = acq[0].rt[np.argmax(base[0].intensity)]
        offset = abs(acq[0].rt[np.argmax(extra)] - apex)  # it may sit at a window's edge
        assert 0.15 < offset < 0.35, (seed, offset)
        assert extra.max() > 0.2 * base[0].intensity.max()


def test_drift_raises_the_baseline_unevenly(tmp_path: Path) -> None:
    from asnmon.simulate import render_acquisition

    config = _realistic("drift")
    inj = _cal(config, "CAL05")
    y = render_acquisition(inj, config)[0].intensity
    flat = render_acquisition(inj, _realistic())[0].intensity
    assert np.mean(y[:3]) > 3 * np.mean(flat[:3]), "an elevated start that decays"
    assert abs(np.mean(y[-5:]) - np.mean(flat[-5:])) > 0.5 * np.mean(flat[-5:])


def test_trapezoid_over_common_bounds_recovers_the_true_ratio(tmp_path: Path, assay: Assay) -> None:
    """With every trap on, a trapezoid over the span both traces share is unbiased."""
    from asnmon.simulate import true_signal

    errors = []
    for seed in range(6):
        config = _realistic("truncated-is", "late-qualifier", seed=seed)
        inj = _cal(config, "CAL06")
        read = _read(_write(inj, config, tmp_path), assay)
        (t_a, y_a), (t_i, y_i) = read["asn_quant"], read["is_quant"]
        hi = min(t_a[-1], t_i[-1])
        apex = t_i[np.argmax(y_i)]
        areas = []
        for t, y in ((t_a, y_a), (t_i, y_i)):
            m = (t >= apex - 0.1) & (t <= hi)
            base = np.median(y[t < apex - 0.1])
            areas.append(np.trapezoid(y[m] - base, t[m]))
        truth = true_signal(inj, config).area_ratio
        assert truth is not None
        errors.append(areas[0] / areas[1] / truth - 1)
    assert np.median(np.abs(errors)) < 0.03, errors


def test_realistic_mode_is_deterministic_and_needs_its_mode(tmp_path: Path) -> None:
    config = _realistic("spiky", "drift")
    inj = _cal(config)
    a = write_injection(inj, tmp_path / "a.mzML", config).read_bytes()
    b = write_injection(inj, tmp_path / "b.mzML", config).read_bytes()
    assert a == b
    c = write_injection(inj, tmp_path / "c.mzML", _realistic("spiky", "drift", seed=8))
    assert c.read_bytes() != a
    with pytest.raises(ValueError, match="need mode 'realistic'"):
        plan_run(SimConfig(scenarios=("spiky",)))
    with pytest.raises(ValueError, match="valid scenarios: truncated-is"):
        plan_run(SimConfig(mode="realistic", scenarios=("spikey",)))


def test_cli_simulate_defaults_to_the_realistic_mode(tmp_path: Path) -> None:
    from asnmon.cli import main
    from asnmon.simulate import DEFAULT_SCENARIOS

    assert main(["simulate", str(tmp_path / "r"), "--samples", "1"]) == 0
    truth = _rows(tmp_path / "r" / "truth.csv")
    assert {r["mode"] for r in truth} == {"realistic"}
    assert {r["scenarios"] for r in truth} == {";".join(DEFAULT_SCENARIOS)}
    assert main(["simulate", str(tmp_path / "c"), "--samples", "1", "--mode", "clean"]) == 0
    assert {r["mode"] for r in _rows(tmp_path / "c" / "truth.csv")} == {"clean"}
    assert main(["simulate", str(tmp_path / "s"), "--samples", "1", "--scenario", "none"]) == 0
    assert {r["scenarios"] for r in _rows(tmp_path / "s" / "truth.csv")} == {""}
    assert main(["simulate", str(tmp_path / "x"), "--mode", "clean", "--scenario", "spiky"]) == 2


def test_the_demo_truncates_only_where_its_rt_step_says_so(tmp_path: Path) -> None:
    """Default scenarios + the demo's faults: PEAK_TRUNCATED from the RT step on, never before."""
    from asnmon.assay import load_assay
    from asnmon.cli.simulation import demo_faults
    from asnmon.pipeline import process_file
    from asnmon.simulate import DEFAULT_SCENARIOS

    faults = demo_faults(20)
    step = next(int(f.split(":")[1]) for f in faults if f.startswith("rt-step"))
    config = apply_faults(
        SimConfig(mode="realistic", scenarios=DEFAULT_SCENARIOS, n_samples=20), faults
    )
    run = simulate_run(tmp_path, config)
    assay = load_assay()
    planned = {p.stem: p for p in plan_run(config)}
    cut_at = set()
    for path in run.paths:
        inj = planned.get(path.stem)
        if inj is None or inj.output != "mzml":
            continue
        outcome = process_file(path, "", inj.sample, assay, None)
        if any(f.code == "PEAK_TRUNCATED" for f in outcome.flags):
            cut_at.add(inj.position)
    assert cut_at, "the RT step moves the peaks' tails out of their windows"
    assert min(cut_at) >= step


def test_a_process_writing_many_files_does_not_slow_down_psims_classes_stay_shallow() -> None:
    """psims 1.4 re-registers each writer's component subclasses, so every document's
    classes were one level deeper than the last one's (the 1,400th file of a run took
    ~1 s to write, the 20th 20 ms); the writer puts psims' registry back each time."""
    from psims.document import ChildTrackingMeta

    from asnmon.simulate.writer import render_mzml

    cfg = SimConfig(n_samples=1, seed=1, mode="realistic")
    inj = plan_run(cfg)[0]
    first = render_mzml(inj, cfg)

    def depths() -> dict[tuple[object, str], int]:
        registry = ChildTrackingMeta._cache
        return {(ns, n): len(t.__mro__) for ns, d in registry.items() for n, t in d.items()}

    before = depths()
    again = [render_mzml(inj, cfg) for _ in range(3)]
    assert depths() == before
    assert all(doc == first for doc in again)  # the same bytes each time
