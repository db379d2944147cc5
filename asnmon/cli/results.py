"""`asnmon report`, `export`: a run's record and its results table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asnmon.cli.common import Subcommands


def register(sub: Subcommands) -> None:
    """Report and export."""
    p = sub.add_parser(
        "report",
        help="write a run's post-run report (one HTML file that prints to PDF)",
        description="Calibration curve with residuals, QC table, Levey-Jennings charts per QC "
        "level with Westgard violations, IS response over the run with its limits, and every "
        "flagged injection with its reason - in one self-contained HTML file.",
    )
    p.add_argument("run", metavar="RUN", help="run id (see `asnmon export` or the dashboard)")
    p.add_argument("--db", metavar="FILE", required=True)
    p.add_argument(
        "--out",
        metavar="PATH",
        type=Path,
        default=Path("."),
        help="file or folder (default: ./RUN_report.html)",
    )
    p.add_argument("--assay", metavar="FILE", help="assay TOML (default: built-in)")
    p.add_argument(
        "--guide-runs",
        metavar="R1,R2",
        help="runs forming the Westgard guide set (default: every other run in the database)",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "export",
        help="write results as CSV or Parquet",
        description="One row per injection with the documented columns "
        "(README, 'Export columns'). The format follows the file extension.",
    )
    p.add_argument("--db", metavar="FILE", required=True)
    p.add_argument(
        "--out", metavar="FILE", required=True, type=Path, help="results.csv or results.parquet"
    )
    p.add_argument("--run", metavar="RUN_ID", help="only this run (default: all runs)")
    p.set_defaults(func=cmd_export)


def cmd_report(args: argparse.Namespace) -> int:
    from asnmon.assay import load_assay
    from asnmon.report import write_report
    from asnmon.store import Store

    guide = [r.strip() for r in args.guide_runs.split(",")] if args.guide_runs else None
    with Store(args.db, read_only=True) as store:
        if args.run not in store.runs()["run_id"].to_list():
            known = ", ".join(store.runs()["run_id"].to_list()) or "none"
            print(
                f"asnmon report: no run '{args.run}' in {args.db} (runs: {known})", file=sys.stderr
            )
            return 2
        out = write_report(
            store, args.run, args.out, assay=load_assay(args.assay), guide_runs=guide
        )
    print(f"report -> {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from asnmon.export import FORMATS, write_results
    from asnmon.store import Store

    out: Path = args.out
    if out.suffix.lower() not in FORMATS:
        print(
            f"asnmon export: unknown format '{out.suffix}': use .csv or .parquet", file=sys.stderr
        )
        return 2
    with Store(args.db, read_only=True) as store:
        frame = store.results(args.run)
    write_results(frame, out)  # CSV: text cells that would start a formula are quoted
    print(f"{frame.height} rows -> {out}")
    return 0
