"""The ``asnmon`` command line.

Imports of the heavy stages happen inside each command, so ``asnmon --help``
answers at once on an acquisition PC.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asnmon.pipeline import IngestReport
    from asnmon.store import Store

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


def cmd_run(args: argparse.Namespace) -> int:
    from asnmon.assay import load_assay
    from asnmon.monitor import Monitor
    from asnmon.settings import load_settings

    settings = load_settings(args.settings).with_overrides(
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
    )
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


def cmd_backup(args: argparse.Namespace) -> int:
    import json
    import uuid

    from asnmon.errors import StoreError
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
    except StoreError:
        if not Path(args.db).exists():
            raise
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


def _add_common(p: argparse.ArgumentParser, *, db_required: bool = False) -> None:
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
    _add_common(p)
    p.add_argument(
        "--run", metavar="NAME", help="run name (default: the worklist's or the folder's name)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--guide-runs",
        metavar="R1,R2",
        help="runs forming the Westgard guide set (default: every other run in the database)",
    )

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

    p = sub.add_parser(
        "simulate",
        help="write a realistic simulated run of mzML files",
        description="A simulated triple-quad run: double blank, zero, 8 "
        "calibrators, blank, QCs, samples (plasma, media, lysates), bracketing "
        "calibrators; a worklist.csv and truth.csv beside the files.",
    )
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--samples", type=int, default=60, help="number of samples (default 60)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--interval",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds between injections (real-time pacing; default 0)",
    )
    p.add_argument(
        "--write-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="write each file progressively over S seconds, as an instrument does",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="add a fault, e.g. is-drift:40:2.5 (from injection 40, -2.5 %% per "
        "injection), rt-step:30:0.2, short:25, over-curve, depleted, "
        "biased-qc:QC-M:25, carryover, truncated, junk, broken-curve",
    )
    _add_sim_mode_args(p)

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
    p.add_argument("--kiosk", action="store_true", help="banner and run plots only, full screen")
    p.add_argument("--sound", action="store_true", help="beep when a new FAIL flag arrives")

    p = sub.add_parser(
        "init",
        help="write a commented settings file for a new instrument",
        description="Writes a settings TOML with every key, its default and what "
        "it does; never overwrites an existing file.",
    )
    p.add_argument("path", type=Path, metavar="SETTINGS.toml")
    p.add_argument("--watch", metavar="DIR", help="the instrument's output folder")
    p.add_argument("--db", metavar="FILE", help="database file")

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

    p = sub.add_parser("check-assay", help="validate an assay file and explain every problem")
    p.add_argument("file", nargs="?", type=Path, help="assay TOML (default: built-in)")
    p.add_argument("--show", action="store_true", help="print the built-in assay file")

    p = sub.add_parser(
        "demo",
        help="a simulated instrument and the live monitor, nothing to configure",
        description="A simulated instrument writes a run (with an IS drift, an over-curve "
        "sample, a depleted plasma, a truncated and a junk file) into a temporary folder in "
        "real time, while the monitor watches it exactly as it would watch an instrument. "
        "Ctrl-C stops.",
    )
    p.add_argument("--samples", type=int, default=40, help="study samples (default 40)")
    p.add_argument(
        "--interval",
        type=float,
        default=1.5,
        metavar="S",
        help="seconds between injections (default 1.5; 0 = as fast as possible)",
    )
    p.add_argument("--db", metavar="FILE", help="keep the database here (default: temporary)")
    p.add_argument("--no-dashboard", action="store_true", help="terminal only")
    p.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open the dashboard in the desktop's browser",
    )
    p.add_argument(
        "--port", type=int, default=8050, help="dashboard port (default 8050; a free one if taken)"
    )
    p.add_argument(
        "--exit-when-done",
        action="store_true",
        help="stop once the simulated run is complete (for scripts and tests)",
    )
    _add_sim_mode_args(p)
    return parser


def _add_sim_mode_args(p: argparse.ArgumentParser) -> None:
    """--mode and --scenario, shared by `simulate` and `demo`."""
    from asnmon.simulate import DEFAULT_SCENARIOS, SCENARIOS

    p.add_argument(
        "--mode",
        choices=("realistic", "clean"),
        default="realistic",
        help="realistic (default): noise, sampling and scheduled windows measured on real "
        "MRM files; clean: smooth peaks on a 0.2 s grid, every trace acquired throughout",
    )
    p.add_argument(
        "--scenario",
        action="append",
        default=None,
        metavar="NAME",
        type=_scenario_name,
        help="a trap of real files (realistic mode; repeatable): "
        + ", ".join(SCENARIOS)
        + f"; 'all' or 'none'. Default: {', '.join(DEFAULT_SCENARIOS)}",
    )


def _scenario_name(value: str) -> str:
    from asnmon.simulate import check_scenarios

    try:
        check_scenarios([value])
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def _sim_config(args: argparse.Namespace, **kw: Any) -> Any:
    """SimConfig from --mode/--scenario; ValueError names the valid choices."""
    from asnmon.simulate import DEFAULT_SCENARIOS, SimConfig, check_scenarios

    if args.mode == "clean":
        if args.scenario:
            raise ValueError("--scenario needs --mode realistic")
        return SimConfig(mode="clean", **kw)
    names = DEFAULT_SCENARIOS if args.scenario is None else check_scenarios(args.scenario)
    return SimConfig(mode="realistic", scenarios=tuple(names), **kw)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asnmon")
    except PackageNotFoundError:
        return "dev"


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

        reports = ingest_paths(ingestor, files, tick)
        bar.close()
        _summary(store, name, reports)
    return 0


def _summary(store: Store, run_id: str, reports: Sequence[IngestReport]) -> None:
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

        store = Store(args.db, read_only=True)
        app = create_app(store, assay, kiosk=args.kiosk, sound=args.sound)
        what = f"read-only review of {args.db}"
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


def cmd_check_assay(args: argparse.Namespace) -> int:
    from importlib import resources

    from asnmon.assay import DEFAULT_ASSAY, limit_sources, load_assay
    from asnmon.errors import AssayError

    if args.show:
        print(resources.files("asnmon.data").joinpath(DEFAULT_ASSAY).read_text("utf-8"))
        return 0
    try:
        assay = load_assay(args.file)
    except AssayError as err:
        print(f"{args.file or 'built-in assay'}: {len(err.problems)} problem(s)")
        for p in err.problems:
            print(f"  - {p}")
        return 1
    print(f"OK: {assay.name}")
    print(
        "  transitions: "
        + ", ".join(f"{t.id} {t.q1}>{t.q3} ({t.role.value})" for t in assay.transitions)
    )
    if assay.external_calibration:
        print(
            "  internal standard: none -- external calibration on the analyte area; "
            "IS window, drift, bias and IS carryover are not applied"
        )
    c = assay.calibration
    print(f"  calibration: {c.model}, weighting {c.weighting}, {c.lloq}-{c.uloq} {assay.unit}")
    print("  QC levels: " + ", ".join(f"{q.name} {q.nominal}" for q in assay.qc_levels))
    print("  limits (default -> source):")
    for section, key, default, source in limit_sources():
        value = getattr(getattr(assay, section), key)
        print(
            f"    {section}.{key} = {value}   [{source}]"
            + ("" if value == default else f" (default {default})")
        )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from asnmon.simulate import apply_faults, simulate_run

    try:
        config = apply_faults(_sim_config(args, n_samples=args.samples, seed=args.seed), args.fault)
    except ValueError as err:
        print(f"asnmon simulate: {err}", file=sys.stderr)
        return 2
    run = simulate_run(
        args.out_dir,
        config,
        interval=args.interval,
        write_seconds=args.write_seconds,
        progress=True,
    )
    scenarios = ", ".join(config.scenarios) or "none"
    print(
        f"{len(run.paths)} files -> {args.out_dir} ({config.mode} mode; scenarios: "
        f"{scenarios if config.mode == 'realistic' else '-'})\n"
        f"worklist: {run.worklist_path}\ntruth: {run.truth_path}"
    )
    return 0


def _has_display() -> bool:
    """A desktop to open a browser on (else webbrowser may start a text browser here)."""
    import os

    return sys.platform in ("win32", "darwin") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def _free_port(wanted: int) -> int:
    """``wanted`` if nothing listens there, else any free port: the demo must just start."""
    import socket

    for port in (wanted, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    return wanted


def demo_faults(n_samples: int) -> tuple[str, ...]:
    """The demo's faults, placed by the run's length so any --samples works."""
    from asnmon.simulate import SimConfig, plan_run

    plan = plan_run(SimConfig(n_samples=n_samples))
    samples = [p.position for p in plan if p.sample.sample_type.value == "sample"]
    return (
        f"is-drift:{max(14, int(len(plan) * 0.45))}:2.5",
        "over-curve",
        "depleted",
        f"truncated:{samples[len(samples) // 5]}",  # clear of over-curve (1/3), depleted (1/2)
        f"junk:{samples[(4 * len(samples)) // 5]}",
    )


def cmd_demo(args: argparse.Namespace) -> int:
    import signal
    import threading

    from asnmon.assay import load_assay
    from asnmon.monitor import Monitor
    from asnmon.settings import Settings
    from asnmon.simulate import apply_faults, simulate_run
    from asnmon.store import Store

    # The database outlives the demo (a newcomer's next step is `asnmon report` or
    # `asnmon dashboard` on it); only the simulated mzML files are temporary.
    db = (
        Path(args.db)
        if args.db
        else Path(tempfile.mkdtemp(prefix="asnmon-demo-db-")) / "demo.duckdb"
    )
    with tempfile.TemporaryDirectory(prefix="asnmon-demo-") as tmp:
        folder = Path(tmp) / "demo-run"
        folder.mkdir()
        faults = demo_faults(args.samples)
        try:
            config = apply_faults(_sim_config(args, n_samples=args.samples), faults)
        except ValueError as err:
            print(f"asnmon demo: {err}", file=sys.stderr)
            return 2
        # max_write 20 s: a file that stops growing without its closing tag (the
        # simulated truncated injection) shows up as INCOMPLETE while you watch.
        settings = Settings(
            folder=str(folder),
            db=str(db),
            settle=0.3,
            max_write=20.0,
            dashboard=not args.no_dashboard,
            port=_free_port(args.port),
        )
        monitor = Monitor(settings, load_assay())
        done = threading.Event()
        stopping = threading.Event()
        asked_to_stop = threading.Event()

        def instrument() -> None:
            try:
                simulate_run(
                    folder,
                    config,
                    interval=args.interval,
                    write_seconds=min(0.5, args.interval / 2),
                    stop=stopping,
                )
            finally:  # a failed instrument must not leave --exit-when-done waiting forever
                done.set()

        def on_signal(signum: int, frame: object) -> None:
            asked_to_stop.set()

        # SIGTERM (systemd, docker stop, CI) stops the demo as cleanly as Ctrl-C does.
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        print(
            f"demo: a simulated instrument writes {args.samples} samples into {folder}\n"
            f"faults: {', '.join(faults)}; Ctrl-C stops"
        )
        try:
            monitor.start()
            if monitor.dashboard_url and not args.no_browser and _has_display():
                import webbrowser

                webbrowser.open(monitor.dashboard_url)
            writer = threading.Thread(target=instrument, name="asnmon-demo-instrument", daemon=True)
            writer.start()
            while not asked_to_stop.wait(0.2):
                if args.exit_when_done and done.is_set() and monitor.idle():
                    break
            if asked_to_stop.is_set():
                print("\nstopping: finishing the current file ...", flush=True)
        finally:
            stopping.set()
            if "writer" in locals():
                writer.join(5)
            monitor.stop()
            for s, h in previous.items():
                signal.signal(s, h)
        with Store(db, read_only=True) as store:
            _summary(store, "demo-run", [])
    print(
        "the simulated mzML files were removed; the database is kept. Next:\n"
        f"  asnmon report demo-run --db {db}\n"
        f"  asnmon dashboard --db {db}\n"
        "stopped cleanly",
        flush=True,
    )
    return 0


COMMANDS = {
    "run": cmd_run,
    "init": cmd_init,
    "check": cmd_check,
    "backup": cmd_backup,
    "archive": cmd_archive,
    "ingest": cmd_ingest,
    "export": cmd_export,
    "simulate": cmd_simulate,
    "check-assay": cmd_check_assay,
    "demo": cmd_demo,
    "report": cmd_report,
    "dashboard": cmd_dashboard,
}


def main(argv: Sequence[str] | None = None) -> int:
    from asnmon.errors import AsnmonError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command](args)
    except AsnmonError as err:
        print(f"asnmon {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
