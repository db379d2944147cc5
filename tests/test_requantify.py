"""A reviewer's changes on a real ingested run: stored as the person, audited, re-quantified.

One simulated run is ingested once into a DuckDB file and its mzML files are
then deleted: every change below works from the traces the store kept. Each
test works on its own copy of the database file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from asnmon.assay import Assay
from asnmon.errors import ReviewError
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.review import Person
from asnmon.review_actions import (
    edit_batch_field,
    link_reinjection,
    reintegrate_injection,
    revert_to_automatic,
    set_calibrator_excluded,
)
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import MIGRATIONS, RunInfo, Store
from asnmon.worklist import load_worklist

ANA = Person("Ana Reviewer", "reviewer")
RUN = "review-run"
# the accounts and the audit trail (asnmon/users.py, asnmon/store/audit.py) of issue 13
AUDITED = hasattr(Store, "append_event")
needs_audit = pytest.mark.skipif(not AUDITED, reason="no audit trail in this install")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Path:
    folder = tmp_path_factory.mktemp("sim")
    simulate_run(folder, SimConfig(n_samples=10, seed=5))
    db = tmp_path_factory.mktemp("db") / "run.duckdb"
    wl = load_worklist(folder / "worklist.csv")
    with Store(db) as store:
        ing = RunIngestor(store, assay, RunInfo(RUN, RUN, planned=len(wl)), wl)
        ingest_paths(ing, sorted(folder.glob("*.mzML")))
    shutil.rmtree(folder)  # reintegration must not need the files
    return db


@pytest.fixture
def store(ingested: Path, tmp_path: Path) -> Store:
    copy = tmp_path / "run.duckdb"
    shutil.copy(ingested, copy)
    s = Store(copy)
    yield s  # type: ignore[misc]
    s.close()


def _results(store: Store) -> pl.DataFrame:
    return store.results(RUN)


def _one(store: Store, kind: str) -> dict:
    rows = (
        _results(store)
        .filter((pl.col("sample_type") == kind) & (pl.col("status") == "ok"))
        .sort("position")
    )
    return rows.row(rows.height // 2, named=True)


def _peak(store: Store, iid: int, role: str) -> dict:
    return store.peaks(iid).filter(pl.col("role") == role).row(0, named=True)


def test_a_sample_reintegrated_is_requantified_at_once_and_keeps_its_automatic_peaks(
    store: Store, assay: Assay
) -> None:
    row = _one(store, "sample")
    iid = int(row["injection_id"])
    auto = _peak(store, iid, "analyte_quant")
    start, end = auto["apex_rt"] - 0.6 * auto["fwhm"], auto["end_rt"]  # the front cut off
    done = reintegrate_injection(
        store, assay, ANA, iid, start, end, reason="baseline misplaced (noise, drift)"
    )
    assert done.calibration is None and done.injections == (iid,)
    an, is_ = _peak(store, iid, "analyte_quant"), _peak(store, iid, "is_quant")
    assert an["source"] == "manual" and an["start_rt"] == pytest.approx(start)
    assert an["area"] < 0.95 * auto["area"]
    after = _results(store).filter(pl.col("injection_id") == iid).row(0, named=True)
    # the current result is the manual peaks' ratio on the active curve, not the old one
    assert after["area_ratio"] == pytest.approx(an["area"] / is_["area"], rel=1e-9)
    assert after["analyte_area"] == pytest.approx(an["area"])
    kept = store.automatic_peaks(iid).filter(pl.col("role") == "analyte_quant")
    assert kept["area"][0] == pytest.approx(auto["area"]) and kept["source"][0] == "auto"
    assert store.review_notes(RUN)[iid] == (
        "manually integrated by Ana Reviewer because baseline misplaced (noise, drift)"
    )
    edit = store.edits(RUN, iid).row(0, named=True)
    assert (edit["actor"], edit["actor_role"], edit["kind"]) == ("Ana Reviewer", "reviewer",
                                                                "reintegrate")  # fmt: skip
    assert not store.pending_edits(RUN)
    # back to the automatic integration: the same area as before, manual kept in history
    revert_to_automatic(store, assay, ANA, iid, reason="automatic was right")
    assert _peak(store, iid, "analyte_quant")["area"] == pytest.approx(auto["area"])
    assert iid not in store.review_notes(RUN)
    n_hist = (
        store.reader()
        .execute("SELECT count(*) FROM peak_history WHERE injection_id = ?", [iid])
        .fetchone()
    )
    assert n_hist is not None and n_hist[0] >= 6  # the automatic and the manual group


def test_a_calibrator_reintegrated_refits_the_curve_as_a_new_version(
    store: Store, assay: Assay
) -> None:
    cal = _one(store, "calibrator")
    iid = int(cal["injection_id"])
    versions = store.calibration_versions(RUN)
    p = _peak(store, iid, "analyte_quant")
    done = reintegrate_injection(
        store,
        assay,
        ANA,
        iid,
        p["start_rt"],
        p["start_rt"] + 0.6 * (p["end_rt"] - p["start_rt"]),
        reason="wrong peak picked",
    )
    assert done.calibration is not None
    assert store.calibration_versions(RUN) == versions + 1 == done.calibration.version
    newest = store.calibrations(RUN).sort("version").row(-1, named=True)
    pts = store.calibration_points(int(newest["calibration_id"]))
    mine = pts.filter(pl.col("injection_id") == iid).row(0, named=True)
    an, is_ = _peak(store, iid, "analyte_quant"), _peak(store, iid, "is_quant")
    assert mine["area_ratio"] == pytest.approx(an["area"] / is_["area"], rel=1e-9)
    # every result now rests on the new curve
    ids = _results(store).filter(pl.col("conc_vial").is_not_null())["calibration_id"].unique()
    assert ids.to_list() == [newest["calibration_id"]]


def test_excluding_a_calibrator_gives_a_new_curve_without_it_and_including_it_another(
    store: Store, assay: Assay
) -> None:
    cal = _one(store, "calibrator")
    iid = int(cal["injection_id"])
    versions = store.calibration_versions(RUN)
    done = set_calibrator_excluded(
        store, assay, ANA, iid, True, reason="injection error (vial, needle, air)", comment="air"
    )
    assert done.calibration is not None and done.calibration.version == versions + 1
    newest = store.calibrations(RUN).sort("version").row(-1, named=True)
    pt = store.calibration_points(int(newest["calibration_id"])).filter(
        pl.col("injection_id") == iid
    )
    assert pt["excluded"][0] is True
    assert pt["reason"][0] == "excluded by Ana Reviewer: injection error (vial, needle, air) (air)"
    assert "excluded by Ana Reviewer" in newest["reason"]
    with pytest.raises(ReviewError, match="excluded already"):
        set_calibrator_excluded(store, assay, ANA, iid, True, reason="other (see comment)",
                                comment="again")  # fmt: skip
    set_calibrator_excluded(store, assay, ANA, iid, False, reason="the vial was fine")
    assert store.calibration_versions(RUN) == versions + 2
    newest = store.calibrations(RUN).sort("version").row(-1, named=True)
    pt = store.calibration_points(int(newest["calibration_id"])).filter(
        pl.col("injection_id") == iid
    )
    assert pt["excluded"][0] is False
    assert store.edits(RUN, iid)["kind"].to_list() == ["exclude", "include"]


def test_only_a_calibrator_can_be_excluded(store: Store, assay: Assay) -> None:
    iid = int(_one(store, "sample")["injection_id"])
    with pytest.raises(ReviewError, match="not a calibrator"):
        set_calibrator_excluded(store, assay, ANA, iid, True, reason="other (see comment)",
                                comment="x")  # fmt: skip


def test_a_corrected_dilution_requantifies_the_sample_and_keeps_the_old_value(
    store: Store, assay: Assay
) -> None:
    row = _one(store, "sample")
    iid = int(row["injection_id"])
    versions = store.calibration_versions(RUN)
    edit_batch_field(
        store, assay, ANA, iid, "dilution", "10", reason="dilution applied at the bench"
    )
    after = _results(store).filter(pl.col("injection_id") == iid).row(0, named=True)
    assert after["conc"] == pytest.approx(10 * row["conc"] / (row["dilution"] or 1.0), rel=1e-9)
    assert store.calibration_versions(RUN) == versions  # a sample's dilution: no refit
    edit = store.edits(RUN, iid).row(0, named=True)
    assert (edit["field"], edit["old_value"], edit["new_value"]) == ("dilution", "1.0", "10.0")
    assert "dilution 1 → 10 by Ana Reviewer" in store.review_notes(RUN)[iid]


def test_a_sample_retyped_as_a_calibrator_enters_the_curve(store: Store, assay: Assay) -> None:
    qc = _one(store, "qc")
    iid = int(qc["injection_id"])
    versions = store.calibration_versions(RUN)
    edit_batch_field(store, assay, ANA, iid, "sample_type", "calibrator",
                     reason="worklist typing error")  # fmt: skip
    assert store.calibration_versions(RUN) == versions + 1
    newest = store.calibrations(RUN).sort("version").row(-1, named=True)
    ids = store.calibration_points(int(newest["calibration_id"]))["injection_id"].to_list()
    assert iid in ids


def test_bad_values_and_missing_reasons_change_nothing(store: Store, assay: Assay) -> None:
    iid = int(_one(store, "sample")["injection_id"])
    before = store.edits(RUN).height
    with pytest.raises(ReviewError, match=">= 1"):
        edit_batch_field(store, assay, ANA, iid, "dilution", "0.1", reason="worklist typing error")
    with pytest.raises(ReviewError, match="Choose a reason"):
        reintegrate_injection(store, assay, ANA, iid, 3.0, 3.4, reason="")
    with pytest.raises(ReviewError, match="must be after"):
        reintegrate_injection(store, assay, ANA, iid, 3.4, 3.0, reason="wrong peak picked")
    assert store.edits(RUN).height == before


@needs_audit
def test_every_change_is_an_audit_event_in_an_intact_chain(store: Store, assay: Assay) -> None:
    cal = int(_one(store, "calibrator")["injection_id"])
    p = _peak(store, cal, "analyte_quant")
    reintegrate_injection(store, assay, ANA, cal, p["start_rt"], p["end_rt"] - 0.05,
                          reason="wrong peak picked")  # fmt: skip
    set_calibrator_excluded(store, assay, ANA, cal, True,
                            reason="injection error (vial, needle, air)")  # fmt: skip
    events = store.audit_events(RUN, cal)
    assert events["action"].to_list() == ["reintegrate", "exclude"]
    assert set(events["actor"]) == {"Ana Reviewer"} and set(events["role"]) == {"reviewer"}
    edits = store.edits(RUN, cal)
    assert edits["event_id"].to_list() == events["event_id"].to_list()
    assert store.verify_audit() == []


@needs_audit
def test_an_account_that_may_not_edit_is_refused(store: Store, assay: Assay) -> None:
    from asnmon.errors import AccessDenied

    iid = int(_one(store, "sample")["injection_id"])
    with pytest.raises(AccessDenied):
        edit_batch_field(store, assay, Person("it-admin (command line)", "admin"), iid,
                         "dilution", "2", reason="worklist typing error")  # fmt: skip
    assert store.edits(RUN).is_empty()


def test_a_reinjection_is_linked_by_hand(store: Store) -> None:
    rows = _results(store).filter(pl.col("sample_type") == "sample").sort("position")
    first, later = int(rows["injection_id"][0]), int(rows["injection_id"][-1])
    link_reinjection(store, ANA, later, first, reason="re-injected after a clog")
    assert store.reinjection_links(RUN) == {later: first}
    assert "re-injection of" in store.review_notes(RUN)[later]
    assert not store.pending_edits(RUN)  # a link changes no number
    with pytest.raises(ReviewError, match="itself"):
        link_reinjection(store, ANA, later, later, reason="x")


def test_a_live_ingestor_takes_an_edit_made_meanwhile(tmp_path: Path, assay: Assay) -> None:
    """The monitor's ingestor and the review share the database: the next file sees it."""
    folder = tmp_path / "sim"
    simulate_run(folder, SimConfig(n_samples=6, seed=8))
    wl = load_worklist(folder / "worklist.csv")
    files = sorted(folder.glob("*.mzML"))
    with Store(tmp_path / "live.duckdb") as store:
        live = RunIngestor(store, assay, RunInfo(RUN, RUN, planned=len(wl)), wl)
        half = len(files) // 2
        ingest_paths(live, files[:half])
        cals = _results(store).filter(pl.col("sample_type") == "calibrator")
        iid = int(cals["injection_id"][len(cals) // 2])
        set_calibrator_excluded(store, assay, ANA, iid, True,
                                reason="injection error (vial, needle, air)")  # fmt: skip
        ingest_paths(live, files[half:])
        assert live.entries[iid].excluded is not None
        newest = store.calibrations(RUN).sort("version").row(-1, named=True)
        pt = store.calibration_points(int(newest["calibration_id"])).filter(
            pl.col("injection_id") == iid
        )
        assert pt["excluded"][0] is True  # the bracketing refit kept the exclusion


def test_an_edit_stored_before_a_crash_is_applied_when_the_run_is_next_opened(
    store: Store, assay: Assay
) -> None:
    cal = _one(store, "calibrator")
    iid = int(cal["injection_id"])
    versions = store.calibration_versions(RUN)
    store.set_excluded(ANA, RUN, iid, True, reason="injection error (vial, needle, air)")
    assert len(store.pending_edits(RUN)) == 1  # stored, then the process died
    RunIngestor(store, assay, store.run_info(RUN))  # the restarted monitor
    assert not store.pending_edits(RUN)
    assert store.calibration_versions(RUN) == versions + 1


def test_the_migration_upgrades_a_database_made_before_it(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    mine = max(v for v, sql in MIGRATIONS if "CREATE TABLE edits" in sql)
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMP)")
    for version, sql in MIGRATIONS:
        if version < mine:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
    con.execute("INSERT INTO peaks (injection_id, transition, area) VALUES (1, 'asn_quant', 5.0)")
    con.close()
    with Store(db, read_only=True) as old:  # a review of an old file: no edits, no failure
        assert old.edits("any").is_empty() and old.review_notes("any") == {}
        assert old.automatic_peaks(1).is_empty() and old.exclusions("any") == {}
        assert old.pending_edits("any") == [] and old.reinjection_links("any") == {}
    with Store(db) as store:
        assert store.schema_version() >= mine
        peaks = store.peaks(1)
        assert peaks["source"].to_list() == ["auto"] and peaks["area"].to_list() == [5.0]
        assert store.edits("any").is_empty()


@needs_audit
def test_an_approved_run_is_locked_against_every_change(store: Store, assay: Assay) -> None:
    from asnmon.errors import RunLocked

    admin = Person("lab-admin (command line)", "admin")
    store.add_user("Ana Reviewer", "reviewer", "correct horse 1", actor=admin)
    store.add_user("Paul Approver", "approver", "correct horse 2", actor=admin)
    store.sign_run(RUN, name="Ana Reviewer", password="correct horse 1", meaning="reviewed")
    store.sign_run(RUN, name="Paul Approver", password="correct horse 2", meaning="approved")
    cal = int(_one(store, "calibrator")["injection_id"])
    sample = int(_one(store, "sample")["injection_id"])
    before = (store.results(RUN), store.calibration_versions(RUN), store.edits(RUN).height)
    p = _peak(store, sample, "analyte_quant")
    for change in (
        lambda: reintegrate_injection(store, assay, ANA, sample, p["start_rt"], p["end_rt"],
                                      reason="wrong peak picked"),
        lambda: set_calibrator_excluded(store, assay, ANA, cal, True,
                                        reason="injection error (vial, needle, air)"),
        lambda: edit_batch_field(store, assay, ANA, sample, "dilution", "2",
                                 reason="worklist typing error"),
        lambda: link_reinjection(store, ANA, sample, cal, reason="x"),
    ):  # fmt: skip
        with pytest.raises(RunLocked):
            change()
    assert store.results(RUN).equals(before[0])
    assert (store.calibration_versions(RUN), store.edits(RUN).height) == before[1:]
