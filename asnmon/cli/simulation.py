"""`asnmon simulate`, `demo`: a simulated instrument, for trying and testing asnmon."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from asnmon.cli.common import Subcommands, print_summary


def register(sub: Subcommands) -> None:
    """The simulator and the demo."""
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
    p.set_defaults(func=cmd_simulate)

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
    p.set_defaults(func=cmd_demo)


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
        # the RT moves 0.2 min late near the end: the scheduled windows stay, so they cut
        # the peaks' tails from there on (PEAK_TRUNCATED only where that happens)
        f"rt-step:{max(15, int(len(plan) * 0.85))}:0.2",
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
            print_summary(store, "demo-run", [])
    print(
        "the simulated mzML files were removed; the database is kept. Next:\n"
        f"  asnmon report demo-run --db {db}\n"
        f"  asnmon dashboard --db {db}\n"
        "stopped cleanly",
        flush=True,
    )
    return 0
