"""Writing a run to a folder: the worklist and the ground truth first, then each file in time."""

from __future__ import annotations

import csv
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from asnmon.simulate.acquire import true_signal
from asnmon.simulate.config import TRUTH_HEADER, WORKLIST_HEADER, SimConfig
from asnmon.simulate.plan import PlannedInjection, plan_run
from asnmon.simulate.writer import render_mzml


@dataclass(frozen=True, slots=True)
class SimulatedRun:
    out_dir: Path
    paths: tuple[Path, ...]  # files written, in acquisition order
    worklist_path: Path
    truth_path: Path
    injections: tuple[PlannedInjection, ...]
    seconds: float  # wall time spent writing


def _write_progressively(
    path: Path, data: bytes, write_seconds: float, stop: threading.Event | None = None
) -> None:
    """Write ``data`` to its final name in chunks over ``write_seconds``, as an instrument does."""
    if write_seconds <= 0:
        path.write_bytes(data)
        return
    n_chunks = max(2, min(20, int(write_seconds / 0.05)))
    bounds = np.linspace(0, len(data), n_chunks + 1).astype(int)
    pause = write_seconds / n_chunks
    with path.open("wb") as fh:
        for a, b in itertools.pairwise(bounds):
            fh.write(data[a:b])
            fh.flush()
            os.fsync(fh.fileno())
            if b < len(data):
                if stop is not None:
                    stop.wait(pause)
                else:
                    time.sleep(pause)


def injection_bytes(
    inj: PlannedInjection, config: SimConfig, *, started_at: str | None = None
) -> bytes:
    """What the instrument leaves on disk for this injection, faults included."""
    if inj.output == "junk":
        rng = np.random.default_rng((config.seed, inj.position, 1))
        return rng.bytes(48_000)
    data = render_mzml(inj, config, started_at=started_at)
    if inj.output == "truncated":
        return data[: int(len(data) * 0.6)]
    return data


def write_injection(
    planned: PlannedInjection,
    path: Path,
    config: SimConfig | None = None,
    *,
    write_seconds: float = 0.0,
    started_at: str | None = None,
    stop: threading.Event | None = None,
) -> Path:
    """Write one injection's file (rendered in memory first, then streamed to ``path``)."""
    data = injection_bytes(planned, config or SimConfig(), started_at=started_at)
    _write_progressively(path, data, write_seconds, stop)
    return path


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_worklist(planned: Iterable[PlannedInjection], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(WORKLIST_HEADER)
        for p in planned:
            s = p.sample
            out.writerow(
                [
                    _fmt(v)
                    for v in (
                        s.file,
                        s.sample_id,
                        s.sample_type.value,
                        s.level,
                        s.nominal,
                        s.matrix,
                        s.dilution,
                        s.normalizer,
                        s.normalizer_unit,
                        s.volume_ul,
                        s.group,
                    )
                ]
            )
    return path


def write_ground_truth(
    planned: Iterable[PlannedInjection], path: Path, config: SimConfig | None = None
) -> Path:
    """One row per injection: what went into the vial, the faults, and the rendered areas."""
    config = config or SimConfig()
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(TRUTH_HEADER)
        for p in planned:
            truth = true_signal(p, config)
            ratio = truth.area_ratio
            out.writerow(
                [
                    p.stem,
                    p.sample.sample_id,
                    f"{p.true_conc_vial:.6g}",
                    f"{p.true_conc:.6g}",
                    f"{p.is_factor:.6g}",
                    f"{p.rt_shift:.6g}",
                    ";".join(p.faults),
                    f"{truth.analyte_area:.8g}",
                    f"{truth.is_area:.8g}",
                    "" if ratio is None else f"{ratio:.8g}",
                    config.mode,
                    ";".join(config.scenarios),
                    truth.points_across,
                    f"{truth.is_window_end:.5f}",
                    f"{truth.is_end_pct:.3g}",
                    f"{truth.qual_window_start:.5f}",
                    f"{truth.qual_start_pct:.3g}",
                ]
            )
    return path


def simulate_run(
    out_dir: Path,
    config: SimConfig,
    *,
    interval: float = 0.0,
    write_seconds: float = 0.0,
    progress: bool = False,
    on_written: Callable[[Path], None] | None = None,
    stop: threading.Event | None = None,
) -> SimulatedRun:
    """Write a whole run into ``out_dir``: worklist and ground truth first, then each file.

    ``interval`` is the time from one injection's start to the next; each file
    takes ``write_seconds`` to appear. With pacing, startTimeStamps are the wall
    clock; without, they derive from ``config``. ``stop`` ends the run early.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    planned = plan_run(config)
    worklist = write_worklist(planned, out_dir / "worklist.csv")
    truth = write_ground_truth(planned, out_dir / "truth.csv", config)
    paced = interval > 0 or write_seconds > 0
    files: list[Path] = []
    began = time.monotonic()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(planned), unit="inj", desc="simulating")
    try:
        for k, inj in enumerate(planned):
            if stop is not None and stop.is_set():
                break
            wait = began + k * interval - time.monotonic()
            if wait > 0:
                if stop is not None:
                    if stop.wait(wait):
                        break
                else:
                    time.sleep(wait)
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if paced else None
            path = write_injection(
                inj,
                out_dir / f"{inj.stem}.mzML",
                config,
                write_seconds=write_seconds,
                started_at=stamp,
                stop=stop,
            )
            files.append(path)
            if on_written is not None:
                on_written(path)
            if bar is not None:
                bar.update()
    finally:
        if bar is not None:
            bar.close()
    return SimulatedRun(
        out_dir=out_dir,
        paths=tuple(files),
        worklist_path=worklist,
        truth_path=truth,
        injections=tuple(planned),
        seconds=time.monotonic() - began,
    )
