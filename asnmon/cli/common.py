"""What several command groups share: database options, the run summary."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asnmon.pipeline import IngestReport
    from asnmon.store import Store


# argparse's sub-parsers type is private (argparse._SubParsersAction).
Subcommands = Any


def add_common(p: argparse.ArgumentParser, *, db_required: bool = False) -> None:
    p.add_argument(
        "--assay", metavar="FILE", help="assay TOML (default: the built-in asparagine assay)"
    )
    p.add_argument(
        "--worklist",
        metavar="CSV",
        help="worklist CSV: file, sample_type, level, "
        "nominal, matrix, dilution, ... (default: file-name convention)",
    )
    p.add_argument(
        "--db",
        metavar="FILE",
        required=db_required,
        default=None if db_required else "asnmon.duckdb",
        help="DuckDB database file (created if missing)",
    )


def print_summary(store: Store, run_id: str, reports: Sequence[IngestReport]) -> None:
    import polars as pl

    rs = list(reports)
    stored = sum(r.stored for r in rs)
    results = store.results(run_id)
    flags = store.flags(run_id)
    by_code = Counter(flags["code"].to_list()) if flags.height else Counter()
    quantified = results.filter(results["conc"].is_not_null()).height if results.height else 0
    files = f"{len(rs)} files, {stored} stored, {len(rs) - stored} skipped; " if rs else ""
    print(f"\nrun {run_id}: {files}{results.height} injections, {quantified} quantified results")
    verdict = store.runs().filter(pl.col("run_id") == run_id)
    if verdict.height:
        row = verdict.row(0, named=True)
        print(f"verdict: {str(row['verdict']).upper()} ({row['verdict_reason']})")
    cals = store.calibrations(run_id)
    if cals.height:
        last = cals.row(-1, named=True)
        print(f"calibration v{last['version']}: {last['reason']}")
    if by_code:
        print("flags: " + ", ".join(f"{c} {n}" for c, n in sorted(by_code.items())))
    else:
        print("flags: none")
    print(f"database: {store.path}")
