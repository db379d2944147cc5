"""`asnmon user`, `sign`, `audit` as a lab user runs them: real subprocesses, a real file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from asnmon.store import RunInfo, Store


def asnmon(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asnmon.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "lab.duckdb"
    with Store(path) as store:
        store.ensure_run(RunInfo("seq42", "seq42", planned=3))
    for name, role in (("rita", "reviewer"), ("paul", "approver"), ("ana", "analyst")):
        out = asnmon(
            "user", "add", name, "--role", role, "--password-stdin", "--db", str(path),
            stdin=f"{name}-secret-1\n",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    return str(path)


def sign(db: str, user: str, meaning: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return asnmon(
        "sign", "--db", db, "--run", "seq42", "--meaning", meaning, "--user", user,
        "--password-stdin", *extra, stdin=f"{user}-secret-1\n",
    )  # fmt: skip


def test_users_are_listed_without_passwords(db: str) -> None:
    out = asnmon("user", "list", "--db", db)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[:3] for line in lines[1:]] == [
        ["ana", "analyst", "active"],
        ["paul", "approver", "active"],
        ["rita", "reviewer", "active"],
    ]
    assert "secret" not in out.stdout


def test_a_password_is_never_taken_without_a_terminal_or_the_flag(db: str) -> None:
    out = asnmon("user", "add", "zoe", "--role", "analyst", "--db", db, stdin="zoe-secret-1\n")
    assert out.returncode == 1
    assert "--password-stdin" in out.stderr
    assert "zoe" not in asnmon("user", "list", "--db", db).stdout


def test_sign_review_approve_lock_and_reopen(db: str) -> None:
    refused = sign(db, "ana", "reviewed")
    assert refused.returncode == 1
    assert "ana is an analyst: review needs the role reviewer" in refused.stderr
    reviewed = sign(db, "rita", "reviewed")
    assert reviewed.returncode == 0, reviewed.stderr
    assert "reviewed by rita (reviewer)" in reviewed.stdout and "UTC =" in reviewed.stdout
    approved = sign(db, "paul", "approved")
    assert approved.returncode == 0, approved.stderr
    assert "LOCKED (approved)" in approved.stdout
    again = sign(db, "rita", "reviewed")
    assert again.returncode == 1 and "is locked" in again.stderr
    no_reason = sign(db, "paul", "reopened")
    assert no_reason.returncode == 1 and "needs a reason" in no_reason.stderr
    reopened = sign(db, "paul", "reopened", "--reason", "sample 7 to re-integrate")
    assert reopened.returncode == 0, reopened.stderr
    shown = asnmon("audit", "show", "--db", db, "--run", "seq42")
    assert shown.returncode == 0
    actions = [line.split("  ")[2].split()[0] for line in shown.stdout.splitlines()]
    assert actions == ["review", "approve", "reopen"]
    assert "because: sample 7 to re-integrate" in shown.stdout


def test_wrong_password_signs_nothing(db: str) -> None:
    out = asnmon(
        "sign", "--db", db, "--run", "seq42", "--meaning", "reviewed", "--user", "rita",
        "--password-stdin", stdin="not-ritas-password\n",
    )  # fmt: skip
    assert out.returncode == 1
    assert "wrong account name or password" in out.stderr
    assert (
        "no audit events for run seq42"
        in asnmon("audit", "show", "--db", db, "--run", "seq42").stdout
    )


def test_audit_verify_passes_then_fails_when_one_event_is_altered(db: str) -> None:
    assert sign(db, "rita", "reviewed").returncode == 0
    ok = asnmon("audit", "verify", "--db", db)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("audit trail intact: 4 events")  # 3 accounts + 1 signature
    con = duckdb.connect(db)
    con.execute("UPDATE audit_events SET reason = 'nothing to see' WHERE event_id = 2")
    con.close()
    broken = asnmon("audit", "verify", "--db", db)
    assert broken.returncode == 3
    assert "BROKEN: event 2 (user add by" in broken.stderr
    assert "it was changed" in broken.stderr


def test_disable_keeps_the_account_and_stops_its_signing(db: str) -> None:
    out = asnmon("user", "disable", "rita", "--reason", "left the lab", "--db", db)
    assert out.returncode == 0, out.stderr
    assert "rita" in asnmon("user", "list", "--db", db).stdout
    refused = sign(db, "rita", "reviewed")
    assert refused.returncode == 1 and "disabled" in refused.stderr
    assert asnmon("user", "enable", "rita", "--db", db).returncode == 0
    assert sign(db, "rita", "reviewed").returncode == 0


def test_passwd_changes_the_password(db: str) -> None:
    out = asnmon("user", "passwd", "ana", "--password-stdin", "--db", db, stdin="ana-new-pass\n")
    assert out.returncode == 0, out.stderr
    with Store(db) as store:
        assert store.authenticate("ana", "ana-new-pass").name == "ana"
