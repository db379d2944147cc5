"""`asnmon ingest`: files already on disk, quantified in acquisition order."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from asnmon.cli.common import Subcommands, add_common, print_summary

if TYPE_CHECKING:
    from asnmon.pipeline import IngestReport


def register(sub: Subcommands) -> None:
    """Batch ingestion."""
    p = sub.add_parser(
        "ingest",
        help="quantify mzML files into the database (batch)",
        description="Read, integrate, quantify and flag each file, in "
        "acquisition order (worklist position, then file time), storing every "
        "result in the database. Files already stored (same content) are "
        "skipped, so running it twice is safe. A bad file is stored as a "
        "READ_ERROR and the rest go on.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="mzML files or folders (folders: every *.mzML and *.mzML.gz inside)",
    )
    add_common(p)
    p.add_argument(
        "--run", metavar="NAME", help="run name (default: the worklist's or the folder's name)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--guide-runs",
        metavar="R1,R2",
        help="runs forming the Westgard guide set (default: every other run in the database)",
    )
    p.add_argument(
        "--group",
        type=int,
        metavar="N",
        help="files stored per database transaction (default 32, or 1 s of files; 1: each "
        "file on its own). A kill loses at most the group in hand; running again stores it",
    )
    p.set_defaults(func=cmd_ingest)


def _collect(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += [
                f for f in sorted(p.iterdir()) if f.name.lower().endswith((".mzml", ".mzml.gz"))
            ]
        else:
            files.append(p)
    return files


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from asnmon.assay import load_assay
    from asnmon.pipeline import RunIngestor, ingest_paths
    from asnmon.store import RunInfo, Store
    from asnmon.worklist import load_worklist

    assay = load_assay(args.assay)
    worklist = load_worklist(args.worklist) if args.worklist else None
    files = _collect(args.paths)
    if not files:
        print(
            "asnmon ingest: no mzML files found in " + ", ".join(map(str, args.paths)),
            file=sys.stderr,
        )
        return 2
    name = args.run or files[0].resolve().parent.name
    with Store(args.db) as store:
        run = RunInfo(
            run_id=name,
            name=name,
            folder=str(files[0].parent),
            worklist=args.worklist,
            assay_name=assay.name,
            assay_unit=assay.unit,
            lloq=assay.calibration.lloq,
            uloq=assay.calibration.uloq,
            planned=len(worklist) if worklist else None,
        )
        guide = tuple(r.strip() for r in args.guide_runs.split(",")) if args.guide_runs else ()
        ingestor = RunIngestor(store, assay, run, worklist, guide_runs=guide)
        bar = tqdm(total=len(files), unit="inj", disable=args.quiet, file=sys.stderr)

        def tick(report: IngestReport) -> None:
            bar.update(1)

        if args.group is not None:
            reports = ingest_paths(ingestor, files, tick, group=max(args.group, 1))
        else:
            reports = ingest_paths(ingestor, files, tick)
        bar.close()
        print_summary(store, name, reports)
    return 0
