"""`asnmon backup`, `archive`: looking after a database that lives for months."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from asnmon.cli.common import Subcommands


def register(sub: Subcommands) -> None:
    """Backup and archive."""
    p = sub.add_parser(
        "backup",
        help="a consistent copy of the database",
        description="Copies the whole database into a new DuckDB file, consistent even "
        "while the monitor writes: DuckDB lets no other process open a database the monitor "
        "holds, so then the running monitor is asked to write the copy (it also takes its "
        "own every [database] backup_every hours into backup_dir).",
    )
    p.add_argument("--db", metavar="FILE", required=True, type=Path)
    p.add_argument("--to", metavar="FILE", required=True, type=Path)
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds to wait for a running monitor to write it (default 120)",
    )
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser(
        "archive",
        help="archive old runs to Parquet (and prune them)",
        description="Writes every table's rows of the chosen runs to Parquet "
        "(one folder per run, with a manifest); with --prune deletes them from "
        "the database, only once the archive on disk is complete.",
    )
    p.add_argument("--db", metavar="FILE", required=True, type=Path)
    p.add_argument("--before", metavar="YYYY-MM-DD", help="runs created before this date")
    p.add_argument("--run", action="append", metavar="RUN", help="a run id (repeatable)")
    p.add_argument("--to", metavar="DIR", required=True, type=Path)
    p.add_argument("--prune", action="store_true", help="delete the archived runs")
    p.set_defaults(func=cmd_archive)


def cmd_backup(args: argparse.Namespace) -> int:
    import json
    import uuid

    from asnmon.errors import DatabaseLockedError
    from asnmon.monitor import backup_request_path
    from asnmon.store import Store, backup_refusal

    refusal = backup_refusal(Path(args.db), Path(args.to))
    if refusal is not None:  # before anything: writing there would destroy the database
        print(f"asnmon backup: refused: {refusal}", file=sys.stderr)
        return 2
    try:
        with Store(args.db, read_only=True) as store:
            print(f"backup -> {store.backup(args.to)}")
        return 0
    except DatabaseLockedError:
        pass  # any other problem (no such file, not a database) is the answer itself
    # Held by a running monitor: DuckDB lets no other process open it, so ask the monitor.
    request = backup_request_path(Path(args.db))
    ident = uuid.uuid4().hex
    done = request.with_name(f"{request.name}.{ident}.done")
    temp = request.with_name(f".{request.name}.{ident}")
    temp.write_text(json.dumps({"to": str(Path(args.to).absolute()), "id": ident}), "utf-8")
    os.replace(temp, request)
    print(f"{args.db} is in use by a running monitor: asked it for the backup ...")
    deadline = time.monotonic() + args.timeout
    while not done.exists():
        if time.monotonic() > deadline:
            request.unlink(missing_ok=True)
            print(
                f"asnmon backup: no monitor answered within {args.timeout:g} s; is the "
                "database open in another program?",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)
    answer = json.loads(done.read_text("utf-8"))
    done.unlink()
    if not answer.get("ok"):
        print(
            f"asnmon backup: the monitor could not write it: {answer.get('error')}", file=sys.stderr
        )
        return 1
    print(f"backup -> {answer['path']}")
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    from datetime import date

    from asnmon.share import archive
    from asnmon.store import Store

    if not (args.before or args.run):
        print("asnmon archive: give --before DATE or --run RUN", file=sys.stderr)
        return 2
    before = date.fromisoformat(args.before) if args.before else None
    with Store(args.db, read_only=not args.prune) as store:
        rep = archive(store, args.to, before=before, run_ids=args.run or (), prune=args.prune)
    deleted = f"; deleted {rep.deleted}" if rep.deleted else ""
    print(f"{len(rep.run_ids)} run(s) -> {args.to}{deleted}")
    return 0
