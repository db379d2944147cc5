"""Store mixin: review accounts (name, role, Argon2id hash, disabled).

An account is never deleted, only disabled: its name stays on every event
and signature it made (21 CFR Part 11 §11.300(a): an identification is
never reused by anyone else). Each change of an account is an audit event;
the event never holds a password or its hash.
"""

from __future__ import annotations

import polars as pl

from asnmon.errors import AccessDenied
from asnmon.store.base import StoreBase
from asnmon.store.trail import _now, append_event
from asnmon.users import (
    Actor,
    check_name,
    check_role,
    hash_password,
    password_matches,
    spend_a_check,
)

WRONG = "wrong account name or password"


class UsersMixin(StoreBase):
    """Accounts of ``Store``; ``authenticate`` is the one place a password is checked."""

    def _has_table(self, name: str) -> bool:
        """Read-only opens skip migrations: an old file may lack the review tables."""
        row = (
            self.reader()
            .execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])
            .fetchone()
        )
        return bool(row and row[0])

    def has_accounts(self) -> bool:
        """Any enabled account: then the dashboard's writes need a log-in."""
        if not self._has_table("users"):
            return False
        row = self.reader().execute("SELECT count(*) FROM users WHERE NOT disabled").fetchone()
        return bool(row and row[0])

    def users(self) -> pl.DataFrame:
        """name, role, disabled, created_at, password_changed_at (never the hash)."""
        if not self._has_table("users"):
            return pl.DataFrame(
                schema={"name": pl.String, "role": pl.String, "disabled": pl.Boolean}
            )
        return self._frame(
            "SELECT name, role, disabled, created_at, password_changed_at FROM users "
            "ORDER BY lower(name)"
        )

    def _account(self, name: str) -> tuple[str, str, str, bool] | None:
        if not self._has_table("users"):
            return None
        row = (
            self.reader()
            .execute(
                "SELECT name, role, password_hash, disabled FROM users WHERE lower(name) = "
                "lower(?)",
                [name.strip()],
            )
            .fetchone()
        )
        return (str(row[0]), str(row[1]), str(row[2]), bool(row[3])) if row else None

    def authenticate(self, name: str, password: str) -> Actor:
        """The account's ``Actor`` if the password is right, else ``AccessDenied``.

        One message for an unknown name and a wrong password, and the same cost
        for both, so a guesser learns neither. A disabled account says so only
        to someone who knows its password.
        """
        account = self._account(name)
        if account is None:
            spend_a_check(password)
            raise AccessDenied(WRONG)
        real, role, stored, disabled = account
        if not password_matches(stored, password):
            raise AccessDenied(WRONG)
        if disabled:
            raise AccessDenied(f"the account {real} is disabled (asnmon user enable)")
        return Actor(real, role)

    def add_user(self, name: str, role: str, password: str, *, actor: Actor) -> None:
        name, role = check_name(name), check_role(role)
        hashed = hash_password(password)
        with self._tx() as con:
            taken = con.execute(
                "SELECT name FROM users WHERE lower(name) = lower(?)", [name]
            ).fetchone()
            if taken:
                raise AccessDenied(
                    f"an account {taken[0]} exists already (names are never reused; "
                    "asnmon user enable brings a disabled one back)"
                )
            now = _now()
            con.execute(
                "INSERT INTO users (name, role, password_hash, disabled, created_at, "
                "password_changed_at) VALUES (?,?,?,FALSE,?,?)",
                [name, role, hashed, now, now],
            )
            append_event(
                con,
                run_id=None,
                injection_id=None,
                actor=actor,
                action="user add",
                target=f"user {name}",
                old=None,
                new={"role": role},
                reason="",
            )

    def set_user_disabled(self, name: str, disabled: bool, *, actor: Actor, reason: str) -> None:
        account = self._account(name)
        if account is None:
            raise AccessDenied(f"no account {name!r} (asnmon user list)")
        real, _role, _hash, was = account
        if was == disabled:
            raise AccessDenied(f"{real} is {'disabled' if was else 'enabled'} already")
        with self._tx() as con:
            con.execute("UPDATE users SET disabled = ? WHERE name = ?", [disabled, real])
            append_event(
                con,
                run_id=None,
                injection_id=None,
                actor=actor,
                action="user disable" if disabled else "user enable",
                target=f"user {real}",
                old={"disabled": was},
                new={"disabled": disabled},
                reason=reason,
            )

    def set_password(self, name: str, password: str, *, actor: Actor) -> None:
        account = self._account(name)
        if account is None:
            raise AccessDenied(f"no account {name!r} (asnmon user list)")
        hashed = hash_password(password)
        with self._tx() as con:
            con.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE name = ?",
                [hashed, _now(), account[0]],
            )
            append_event(
                con,
                run_id=None,
                injection_id=None,
                actor=actor,
                action="user password",
                target=f"user {account[0]}",
                old=None,
                new=None,
                reason="password changed",
            )

    def set_role(self, name: str, role: str, *, actor: Actor, reason: str) -> None:
        account = self._account(name)
        if account is None:
            raise AccessDenied(f"no account {name!r} (asnmon user list)")
        role = check_role(role)
        with self._tx() as con:
            con.execute("UPDATE users SET role = ? WHERE name = ?", [role, account[0]])
            append_event(
                con,
                run_id=None,
                injection_id=None,
                actor=actor,
                action="user role",
                target=f"user {account[0]}",
                old={"role": account[1]},
                new={"role": role},
                reason=reason,
            )
