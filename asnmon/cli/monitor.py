"""`asnmon run`, `init`, `check`: the live monitor and its preflight."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from asnmon.cli.common import Subcommands

if TYPE_CHECKING:
    from asnmon.settings import Settings


def register(sub: Subcommands) -> None:
    """The monitor and its settings."""
    p = sub.add_parser(
        "run",
        help="watch the instrument's folder and quantify each injection live",
        description="Watch DIR and quantify each injection the moment its file is complete "
        "(size and mtime stable for --settle seconds AND the mzML closed). On start, files "
        "already in the folder that the database lacks are ingested first, in acquisition "
        "order; nothing is ingested twice. Vendor raw files are converted by the commands in "
        "the settings file's [convert] section. Ctrl-C (or SIGTERM) stops cleanly after the "
        "file in hand. Settings: the --settings TOML, then ASNMON_<SECTION>_<KEY> "
        "environment variables, then these options.",
        epilog="examples:\n  asnmon run --watch D:/Data/Seq42 --worklist seq42.csv --db lab.duckdb"
        "\n  asnmon run --settings qqq1.toml --poll 5        (a network share)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--watch", metavar="DIR", help="folder the instrument writes into")
    p.add_argument("--settings", metavar="TOML", help="settings file (see `asnmon init`)")
    p.add_argument("--assay", metavar="FILE", help="assay TOML (default: built-in asparagine)")
    p.add_argument(
        "--worklist",
        metavar="CSV",
        help="worklist (default: worklist*.csv in the folder, else the file-name convention)",
    )
    p.add_argument("--db", metavar="FILE", help="DuckDB file (default asnmon.duckdb)")
    p.add_argument(
        "--poll",
        type=float,
        metavar="S",
        help="poll every S seconds instead of "
        "native events: use for SMB/NFS shares, where native events never arrive",
    )
    p.add_argument(
        "--settle",
        type=float,
        metavar="S",
        help="seconds a file must stay unchanged before it is read (default 0.5)",
    )
    p.add_argument(
        "--max-write",
        type=float,
        metavar="S",
        help="seconds after which a file still being written is flagged INCOMPLETE (default 7200)",
    )
    p.add_argument(
        "--recursive",
        action="store_true",
        default=None,
        help="watch sub-folders too (each sub-folder is its own run)",
    )
    p.add_argument(
        "--stall-factor",
        type=float,
        metavar="K",
        help="raise INSTRUMENT STALLED when no new file has come for K x the run's median "
        "injection interval (or past the worklist's expected end); default 3 ([run] "
        "stall_factor). Raise it (e.g. 5) for a worklist with long unlisted pauses "
        "(re-equilibration, extra blanks); lower it (down to 1.5) to hear sooner. 1.5-50",
    )
    p.add_argument(
        "--heartbeat-every",
        type=float,
        metavar="S",
        help="seconds between the monitor's status writes (database and status file); a "
        "status older than 3 beats reads 'monitor not running'. Default 10 ([run] "
        "heartbeat_every). Raise it only for a slow network share holding the database. 1-300",
    )
    p.add_argument("--no-dashboard", action="store_true", help="headless: no dashboard")
    p.add_argument(
        "--host",
        help="dashboard address (default 127.0.0.1; any other needs a "
        "password: [dashboard] password or ASNMON_DASHBOARD_PASSWORD)",
    )
    p.add_argument("--port", type=int, help="dashboard port (default 8050)")
    p.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="serve another address without a password: anyone on the network can "
        "read results and acknowledge flags",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "init",
        help="write a commented settings file for a new instrument",
        description="Writes a settings TOML with every key, its default and what "
        "it does; never overwrites an existing file.",
    )
    p.add_argument("path", type=Path, metavar="SETTINGS.toml")
    p.add_argument("--watch", metavar="DIR", help="the instrument's output folder")
    p.add_argument("--db", metavar="FILE", help="database file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "check",
        help="preflight: settings, assay, worklist, folder, database, "
        "port, converter - a checklist with a fix for each problem",
        description="The same checks `asnmon run` makes before it starts. Exit "
        "code 1 when a problem would stop the monitor.",
    )
    p.add_argument("--settings", metavar="TOML")
    p.add_argument("--watch", metavar="DIR")
    p.add_argument("--db", metavar="FILE")
    p.add_argument("--no-port", action="store_true", help="skip the dashboard-port check")
    p.set_defaults(func=cmd_check)


def run_settings(args: argparse.Namespace) -> Settings:
    """The settings file, then the environment, then these options (each one checked)."""
    from asnmon.settings import load_settings

    return load_settings(args.settings).with_overrides(
        folder=args.watch,
        assay=args.assay,
        worklist=args.worklist,
        db=args.db,
        poll=args.poll,
        settle=args.settle,
        max_write=args.max_write,
        recursive=args.recursive,
        host=args.host,
        port=args.port,
        insecure=args.insecure,
        dashboard=False if args.no_dashboard else None,
        stall_factor=args.stall_factor,
        heartbeat_every=args.heartbeat_every,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from asnmon.assay import load_assay
    from asnmon.monitor import Monitor

    settings = run_settings(args)
    from asnmon.logs import setup_logging
    from asnmon.preflight import format_checklist, has_fatal, run_checks

    setup_logging(
        settings.log_file,
        settings.log_level,
        max_mb=settings.log_max_mb,
        backups=settings.log_backups,
    )
    checks = run_checks(settings, check_port=settings.dashboard)
    if has_fatal(checks):
        print(format_checklist(checks), file=sys.stderr)
        print(
            "asnmon run: not started; fix the problems above (`asnmon check` repeats them)",
            file=sys.stderr,
        )
        return 1
    assay = load_assay(settings.assay)
    Monitor(settings, assay).run_forever()
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from asnmon.preflight import write_settings_template

    try:
        path = write_settings_template(args.path, folder=args.watch, db=args.db)
    except FileExistsError as err:
        print(f"asnmon init: {err}", file=sys.stderr)
        return 1
    print(f"settings -> {path}\nedit it, then: asnmon check --settings {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from asnmon.preflight import format_checklist, has_fatal, run_checks
    from asnmon.settings import load_settings

    settings = load_settings(args.settings).with_overrides(folder=args.watch, db=args.db)
    checks = run_checks(settings, check_port=not args.no_port)
    print(format_checklist(checks))
    return 1 if has_fatal(checks) else 0
