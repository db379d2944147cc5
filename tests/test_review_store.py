"""Accounts, acknowledgements, sign-off, the run lock and the audit trail in a real DuckDB file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
import pytest
from helpers import ingest_short_run

from asnmon.assay import Assay
from asnmon.errors import AccessDenied, RunLocked, StoreError
from asnmon.store import MIGRATIONS, Store
from asnmon.users import BENCH_ACTOR, Actor, cli_actor

ADMIN = cli_actor("tester")
PW = {"ana": "analyst-pw-1", "rita": "reviewer-pw-1", "paul": "approver-pw-1"}


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Path:
    """A small real run (its last injection short: IS_LOW) with three accounts."""
    tmp = tmp_path_factory.mktemp("review")
    path = tmp / "base.duckdb"
    with Store(path) as store:
        ingest_short_run(store, tmp, assay)
        for name, role in (("ana", "analyst"), ("rita", "reviewer"), ("paul", "approver")):
            store.add_user(name, role, PW[name], actor=ADMIN)
    return path


@pytest.fixture
def store(base_db: Path, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "db.duckdb"
    shutil.copy(base_db, path)
    s = Store(path)
    yield s
    s.close()


def sign(store: Store, name: str, meaning: str, reason: str = "") -> int:
    return store.sign_run("run", name=name, password=PW[name], meaning=meaning, reason=reason)


def flag_ids(store: Store) -> list[int]:
    return [int(f) for f in store.flags("run")["flag_id"]]


# ---------------------------------------------------------------- accounts


def test_accounts_authenticate_and_never_store_the_password(store: Store) -> None:
    assert store.authenticate("rita", PW["rita"]) == Actor("rita", "reviewer")
    assert store.authenticate("RITA", PW["rita"]).name == "rita"  # the name as created
    for name, pw in (("rita", "wrong-password"), ("nobody", PW["rita"])):
        with pytest.raises(AccessDenied, match=r"^wrong account name or password$"):
            store.authenticate(name, pw)
    raw = store.reader().execute("SELECT * FROM users").fetchall()
    assert not any(pw in str(raw) for pw in PW.values())
    assert "password_hash" not in store.users().columns


def test_a_name_is_never_reused_and_a_disabled_account_cannot_log_in(store: Store) -> None:
    with pytest.raises(AccessDenied, match="exists already"):
        store.add_user("Rita", "approver", "another-pw-1", actor=ADMIN)
    store.set_user_disabled("ana", True, actor=ADMIN, reason="left the lab")
    with pytest.raises(AccessDenied, match="disabled"):
        store.authenticate("ana", PW["ana"])
    users = store.users()
    assert users.filter(pl.col("name") == "ana")["disabled"].to_list() == [True]
    events = store.audit_events()
    assert events["action"].to_list()[-1] == "user disable"
    assert events["reason"].to_list()[-1] == "left the lab"
    assert store.verify_audit() == []


def test_a_new_password_replaces_the_old(store: Store) -> None:
    store.set_password("ana", "brand-new-pw", actor=ADMIN)
    with pytest.raises(AccessDenied):
        store.authenticate("ana", PW["ana"])
    assert store.authenticate("ana", "brand-new-pw").role == "analyst"
    assert "brand-new-pw" not in str(store.audit_events().rows())


# ---------------------------------------------------------------- acknowledgements


def test_bulk_acknowledge_records_one_event_per_flag(store: Store) -> None:
    ids = flag_ids(store)
    assert len(ids) >= 2
    n = store.acknowledge_many(ids, Actor("ana", "analyst"), "short injection, re-injected")
    assert n == len(ids)
    again = store.acknowledge_many(ids, Actor("rita", "reviewer"), "seen")
    assert again == 0  # already acknowledged: skipped
    acks = store.acknowledgements_of(ids)
    assert set(acks["by_name"]) == {"ana"}
    assert set(acks["role"]) == {"analyst"}
    events = store.audit_events("run").filter(pl.col("action") == "acknowledge")
    assert events.height == len(ids)
    assert set(events["reason"]) == {"short injection, re-injected"}
    inj = store.flags("run").filter(pl.col("injection_id").is_not_null())["injection_id"][0]
    assert store.audit_events(injection_id=int(inj)).height >= 1
    assert store.verify_audit() == []


def test_an_unknown_flag_records_nothing(store: Store) -> None:
    with pytest.raises(StoreError, match="no flag with id 999999"):
        store.acknowledge_many([flag_ids(store)[0], 999999], BENCH_ACTOR, "x")
    assert store.audit_events().filter(pl.col("action") == "acknowledge").is_empty()


def test_the_bench_acknowledges_under_its_own_name(store: Store) -> None:
    store.acknowledge(flag_ids(store)[0], BENCH_ACTOR, "checked at the bench")
    acks = store.acknowledgements_of(flag_ids(store)[:1])
    assert acks["by_name"].to_list() == ["bench (no accounts)"]


# ---------------------------------------------------------------- sign-off


def test_review_then_approve_locks_the_run_and_reopen_unlocks_it(store: Store) -> None:
    assert store.sign_state("run") == "open"
    sign(store, "rita", "reviewed")
    assert store.sign_state("run") == "reviewed"
    sign(store, "paul", "approved")
    assert store.sign_state("run") == "approved"
    with pytest.raises(RunLocked, match="approved by paul"):
        store.acknowledge(flag_ids(store)[0], Actor("ana", "analyst"), "late")
    with pytest.raises(RunLocked):
        store.ensure_unlocked("run")
    with pytest.raises(AccessDenied, match="needs a reason"):
        sign(store, "paul", "reopened")
    sign(store, "paul", "reopened", reason="IS of sample 3 to be re-integrated")
    assert store.sign_state("run") == "open"
    store.ensure_unlocked("run")
    store.acknowledge(flag_ids(store)[0], Actor("ana", "analyst"), "after reopening")
    sigs = store.signatures("run")
    assert sigs["meaning"].to_list() == ["reviewed", "approved", "reopened"]
    assert sigs["current"].to_list() == [False, False, False]
    assert all(sigs["local_time"].str.contains(r"\(UTC[+-]\d\d:\d\d\)"))
    assert sigs["reason"].to_list()[-1] == "IS of sample 3 to be re-integrated"
    assert store.verify_audit() == []


@pytest.mark.parametrize(
    ("steps", "refusal"),
    [
        ([("ana", "reviewed")], "ana is an analyst: review needs the role reviewer"),
        ([("ana", "approved")], "approve needs the role approver"),
        ([("rita", "approved")], "approve needs the role approver"),
        ([("paul", "approved")], "not reviewed yet"),
        ([("paul", "reviewed"), ("paul", "approved")], "cannot also approve it"),
        ([("rita", "reviewed"), ("rita", "reviewed")], "already reviewed by rita"),
        ([("paul", "reopened")], "needs a reason"),
    ],
)
def test_signing_refusals(store: Store, steps: list[tuple[str, str]], refusal: str) -> None:
    *before, last = steps
    for name, meaning in before:
        sign(store, name, meaning)
    n = store.audit_events().height
    with pytest.raises(AccessDenied, match=refusal):
        sign(store, *last)
    assert store.audit_events().height == n  # a refusal writes nothing


def test_the_four_eyes_rule_can_be_switched_off(store: Store) -> None:
    sign(store, "paul", "reviewed")
    store.sign_run(
        "run", name="paul", password=PW["paul"], meaning="approved", approver_not_reviewer=False
    )
    assert store.sign_state("run") == "approved"


def test_a_wrong_password_signs_nothing(store: Store) -> None:
    with pytest.raises(AccessDenied, match="wrong account name or password"):
        store.sign_run("run", name="rita", password="guess-guess", meaning="reviewed")
    assert store.signatures("run").is_empty()


def test_a_change_after_the_review_needs_a_new_review(store: Store) -> None:
    sign(store, "rita", "reviewed")
    store.acknowledge(flag_ids(store)[0], Actor("ana", "analyst"), "after the review")
    with pytest.raises(AccessDenied, match=r"changed after rita.s review.*acknowledge"):
        sign(store, "paul", "approved")
    sign(store, "rita", "reviewed")  # allowed again: something changed
    sign(store, "paul", "approved")
    assert store.sign_state("run") == "approved"


def test_a_signature_event_carries_the_printed_name_meaning_time_and_digest(store: Store) -> None:
    event_id = sign(store, "rita", "reviewed")
    e = store.audit_events("run").filter(pl.col("event_id") == event_id).row(0, named=True)
    assert e["actor"] == "rita" and e["action"] == "review" and e["role"] == "reviewer"
    for part in ('"meaning":"Reviewed"', '"printed_name":"rita"', "signed_at_utc", "results"):
        assert part in e["new"]
    digest = store.signatures("run")["results_digest"][0]
    assert len(digest) == 64 and digest in e["new"]


def test_results_that_change_after_approval_are_named(store: Store) -> None:
    sign(store, "rita", "reviewed")
    sign(store, "paul", "approved")
    assert store.changed_since_approval("run") == ""
    # the instrument, not a person: a re-read injection changes a result under the signature
    con = store._con
    con.execute("UPDATE results SET conc = conc * 2 WHERE current AND conc IS NOT NULL")
    why = store.changed_since_approval("run")
    assert "results changed after paul approved them" in why
    assert "reopen" in why


def test_signing_an_unknown_run_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="no run 'nosuchrun'"):
        store.sign_run("nosuchrun", name="rita", password=PW["rita"], meaning="reviewed")


# ---------------------------------------------------------------- tampering


@contextmanager
def _tampered(store: Store, sql: str) -> Iterator[Store]:
    """The file changed behind the store's back (by another process), then opened again."""
    path = store.path
    store.close()
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()
    with Store(path) as again:
        yield again


