"""Roles, names and password hashing (asnmon.users)."""

from __future__ import annotations

import pytest

from asnmon.errors import AccessDenied
from asnmon.users import (
    ACTIONS,
    BENCH_ACTOR,
    Actor,
    can,
    check_name,
    check_password,
    cli_actor,
    hash_password,
    password_matches,
    require,
)

ANALYST = Actor("ana", "analyst")
REVIEWER = Actor("rita", "reviewer")
APPROVER = Actor("paul", "approver")

# who may do what: the table a lab's SOP would print
ALLOWED = {
    "acknowledge": {"analyst", "reviewer", "approver", "bench"},
    "reintegrate": {"analyst", "reviewer", "approver", "bench"},
    "exclude": {"analyst", "reviewer", "approver", "bench"},
    "edit": {"analyst", "reviewer", "approver", "bench"},
    "review": {"reviewer", "approver"},
    "approve": {"approver"},
    "reopen": {"approver"},
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize(
    "actor", [ANALYST, REVIEWER, APPROVER, BENCH_ACTOR, cli_actor("root"), Actor("x", "boss")]
)
def test_can_follows_the_role_table(actor: Actor, action: str) -> None:
    assert can(actor, action) is (actor.role in ALLOWED[action])


def test_an_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown action 'sign'"):
        can(APPROVER, "sign")


def test_require_says_who_may() -> None:
    with pytest.raises(AccessDenied, match="ana is an analyst: review needs the role reviewer"):
        require(ANALYST, "review")
    with pytest.raises(AccessDenied, match="signing needs a named account"):
        require(BENCH_ACTOR, "approve")
    require(APPROVER, "reopen")  # no error


def test_actor_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ANALYST.role = "approver"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["", " ", "a" * 65, "x;drop", "bench", "Bench 2", "-lead"])
def test_bad_account_names_are_refused(name: str) -> None:
    with pytest.raises(AccessDenied):
        check_name(name)


@pytest.mark.parametrize("name", ["a", "rita", "Rita Levi-Montalcini", "j.doe_2"])
def test_good_account_names_pass(name: str) -> None:
    assert check_name(f" {name} ") == name


def test_password_hash_verifies_only_the_right_password() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert "correct horse" not in h
    assert password_matches(h, "correct horse")
    assert not password_matches(h, "correct horsE")
    assert not password_matches(h, "")
    assert not password_matches("not a hash", "correct horse")
    assert hash_password("correct horse") != h  # salted


def test_short_passwords_are_refused() -> None:
    with pytest.raises(AccessDenied, match="at least 8"):
        check_password("1234567")
