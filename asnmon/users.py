"""Who may do what: actors, roles, and password hashing.

Every write a person makes goes through an ``Actor`` (name and role) and
leaves an audit event (``asnmon.audit``). Roles rank ``analyst`` <
``reviewer`` < ``approver``; a higher role may do everything a lower one
may. ``bench`` is the single bench without accounts (localhost, or the one
shared dashboard password): it may acknowledge and edit, never sign — a
signature must name a person (21 CFR Part 11 §11.100(a): unique to one
individual). ``admin`` is the command line managing accounts: it signs
nothing and edits nothing.

Passwords are hashed with Argon2id (argon2-cffi's defaults, the RFC 9106
"second recommended" profile: 64 MiB, 3 passes; ~0.15 s on the 2-core test
machine), never stored or logged in clear.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from asnmon.errors import AccessDenied

ROLES: tuple[str, ...] = ("analyst", "reviewer", "approver")
BENCH = "bench"
ADMIN = "admin"
ACTIONS: frozenset[str] = frozenset(
    {"acknowledge", "reintegrate", "exclude", "edit", "review", "approve", "reopen"}
)
# the lowest role that may do an action
_NEEDS: dict[str, str] = {
    "acknowledge": "analyst",
    "reintegrate": "analyst",
    "exclude": "analyst",
    "edit": "analyst",
    "review": "reviewer",
    "approve": "approver",
    "reopen": "approver",
}
# what the bench may do without an account: everything but signing
_BENCH_MAY = frozenset({"acknowledge", "reintegrate", "exclude", "edit"})
# Account names as they are printed on a signature: letters, digits, ". _ -", a space
# inside; 1-64 characters.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}[A-Za-z0-9._-]$|^[A-Za-z0-9]$")
# NIST SP 800-63B §5.1.1.2: at least 8 characters for a memorized secret.
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps a crafted login cheap


@dataclass(frozen=True, slots=True)
class Actor:
    """The person (or the bench) a write is done as."""

    name: str
    role: str


BENCH_ACTOR = Actor("bench (no accounts)", BENCH)


def cli_actor(os_user: str) -> Actor:
    """The command line managing accounts, named after the operating-system user."""
    return Actor(f"{os_user} (command line)", ADMIN)


def rank(role: str) -> int:
    """0 for a role that signs nothing (bench, admin, unknown), else 1..3."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def can(actor: Actor, action: str) -> bool:
    """May ``actor`` do ``action``? An unknown action is a programming error."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(sorted(ACTIONS))}")
    if actor.role == BENCH:
        return action in _BENCH_MAY
    return rank(actor.role) >= rank(_NEEDS[action])  # bench/admin rank 0: never


def require(actor: Actor, action: str) -> None:
    """``can`` or an ``AccessDenied`` that says who may."""
    if can(actor, action):
        return
    if actor.role == BENCH:
        raise AccessDenied(
            f"{action}: not possible without accounts. The bench without accounts can "
            "acknowledge and edit; signing needs a named account (asnmon user add)."
        )
    raise AccessDenied(
        f"{actor.name} is {article(actor.role)} {actor.role}: {action} needs the role "
        f"{_NEEDS[action]}" + ("" if _NEEDS[action] == "approver" else " or higher") + "."
    )


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def check_name(name: str) -> str:
    """An account name as it will be printed on signatures, or ``AccessDenied``."""
    name = name.strip()
    if not _NAME.match(name):
        raise AccessDenied(
            f"{name!r} cannot be an account name: 1-64 letters, digits, '.', '_', '-' or "
            "spaces inside (it is printed on every signature)"
        )
    if name.lower().startswith(BENCH):
        raise AccessDenied(f"{name!r}: names starting with 'bench' are kept for the bench")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccessDenied(f"role {role!r}: one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccessDenied(
            f"the password has {len(password)} characters; at least {MIN_PASSWORD} "
            "(NIST SP 800-63B §5.1.1.2)"
        )
    if len(password) > MAX_PASSWORD:
        raise AccessDenied(f"the password is longer than {MAX_PASSWORD} characters")
    return password


_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An Argon2id hash (salt and parameters inside) of a checked password."""
    return _HASHER.hash(check_password(password))


def password_matches(stored_hash: str, password: str) -> bool:
    """Constant-time check of ``password`` against a stored hash; False for a bad hash."""
    if not stored_hash or len(password) > MAX_PASSWORD:
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash("not the password of anyone")


def spend_a_check(password: str) -> None:
    """A login for an unknown name costs one hash check too: its timing names no one."""
    password_matches(_dummy_hash(), password[:MAX_PASSWORD])