def _tamper(store: Store, sql: str) -> list[str]:
    with _tampered(store, sql) as again:
        return again.verify_audit()


def test_editing_one_event_in_the_file_is_found(store: Store) -> None:
    store.acknowledge_many(flag_ids(store), Actor("ana", "analyst"), "fine")
    sign(store, "rita", "reviewed")
    assert store.verify_audit() == []
    target = int(store.audit_events("run")["event_id"][0])
    problems = _tamper(store, f"UPDATE audit_events SET actor = 'paul' WHERE event_id = {target}")
    assert problems
    assert problems[0].startswith(f"event {target} ")


def test_editing_a_signature_row_is_found(store: Store) -> None:
    sign(store, "rita", "reviewed")
    problems = _tamper(store, "UPDATE signatures SET name = 'paul'")
    assert any("signature 'reviewed' by paul" in p for p in problems)


def test_deleting_an_event_is_found(store: Store) -> None:
    store.acknowledge_many(flag_ids(store), Actor("ana", "analyst"), "fine")
    problems = _tamper(store, "DELETE FROM audit_events WHERE event_id = 2")
    assert any("event 2 is missing" in p for p in problems)


def test_a_check_past_a_verified_event_finds_what_the_full_check_finds(store: Store) -> None:
    """The dashboard's check walks only events after the last one verified (its anchor)."""
    store.acknowledge_many(flag_ids(store), Actor("ana", "analyst"), "fine")
    first = store.check_audit()
    assert first.problems == () and (first.event_id, first.hash) == store.audit_head()
    assert store.check_audit(first) == first  # nothing new
    sign(store, "rita", "reviewed")
    later = store.check_audit(first)
    assert later.problems == () and (later.event_id, later.hash) == store.audit_head()
    newest = later.event_id
    edit = f"UPDATE audit_events SET reason = 'edited' WHERE event_id = {newest}"
    with _tampered(store, edit) as again:
        full = tuple(again.verify_audit())
        assert full and full[0].startswith(f"event {newest} ")
        assert again.check_audit(first).problems == full  # an event past the anchor
        assert again.check_audit(later).problems == full  # the anchor itself: a full walk


