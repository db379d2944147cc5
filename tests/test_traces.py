"""Trace sanity before integration: broken or misplaced traces fail, never read as "< LLOQ".

Each case is a real mzML file, written here from a simulated plasma sample at
51.4 µM and then broken one way, ingested with a real calibration run into a
real DuckDB store. Before the checks existed, these gave BLQ + DEPLETED
("consistent with asparaginase depletion"), an ALQ "dilute 1:2", or negative
areas (issue 11).
"""

from __future__ import annotations

import base64
import csv
import json
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asnmon.assay import Assay, load_assay, parse_assay
from asnmon.mzml import read_injection
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.records import Chromatogram, Injection, RunMeta, Severity
from asnmon.simulate import (
    SCENARIOS,
    TRACES,
    PlannedInjection,
    SimConfig,
    apply_faults,
    plan_run,
    render_traces,
    simulate_run,
    time_axis,
)
from asnmon.store import RunInfo, Store
from asnmon.traces import check_traces
from asnmon.worklist import load_worklist

TRUE_CONC = 51.4  # µM in the vial: a plasma sample well inside the curve
Arrays = list[tuple[np.ndarray, np.ndarray]]  # (time in minutes as written, intensity) per trace


# ---------------------------------------------------------------- a small mzML writer


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.asarray(values, "<f8").tobytes())).decode("ascii")


def _array(values: np.ndarray, accession: str, name: str, unit: str) -> str:
    return (
        "<binaryDataArray>"
        '<cvParam cvRef="MS" accession="MS:1000523" name="64-bit float"/>'
        '<cvParam cvRef="MS" accession="MS:1000574" name="zlib compression"/>'
        f'<cvParam cvRef="MS" accession="{accession}" name="{name}" {unit}/>'
        f"<binary>{_b64(values)}</binary></binaryDataArray>"
    )


def write_mzml(path: Path, arrays: Arrays, *, time_unit: str = "minute") -> Path:
    """msconvert's SRM layout (ids ``SRM SIC Q1=… Q3=…``), one chromatogram per TRACES entry."""
    unit = {"minute": "UO:0000031", "second": "UO:0000010"}[time_unit]
    chroms = []
    for i, (trace, (t, y)) in enumerate(zip(TRACES, arrays, strict=True)):
        chroms.append(
            f'<chromatogram index="{i}" id="SRM SIC Q1={trace.q1:g} Q3={trace.q3:g} sample=1 '
            f'period=1 experiment=1 transition={i}" defaultArrayLength="{len(t)}">'
            '<cvParam cvRef="MS" accession="MS:1001473" '
            'name="selected reaction monitoring chromatogram"/>'
            '<cvParam cvRef="MS" accession="MS:1000130" name="positive scan"/>'
            '<binaryDataArrayList count="2">'
            + _array(
                t,
                "MS:1000595",
                "time array",
                f'unitCvRef="UO" unitAccession="{unit}" unitName="{time_unit}"',
            )
            + _array(
                y,
                "MS:1000515",
                "intensity array",
                'unitCvRef="MS" unitAccession="MS:1000131" unitName="number of detector counts"',
            )
            + "</binaryDataArrayList></chromatogram>"
        )
    doc = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<mzML xmlns="http://psi.hupo.org/ms/mzml" version="1.1.0">'
        '<cvList count="2"><cv id="MS" fullName="PSI-MS" URI="psi-ms.obo"/>'
        '<cv id="UO" fullName="Unit Ontology" URI="unit.obo"/></cvList>'
        "<fileDescription><fileContent>"
        '<cvParam cvRef="MS" accession="MS:1001473" '
        'name="selected reaction monitoring chromatogram"/>'
        "</fileContent></fileDescription>"
        '<softwareList count="1"><software id="t" version="0"/></softwareList>'
        '<instrumentConfigurationList count="1"><instrumentConfiguration id="IC1"/>'
        "</instrumentConfigurationList>"
        '<dataProcessingList count="1"><dataProcessing id="DP1"/></dataProcessingList>'
        f'<run id="{path.stem}" defaultInstrumentConfigurationRef="IC1" '
        'startTimeStamp="2024-05-06T12:00:00Z">'
        f'<chromatogramList count="{len(chroms)}" defaultDataProcessingRef="DP1">'
        + "".join(chroms)
        + "</chromatogramList></run></mzML>\n"
    )
    path.write_text(doc, "utf-8")
    return path


# ---------------------------------------------------------------- the broken traces

AN, IS = 0, 2  # TRACES indices of asn_quant and is_quant
RNG = np.random.default_rng(20261201)


