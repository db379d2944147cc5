"""The ``asnmon`` command line: one module per command group.

Imports of the heavy stages happen inside each command, so ``asnmon --help``
answers at once on an acquisition PC. A command group is a module with a
``register(sub)`` that adds its sub-commands, each with ``set_defaults(func=...)``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from asnmon.cli import assay, batch, dashboard, database, monitor, results, review, simulation
from asnmon.cli.simulation import demo_faults

__all__ = ["build_parser", "demo_faults", "main"]

# Order of `asnmon --help`: the night's work first, then review, then upkeep.
GROUPS = (monitor, simulation, batch, results, review, dashboard, database, assay)

EPILOG = """\
typical use:
  asnmon demo                                   simulated instrument + live monitor + dashboard
  asnmon init qqq1.toml --watch D:/Data         a commented settings file for an instrument
  asnmon check --settings qqq1.toml             preflight checklist, a fix for each problem
  asnmon run --settings qqq1.toml               the monitor; dashboard on http://127.0.0.1:8050
  asnmon ingest run1/ --worklist run1/worklist.csv --db lab.duckdb    batch, files already there
  asnmon report RUN --db lab.duckdb             post-run HTML report
  asnmon export --db lab.duckdb --out results.csv
  asnmon check-assay my_assay.toml              explain every problem in an assay file

Files: one injection = one mzML file (.mzML or .mzML.gz). The assay file says
which transitions to integrate and every acceptance limit (the built-in one is
asparagine with a 13C4,15N2 internal standard; print it with
`asnmon check-assay --show`). The worklist CSV says which file is which sample.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asnmon",
        description="Real-time QC monitor for LC-MS/MS asparagine "
        "quantification: reads each injection, integrates analyte and internal standard, "
        "quantifies against the run's calibration, flags what needs a person, stores it all "
        "in DuckDB.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"asnmon {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asnmon")
    except PackageNotFoundError:
        return "dev"


def main(argv: Sequence[str] | None = None) -> int:
    from asnmon.errors import AsnmonError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except AsnmonError as err:
        print(f"asnmon {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
