"""`asnmon dashboard`: a finished database (or the shared folder) reviewed in the browser."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from asnmon.cli.common import Subcommands

if TYPE_CHECKING:
    from asnmon.store import Store


def register(sub: Subcommands) -> None:
    """The read-only review server."""
    p = sub.add_parser(
        "dashboard",
        help="review a database in the browser (read-only)",
        description="Serves the dashboard on a finished database, read-only (DuckDB lets no "
        "other process read a database the monitor has open: the live dashboard is served by "
        "`asnmon run` itself). Open ?kiosk=1 for the lab-monitor view.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", metavar="FILE", help="a finished database, reviewed read-only")
    source.add_argument(
        "--parquet",
        metavar="DIR",
        help="the shared folder the monitors export to ([share] share_dir): every "
        "instrument's runs side by side, read-only",
    )
    p.add_argument("--assay", metavar="FILE", help="assay TOML (default: built-in)")
    p.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-local address without "
        "a password: anyone on the network can read the results",
    )
    p.add_argument(
        "--review",
        action="store_true",
        help="open the database for review: acknowledge, edit and sign as the logged-in "
        "account (needs the database not open in a monitor; DuckDB allows one writer)",
    )
    p.add_argument("--kiosk", action="store_true", help="banner and run plots only, full screen")
    p.add_argument("--sound", action="store_true", help="beep when a new FAIL flag arrives")
    p.set_defaults(func=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace) -> int:
    import os

    from asnmon.assay import load_assay
    from asnmon.settings import load_settings
    from asnmon.store import Store
    from dashboard.server import serve

    assay = load_assay(args.assay)
    env = load_settings(None)  # ASNMON_DASHBOARD_ALLOWED_HOSTS and the like
    store: Store | None = None
    if args.parquet:
        from dashboard.share_app import create_share_app

        app = create_share_app(Path(args.parquet), assay)
        what = f"all instruments in {args.parquet}, read-only"
    else:
        from dashboard.app import create_app

        store = Store(args.db, read_only=not args.review)
        app = create_app(
            store,
            assay,
            kiosk=args.kiosk,
            sound=args.sound,
            idle_minutes=env.idle_minutes,
            approver_not_reviewer=env.approver_not_reviewer,
        )
        what = f"{'review and sign-off' if args.review else 'read-only review'} of {args.db}"
    try:
        handle = serve(
            app,
            host=args.host,
            port=args.port,
            password=os.environ.get("ASNMON_DASHBOARD_PASSWORD"),
            insecure=args.insecure,
            allowed_hosts=env.allowed_hosts,
            max_request_kb=env.max_request_kb,
        )
        print(f"dashboard ({what}): {handle.url}   Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            handle.stop()
    finally:
        if store is not None:
            store.close()
    return 0