def _on(index: int, edit: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]):
    def apply(arrays: Arrays) -> Arrays:
        out = list(arrays)
        out[index] = edit(*arrays[index])
        return out

    return apply


def _window(lo: float, hi: float):
    return lambda t, y: (t[(t >= lo) & (t <= hi)], y[(t >= lo) & (t <= hi)])


def _one_time_back(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = t.copy()
    t[int(np.argmax(y))] -= 1.0  # the apex point, moved back 1 min
    return t, y


def _shuffle_pairs(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = RNG.permutation(t.size)
    return t[order], y[order]


# case -> (edit of the arrays, time unit label, (transition, flag) expected)
CASES = {
    "empty analyte trace": (_on(AN, lambda t, y: (t[:0], y[:0])), "minute", "TRACE_INVALID"),
    "analyte acquired 5-7 min only": (_on(AN, _window(5.0, 7.0)), "minute", "WINDOW_NOT_COVERED"),
    "analyte stops at 3.0 min": (_on(AN, _window(0.0, 3.0)), "minute", "WINDOW_NOT_COVERED"),
    "one analyte time moved back 1 min": (_on(AN, _one_time_back), "minute", "TRACE_INVALID"),
    "reversed analyte times": (_on(AN, lambda t, y: (t[::-1], y)), "minute", "TRACE_INVALID"),
    "shuffled analyte (time, intensity) pairs": (
        _on(AN, _shuffle_pairs),
        "minute",
        "TRACE_INVALID",
    ),
    "shuffled IS (time, intensity) pairs": (_on(IS, _shuffle_pairs), "minute", "TRACE_INVALID"),
    "times in seconds labelled minutes": (
        lambda arrays: [(t * 60.0, y) for t, y in arrays],
        "minute",
        "TRACE_INVALID",
    ),
}
TRANSITION = {"shuffled IS (time, intensity) pairs": "is_quant"}


def _stem(case: str) -> str:
    return "X_" + "".join(c if c.isalnum() else "_" for c in case)


@pytest.fixture(scope="module")
def plasma(tmp_path_factory: pytest.TempPathFactory) -> tuple[Arrays, SimConfig]:
    """A plasma sample at 51.4 µM, rendered by the simulator: its clean arrays."""
    config = apply_faults(SimConfig(n_samples=4, seed=23), ["depleted"])
    base = next(p for p in plan_run(config) if p.sample.matrix == "plasma" and not p.faults)
    inj: PlannedInjection = replace(base, position=900, true_conc_vial=TRUE_CONC)
    t = np.asarray(time_axis(config))
    return [(t, y) for y in render_traces(inj, config)], config


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory,
    plasma: tuple[Arrays, SimConfig],
    assay: Assay,
) -> dict[str, dict[str, object]]:
    """A simulated calibration run plus every broken file (and two controls), ingested."""
    arrays, config = plasma
    folder = tmp_path_factory.mktemp("traces")
    simulate_run(folder, config)
    files = {case: (edit(arrays), unit) for case, (edit, unit, _) in CASES.items()}
    files["control: the clean file"] = (arrays, "minute")
    # a real, fully acquired trace that is cut only after the peak: integrated as usual
    files["control: analyte cut at 3.6 min"] = (_on(AN, _window(0.0, 3.6))(arrays), "minute")
    # the simulator's depleted sample (0.4 µM), its analyte trace cut inside the window
    depleted = next(p for p in plan_run(config) if "depleted" in p.faults)
    dep_arrays = [(np.asarray(time_axis(config)), y) for y in render_traces(depleted, config)]
    files["depleted, analyte stops at 3.25 min"] = (
        _on(AN, _window(0.0, 3.25))(dep_arrays),
        "minute",
    )
    with (folder / "worklist.csv").open("a", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        for case, (arr, unit) in files.items():
            write_mzml(folder / f"{_stem(case)}.mzML", arr, time_unit=unit)
            out.writerow([_stem(case), _stem(case), "sample", "", "", "plasma", "1"])
    store_path = tmp_path_factory.mktemp("db") / "traces.duckdb"
    store = Store(store_path)
    worklist = load_worklist(folder / "worklist.csv")
    ingestor = RunIngestor(
        store, assay, RunInfo(run_id="traces", name="traces", planned=len(worklist)), worklist
    )
    ingest_paths(ingestor, sorted(folder.glob("*.mzML")))
    rows = {r["file"].removesuffix(".mzML"): r for r in store.results("traces").to_dicts()}
    flags: dict[str, list[tuple[str, str, str, dict[str, object]]]] = {k: [] for k in rows}
    for f in store.flags("traces").to_dicts():
        if f["file"] is not None:
            flags[f["file"].removesuffix(".mzML")].append(
                (f["code"], f["severity"], f["message"], json.loads(f["details"]))
            )
    assert ingestor.calibration is not None and ingestor.calibration.accepted
    store.close()
    out: dict[str, dict[str, object]] = {k: {"row": rows[k], "flags": flags[k]} for k in rows}
    out[""] = {"db": store_path, "worklist": worklist}
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_or_misplaced_trace_is_a_fail_never_blq(
    run: dict[str, dict[str, object]], case: str
) -> None:
    got = run[_stem(case)]
    row, flags = got["row"], got["flags"]
    codes = [c for c, *_ in flags]
    expected = CASES[case][2]
    assert row["status"] == "no_result", (row["status"], codes)
    assert row["conc"] is None and row["analyte_area"] is None
    assert "BLQ" not in codes and "DEPLETED" not in codes and "ALQ" not in codes
    hits = [f for f in flags if f[0] == expected]
    assert hits, codes
    _, severity, message, details = hits[0]
    assert severity == Severity.FAIL.value
    assert details["transition"] == TRANSITION.get(case, "asn_quant")
    assert any(ch.isdigit() for ch in message)  # says what, with numbers


def test_well_covered_traces_still_give_their_numbers(run: dict[str, dict[str, object]]) -> None:
    for case in ("control: the clean file", "control: analyte cut at 3.6 min"):
        row = run[_stem(case)]["row"]
        codes = [c for c, *_ in run[_stem(case)]["flags"]]
        assert row["status"] == "ok", (case, row["status"], codes)
        assert row["conc"] == pytest.approx(TRUE_CONC, rel=0.15)
        assert not {"TRACE_INVALID", "WINDOW_NOT_COVERED"} & set(codes)


def test_blq_and_depleted_only_where_the_window_was_acquired(
    run: dict[str, dict[str, object]],
) -> None:
    cut = run[_stem("depleted, analyte stops at 3.25 min")]
    assert cut["row"]["status"] == "no_result"
    assert [c for c, *_ in cut["flags"]] == ["WINDOW_NOT_COVERED"]
    # the simulator's own depleted sample, fully acquired: BLQ + DEPLETED as before
    depleted = [v for k, v in run.items() if k and "DEPLETED" in [c for c, *_ in v["flags"]]]
    assert len(depleted) == 1
    assert depleted[0]["row"]["status"] == "BLQ"


def test_a_restart_and_a_new_curve_version_never_turn_them_into_blq(
    run: dict[str, dict[str, object]], assay: Assay
) -> None:
    """Re-quantification (restart, refit) works from stored peaks: these have none."""
    db, worklist = run[""]["db"], run[""]["worklist"]
    store = Store(db)  # type: ignore[arg-type]
    try:
        info = RunInfo(run_id="traces", name="traces", planned=len(worklist))  # type: ignore[arg-type]
        ingestor = RunIngestor(store, assay, info, worklist)  # type: ignore[arg-type]
        before = ingestor.versions
        assert ingestor.refit() is not None and ingestor.versions == before + 1
        rows = {r["file"].removesuffix(".mzML"): r for r in store.results("traces").to_dicts()}
    finally:
        store.close()
    for case in CASES:
        row = rows[_stem(case)]
        assert row["status"] == "no_result", case
        assert not {"BLQ", "DEPLETED", "ALQ"} & set(str(row["flags"]).split(";")), case


def test_scheduled_windows_as_real_files_have_them_are_not_refused(
    tmp_path: Path, assay: Assay
) -> None:
    """The realistic simulator: windows narrower than the search window, a late qualifier.

    Blanks show no peak in a window acquired only in part; that "no peak" stands,
    because the expected RT ± ``analyte_window`` was acquired.
    """
    config = SimConfig(n_samples=4, seed=4, mode="realistic", scenarios=tuple(SCENARIOS))
    simulate_run(tmp_path, config)
    store = Store(tmp_path / "real.duckdb")
    try:
        worklist = load_worklist(tmp_path / "worklist.csv")
        info = RunInfo(run_id="r", name="r", planned=len(worklist))
        ingest_paths(RunIngestor(store, assay, info, worklist), sorted(tmp_path.glob("*.mzML")))
        codes = set(store.flags("r")["code"])
        res = store.results("r")
    finally:
        store.close()
    assert not {"TRACE_INVALID", "WINDOW_NOT_COVERED"} & codes, codes
    blanks = res.filter(res["sample_type"].is_in(["blank", "double_blank"]))
    assert blanks.height >= 2 and set(blanks["status"]) == {"ok"}


# ---------------------------------------------------------------- the pure check


def _injection(traces: dict[str, tuple[np.ndarray, np.ndarray]]) -> Injection:
    return Injection(
        path=Path("x.mzML"),
        sha256="0",
        meta=RunMeta(),
        traces={k: Chromatogram(k, i, t, y) for i, (k, (t, y)) in enumerate(traces.items())},
    )


T = np.linspace(0.0, 6.0, 1801)
Y = 300.0 + 1e5 * np.exp(-0.5 * ((T - 3.2) / 0.05) ** 2)


@pytest.mark.parametrize(
    ("t", "problem"),
    [
        (T[:2], "empty"),
        (np.where(np.arange(T.size) == 900, np.nan, T), "not_finite"),
        (np.concatenate((T[:900], T[899:1800])), "not_increasing"),  # a repeated time
        (np.linspace(0.0, 6.0, 20), "too_sparse"),  # 19 s between points
        (np.linspace(0.0, 360.0, 200_000), "too_long"),  # fast cycle, seconds as minutes
    ],
)
def test_check_names_the_problem(assay: Assay, t: np.ndarray, problem: str) -> None:
    y = Y[: t.size] if t.size <= Y.size else np.resize(Y, t.size)
    check = check_traces(_injection({"asn_quant": (t, y), "is_quant": (T, Y)}), assay)
    assert check.failed
    assert check.unusable == {"asn_quant"}
    assert [f.details["problem"] for f in check.flags] == [problem]


def test_qualifier_problems_are_warnings_and_leave_the_result_alone(assay: Assay) -> None:
    check = check_traces(
        _injection({"asn_quant": (T, Y), "is_quant": (T, Y), "asn_qual": (T[::-1], Y)}), assay
    )
    assert not check.failed
    assert check.unusable == {"asn_qual"}
    assert [(f.code, f.severity) for f in check.flags] == [("TRACE_INVALID", Severity.WARNING)]
    assert "ion ratio is not judged" in check.flags[0].message


def test_limits_are_assay_settings(assay: Assay) -> None:
    sparse = np.linspace(0.0, 6.0, 40)  # 9.2 s between points: inside the 10 s default
    inj = _injection({"asn_quant": (sparse, np.resize(Y, 40)), "is_quant": (T, Y)})
    assert not check_traces(inj, assay).failed
    data = {"assay": {"name": "x"}, "transitions": [
        {"id": t.id, "q1": t.q1, "q3": t.q3, "role": t.role.value} for t in assay.transitions
    ], "traces": {"max_point_spacing_s": 5.0}}  # fmt: skip
    strict = parse_assay(data)
    assert strict.traces.max_point_spacing_s == 5.0
    assert check_traces(inj, strict).failed


def test_real_files_pass_the_checks(realdata: Path, assay: Assay) -> None:
    """The simulator's own files and a real SCIEX file are not caught by the checks."""
    sgi = realdata / "sgi_cations_aa_mrm" / "Stds_12-5uM.mzML"
    data = {"assay": {"name": "sgi"}, "retention": {"expected_rt": 15.7, "window": 2.0},
            "transitions": [{"id": "asn", "q1": 133.1, "q3": 116.0,
                             "role": "analyte_quant"}]}  # fmt: skip
    check = check_traces(read_injection(sgi, parse_assay(data)), parse_assay(data))
    assert check.flags == () and not check.partial


@given(st.permutations(range(40)))
def test_any_reordering_of_the_times_is_caught(order: list[int]) -> None:
    assay = load_assay()
    t = np.linspace(2.5, 3.9, 40)
    y = np.resize(Y, 40)
    idx = np.array(order)
    check = check_traces(_injection({"asn_quant": (t[idx], y[idx]), "is_quant": (T, Y)}), assay)
    identity = bool((idx == np.arange(40)).all())
    assert check.failed is not identity
    if not identity:
        assert check.flags[0].details["problem"] == "not_increasing"


@given(
    st.floats(0.01, 0.16),  # point spacing, min (0.6-9.6 s)
    st.floats(0.0, 2.6),  # acquisition start, min (the expected RT is 3.2)
    st.floats(3.2, 30.0),  # acquisition end
)
def test_a_plausible_trace_at_the_expected_rt_is_never_refused(
    step: float, start: float, stop: float
) -> None:
    assay = load_assay()
    t = np.arange(start, stop + step / 2, step)
    if t.size < 3 or t[-1] < 3.2:
        return
    check = check_traces(_injection({"asn_quant": (t, np.ones(t.size)), "is_quant": (T, Y)}), assay)
    assert not check.failed and check.flags == ()