def test_the_sign_off_pane_walks_the_whole_chain_again_every_few_minutes(store: Store) -> None:
    """An older event changed in a replaced file shows by the next full walk at the latest."""
    from dashboard.signoff import ChainWatch

    now = [0.0]
    store.acknowledge_many(flag_ids(store), Actor("ana", "analyst"), "fine")
    watch = ChainWatch(store, full_every=600.0, clock=lambda: now[0])
    assert watch.check().problems == ()
    sign(store, "rita", "reviewed")
    assert watch.check().event_id == store.audit_head()[0]
    edit = "UPDATE audit_events SET reason = 'edited' WHERE event_id = 1"
    with _tampered(store, edit) as again:
        watch.store = again  # as the store's connection follows a replaced file
        now[0] = 10.0
        assert watch.check().problems == ()  # before the anchor: not walked yet
        now[0] = 601.0
        assert watch.check().problems == tuple(again.verify_audit()) != ()


# ---------------------------------------------------------------- old databases


def test_an_old_database_is_upgraded_and_its_typed_acknowledgements_join_the_chain(
    base_db: Path, tmp_path: Path
) -> None:
    """A database from before accounts: migrated on open, its acknowledgements kept as typed."""
    path = tmp_path / "old.duckdb"
    shutil.copy(base_db, path)
    version = next(v for v, sql in MIGRATIONS if "CREATE TABLE audit_events" in sql)
    con = duckdb.connect(str(path))
    for sql in (
        "DROP TABLE audit_events",
        "DROP TABLE users",
        "DROP TABLE signatures",
        "ALTER TABLE acknowledgements DROP COLUMN role",
        "ALTER TABLE acknowledgements DROP COLUMN event_id",
        # and the reviewer's edits that came after (migration 5)
        "DROP TABLE edits",
        "DROP SEQUENCE seq_edit",
        "DROP TABLE peak_history",
        "ALTER TABLE peaks DROP COLUMN source",
        "ALTER TABLE peaks DROP COLUMN edit_id",
        f"DELETE FROM schema_version WHERE version >= {version}",
    ):
        con.execute(sql)
    flag = con.execute("SELECT min(flag_id) FROM flags").fetchone()[0]
    con.execute(
        "INSERT INTO acknowledgements VALUES "
        "(?, 'night shift', 'seen at 3 am', TIMESTAMP '2026-01-02 03:04:05')",
        [flag],
    )
    con.close()
    with Store(path, read_only=True) as old:  # readable as it is, before any upgrade
        assert old.audit_events().is_empty()
        assert old.signatures("run").is_empty()
        assert old.verify_audit() == []
        assert not old.has_accounts()
    with Store(path) as store:
        assert store.schema_version() >= version
        events = store.audit_events()
        assert events.height == 1
        e = events.row(0, named=True)
        assert (e["actor"], e["role"], e["action"]) == (
            "night shift",
            "unverified (typed name)",
            "acknowledge",
        )
        assert "seen at 3 am" in e["new"]
        assert store.acknowledgements(int(flag))["event_id"].to_list() == [e["event_id"]]
        assert store.verify_audit() == []
    with Store(path) as again:  # adopted once only
        assert again.audit_events().height == 1
