"""Reference readers that the reader's speed is judged against.

``floor_read`` does the least work that can get chromatogram arrays out of an
mzML file (lxml iterparse + base64 + zlib + numpy, no checks, no metadata): no
real reader can beat it, so "x times the floor" is a fair yardstick.
``pyteomics_read`` is the library the issue measured, handed the PSI-MS
vocabulary once (it reloads it per file otherwise, ~70-95 ms).

    python benchmarks/baselines.py FILE.mzML [FILE ...] [--repeat N]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from lxml import etree

Arrays = list[tuple[np.ndarray, np.ndarray]]

_DTYPE = {"MS:1000521": "<f4", "MS:1000523": "<f8", "MS:1000519": "<i4", "MS:1000522": "<i8"}


def floor_read(path: Path | str) -> Arrays:
    """(time, intensity) of every chromatogram, decoded and nothing else."""
    out: Arrays = []
    for _, el in etree.iterparse(str(path), tag="{*}chromatogram", resolve_entities=False,
                                 no_network=True, huge_tree=True):  # fmt: skip
        arrays: list[np.ndarray] = []
        for bda in el.iterfind("{*}binaryDataArrayList/{*}binaryDataArray"):
            dtype, zipped = "<f8", False
            for cv in bda.iterfind("{*}cvParam"):
                acc = cv.get("accession")
                if acc in _DTYPE:
                    dtype = _DTYPE[acc]
                elif acc == "MS:1000574":
                    zipped = True
            raw = base64.b64decode(bda.findtext("{*}binary") or "")
            arrays.append(np.frombuffer(zlib.decompress(raw) if zipped else raw, dtype=dtype))
        if len(arrays) >= 2:
            out.append((arrays[0], arrays[1]))
        el.clear()
    return out


@cache
def _cv() -> Any:
    """The PSI-MS vocabulary bundled with psims, loaded once per process (no network)."""
    from psims.controlled_vocabulary.controlled_vocabulary import load_psims

    return load_psims()


def pyteomics_read(path: Path | str) -> Arrays:
    """(time, intensity) of every chromatogram through pyteomics, vocabulary handed once."""
    from pyteomics import mzml

    with mzml.MzML(str(path), use_index=False, cv=_cv()) as reader:
        return [(c["time array"], c["intensity array"]) for c in reader.iterfind("chromatogram")
                if "time array" in c and "intensity array" in c]  # fmt: skip


def _asnmon_read(path: Path | str) -> object:
    from asnmon.mzml import read_file

    return read_file(path)


def median_ms(func: Callable[[Path], object], paths: list[Path], repeat: int) -> float:
    """Median wall time per file in ms, after one warm-up pass."""
    for p in paths:
        func(p)
    times = []
    for _ in range(repeat):
        for p in paths:
            t0 = time.perf_counter()
            func(p)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    readers: dict[str, Callable[[Path], object]] = {
        "floor (lxml+zlib)": floor_read,
        "pyteomics (cv once)": pyteomics_read,
        "asnmon.mzml.read_file": _asnmon_read,
    }
    _cv()  # load the vocabulary outside the timings, as a long-running monitor would
    floor = None
    for name, func in readers.items():
        ms = median_ms(func, args.files, args.repeat)
        floor = floor or ms
        print(f"{name:24s} {ms:8.2f} ms/file  ({ms / floor:4.1f}x floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
