"""`asnmon user`, `sign`, `audit`: review accounts, run sign-off, the audit trail.

Passwords are never taken from the command line (it shows in ``ps`` and in
shell history): they are asked twice on the terminal, or read as one line
from standard input with ``--password-stdin`` for scripts.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from asnmon.cli.common import Subcommands
from asnmon.errors import AccessDenied

if TYPE_CHECKING:
    from asnmon.store import Store

ROLE_HELP = "analyst (acknowledges, edits) < reviewer (+ signs Reviewed) < approver (+ Approved)"


def register(sub: Subcommands) -> None:
    """user, sign, audit."""
    p = sub.add_parser(
        "user",
        help="review accounts: add, list, disable, enable, passwd, role",
        description="Named accounts for review and sign-off, kept in the database. An "
        "account is never deleted, only disabled: its name stays on everything it signed. "
        f"Roles: {ROLE_HELP}.",
        epilog="examples:\n  asnmon user add rita --role reviewer --db lab.duckdb\n"
        "  printf '%s\\n' \"$PW\" | asnmon user add ana --role analyst --password-stdin "
        "--db lab.duckdb\n  asnmon user disable ana --reason 'left the lab' --db lab.duckdb",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    users = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    q = users.add_parser("add", help="a new account (password asked twice)")
    q.add_argument("name", metavar="NAME", help="the name printed on signatures")
    q.add_argument("--role", required=True, choices=("analyst", "reviewer", "approver"))
    _db_and_password(q)
    q.set_defaults(func=cmd_user_add)
    q = users.add_parser("list", help="every account with its role and state")
    q.add_argument("--db", metavar="FILE", required=True)
    q.set_defaults(func=cmd_user_list)
    for action, verb in (("disable", "can no longer log in or sign"), ("enable", "back")):
        q = users.add_parser(action, help=f"the account {verb} (kept, never deleted)")
        q.add_argument("name", metavar="NAME")
        q.add_argument("--reason", default="", help="recorded in the audit trail")
        q.add_argument("--db", metavar="FILE", required=True)
        q.set_defaults(func=cmd_user_disable, disabled=action == "disable")
    q = users.add_parser("passwd", help="a new password for an account")
    q.add_argument("name", metavar="NAME")
    _db_and_password(q)
    q.set_defaults(func=cmd_user_passwd)
    q = users.add_parser("role", help="change an account's role")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--role", required=True, choices=("analyst", "reviewer", "approver"))
    q.add_argument("--reason", default="", help="recorded in the audit trail")
    q.add_argument("--db", metavar="FILE", required=True)
    q.set_defaults(func=cmd_user_role)

    p = sub.add_parser(
        "sign",
        help="sign a run: reviewed, approved (locks it), or reopened (with a reason)",
        description="An electronic signature on a run: printed name, date and time (UTC and "
        "local) and meaning, with the account's password re-entered (21 CFR Part 11 §11.50, "
        "§11.200). A reviewer signs 'reviewed', then a different approver 'approved', which "
        "locks the run; 'reopened' (approver, with --reason) unlocks it for changes.",
        epilog="example:\n  asnmon sign --db lab.duckdb --run 2026-05-06_seq42 --meaning "
        "reviewed --user rita",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", metavar="FILE", required=True)
    p.add_argument("--run", metavar="RUN", required=True, help="run id (asnmon runs)")
    p.add_argument("--meaning", required=True, choices=("reviewed", "approved", "reopened"))
    p.add_argument("--user", metavar="NAME", help="account name (asked when not given)")
    p.add_argument("--reason", default="", help="why (required to reopen)")
    p.add_argument(
        "--settings",
        metavar="TOML",
        help="settings file ([review] approver_not_reviewer; default: on)",
    )
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser(
        "audit",
        help="the audit trail: verify its hash chain, or show it",
        description="Every change a person made (who, when, what, old -> new, why), each "
        "event hash-chained to the one before, so an edit of the history is detectable.",
    )
    audit = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    q = audit.add_parser(
        "verify", help="check the hash chain: exit 0 intact, 3 broken (names the first event)"
    )
    q.add_argument("--db", metavar="FILE", required=True)
    q.set_defaults(func=cmd_audit_verify)
    q = audit.add_parser("show", help="the events, oldest first")
    q.add_argument("--db", metavar="FILE", required=True)
    q.add_argument("--run", metavar="RUN", help="only this run's events")
    q.add_argument("--injection", metavar="ID", type=int, help="only this injection's events")
    q.set_defaults(func=cmd_audit_show)


def _db_and_password(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="FILE", required=True)
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password as one line from standard input (for scripts)",
    )


def read_password(args: argparse.Namespace, *, twice: bool, prompt: str = "password: ") -> str:
    """One line from stdin (``--password-stdin``), or asked on the terminal."""
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise AccessDenied("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise AccessDenied(
            "no terminal to ask for the password on: pass --password-stdin and send it on "
            "standard input (never as an argument)"
        )
    first = getpass.getpass(prompt)
    if twice and getpass.getpass("again: ") != first:
        raise AccessDenied("the two passwords differ; nothing was changed")
    return first


def _open(db: str, *, read_only: bool = False) -> Store:
    from asnmon.store import Store

    return Store(db, read_only=read_only)


def cmd_user_add(args: argparse.Namespace) -> int:
    from asnmon.users import check_name, check_password, cli_actor

    name = check_name(args.name)
    password = check_password(read_password(args, twice=True))
    with _open(args.db) as store:
        store.add_user(name, args.role, password, actor=cli_actor(getpass.getuser()))
    print(f"account {name} ({args.role}) added to {args.db}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    with _open(args.db, read_only=True) as store:
        users = store.users()
    if users.is_empty():
        print(f"no accounts in {args.db}: the dashboard runs as a single bench without accounts")
        return 0
    print(f"{'name':<24} {'role':<10} {'state':<9} created (UTC)")
    for u in users.iter_rows(named=True):
        state = "disabled" if u["disabled"] else "active"
        print(f"{u['name']:<24} {u['role']:<10} {state:<9} {u['created_at']:%Y-%m-%d %H:%M}")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    from asnmon.users import cli_actor

    with _open(args.db) as store:
        store.set_user_disabled(
            args.name, args.disabled, actor=cli_actor(getpass.getuser()), reason=args.reason
        )
    print(f"account {args.name} {'disabled' if args.disabled else 'enabled'}")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    from asnmon.users import check_password, cli_actor

    password = check_password(read_password(args, twice=True, prompt="new password: "))
    with _open(args.db) as store:
        store.set_password(args.name, password, actor=cli_actor(getpass.getuser()))
    print(f"password of {args.name} changed")
    return 0


def cmd_user_role(args: argparse.Namespace) -> int:
    from asnmon.users import cli_actor

    with _open(args.db) as store:
        store.set_role(args.name, args.role, actor=cli_actor(getpass.getuser()), reason=args.reason)
    print(f"account {args.name} is now {args.role}")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from asnmon.settings import load_settings

    settings = load_settings(args.settings)
    name = args.user
    if not name:
        if args.password_stdin or not sys.stdin.isatty():
            raise AccessDenied("--user NAME is needed when the password comes from stdin")
        name = input("account name: ").strip()
    password = read_password(args, twice=False, prompt=f"password of {name} (to sign): ")
    with _open(args.db) as store:
        event_id = store.sign_run(
            args.run,
            name=name,
            password=password,
            meaning=args.meaning,
            reason=args.reason,
            approver_not_reviewer=settings.approver_not_reviewer,
        )
        sig = store.signatures(args.run).row(-1, named=True)
        state = store.sign_state(args.run)
    print(
        f"run {args.run}: {sig['meaning']} by {sig['name']} ({sig['role']}) at "
        f"{sig['signed_at']:%Y-%m-%d %H:%M:%S} UTC = {sig['local_time']}; audit event "
        f"{event_id}; the run is now {'LOCKED (approved)' if state == 'approved' else state}"
    )
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    with _open(args.db, read_only=True) as store:
        problems = store.verify_audit()
        count, head = store.audit_head()
    if problems:
        print(f"audit trail of {args.db} is BROKEN: {problems[0]}", file=sys.stderr)
        for p in problems[1:]:
            print(f"  also: {p}", file=sys.stderr)
        return 3
    print(f"audit trail intact: {count} events, newest #{count} sha256 {head}")
    return 0


def cmd_audit_show(args: argparse.Namespace) -> int:
    with _open(args.db, read_only=True) as store:
        events = store.audit_events(args.run, args.injection)
    if events.is_empty():
        print("no audit events" + (f" for run {args.run}" if args.run else ""))
        return 0
    for e in events.iter_rows(named=True):
        change = f"{e['old'] or '-'} -> {e['new'] or '-'}"
        why = f"  because: {e['reason']}" if e["reason"] else ""
        inj = f" injection {e['injection_id']}" if e["injection_id"] is not None else ""
        print(
            f"#{e['event_id']} {e['at_utc']:%Y-%m-%d %H:%M:%S} UTC  {e['actor']} ({e['role']})  "
            f"{e['action']} {e['target']}{inj}  {change}{why}"
        )
    return 0
