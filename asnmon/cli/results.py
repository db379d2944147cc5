"""`asnmon report`, `export`, `runs`: a run's record, its results table, the runs there are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from asnmon.cli.common import Subcommands


def register(sub: Subcommands) -> None:
    """Report, export and the list of runs."""
    p = sub.add_parser(
        "report",
        help="write a run's record: one HTML file, and with --pdf its PDF",
        description="The run's record: every injection's result (BLQ/ALQ in words), the "
        "calibration curve on linear axes with its ±15 % deviations, QC table and "
        "Levey-Jennings charts with mean and ±1/2/3 SD, the IS response with its window, every "
        "flag with who acknowledged it, every change from the audit trail with old and new "
        "values, the signatures and the lock. One self-contained HTML file that prints to A4; "
        "--pdf prints it with headless Chromium.",
        epilog="examples:\n"
        "  asnmon runs --db lab.duckdb                      which runs there are\n"
        "  asnmon report 2024-05-07_seq42 --db lab.duckdb --pdf\n"
        "  asnmon report seq42 --db lab.duckdb --out reports/ --chromatograms --pdf",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run id (`asnmon runs --db FILE` lists them)")
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
    p.add_argument(
        "--pdf",
        action="store_true",
        help="also print the report to PDF (beside the HTML) with headless Chromium",
    )
    p.add_argument(
        "--chromatograms",
        action="store_true",
        help="add one page per injection with its traces and integration boundaries",
    )
    p.add_argument(
        "--browser",
        metavar="PATH",
        help="the Chromium/Chrome to print with (default: chromium on PATH)",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "export",
        help="write results as CSV or Parquet",
        description="One row per injection with the documented columns "
        "(README, 'Export columns'). The format follows the file extension. CSV is UTF-8 "
        "with a byte-order mark (Excel shows µM), rounded by the documented rule, and text "
        "cells that would start a formula are quoted; Parquet keeps every value as stored.",
    )
    p.add_argument("--db", metavar="FILE", required=True)
    p.add_argument(
        "--out", metavar="FILE", required=True, type=Path, help="results.csv or results.parquet"
    )
    p.add_argument("--run", metavar="RUN_ID", help="only this run (default: all runs)")
    p.add_argument(
        "--full-precision",
        action="store_true",
        help="CSV: every stored digit instead of the documented rounding",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "runs",
        help="list the runs in a database with their verdicts and sign-off state",
        description="One line per run, newest first: verdict, injections, samples reported, "
        "< LLOQ, > ULOQ, injections without a result, fail flags nobody acknowledged, and "
        "the sign-off state (open, reviewed, approved = locked).",
    )
    p.add_argument("--db", metavar="FILE", required=True)
    p.set_defaults(func=cmd_runs)


def _unknown_run(command: str, store: Any, run: str) -> str | None:
    """The message for a run the database does not hold, naming those it does."""
    known = store.runs()["run_id"].to_list() if store.runs().height else []
    if run in known:
        return None
    listed = ", ".join(known) if known else "none: the database holds no run yet"
    return (
        f"asnmon {command}: no run '{run}' in {store.path} (runs: {listed}; "
        f"`asnmon runs --db {store.path}` shows them with their verdicts)"
    )


def cmd_report(args: argparse.Namespace) -> int:
    from asnmon.assay import load_assay
    from asnmon.report import write_report
    from asnmon.report.pdf import find_chromium, print_pdf
    from asnmon.store import Store

    if args.pdf and find_chromium(args.browser) is None:
        print(
            "asnmon report: --pdf needs Chromium (Debian: apt-get install chromium; or "
            "--browser PATH); without it, open the HTML report and print it (Ctrl-P)",
            file=sys.stderr,
        )
        return 2
    guide = [r.strip() for r in args.guide_runs.split(",")] if args.guide_runs else None
    with Store(args.db, read_only=True) as store:
        problem = _unknown_run("report", store, args.run)
        if problem:
            print(problem, file=sys.stderr)
            return 2
        out = write_report(
            store,
            args.run,
            args.out,
            assay=load_assay(args.assay),
            guide_runs=guide,
            chromatograms=args.chromatograms,
        )
    print(f"report -> {out}")
    if args.pdf:
        pdf = print_pdf(out, out.with_suffix(".pdf"), browser=args.browser)
        print(f"pdf -> {pdf}")
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
        if args.run is not None:
            problem = _unknown_run("export", store, args.run)
            if problem:
                print(problem, file=sys.stderr)
                return 2
        frame = store.results(args.run)
    write_results(frame, out, full_precision=args.full_precision)
    print(f"{frame.height} rows -> {out}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from asnmon.export import format_runs, runs_table
    from asnmon.store import Store

    with Store(args.db, read_only=True) as store:
        table = runs_table(store)
    if table.height == 0:
        print(f"no run in {args.db} yet")
        return 0
    print(format_runs(table))
    print(f"\n{table.height} run(s). Report: asnmon report RUN --db {args.db} --pdf")
    return 0
