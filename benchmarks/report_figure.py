"""Render docs/report_*.png: pages of a real run's report, printed as a lab prints it.

Two simulated runs (an earlier one for the Levey-Jennings history, then one
with an IS drift and an over-curve sample) are ingested into a fresh DuckDB
file; a reviewer acknowledges a flag and signs, an approver approves; the
report is written and printed to PDF by headless Chromium (``asnmon report
--pdf``), and chosen pages are rendered with PDFium (pypdfium2, in the test
extra) into PNG files.

    python benchmarks/report_figure.py [--out docs] [--keep DIR]
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import pypdfium2 as pdfium  # noqa: E402
from pypdf import PdfReader  # noqa: E402

from asnmon.assay import load_assay  # noqa: E402
from asnmon.cli import main as asnmon  # noqa: E402
from asnmon.pipeline import RunIngestor, ingest_paths  # noqa: E402
from asnmon.simulate import SimConfig, simulate_run  # noqa: E402
from asnmon.simulate.config import apply_faults  # noqa: E402
from asnmon.store import RunInfo, Store  # noqa: E402
from asnmon.worklist import load_worklist  # noqa: E402

# (file name, text that identifies the page)
PAGES = (
    ("report_results.png", "Results: every injection"),
    ("report_calibration.png", "Calibration v"),
    ("report_qc.png", "Levey-Jennings"),
    ("report_signatures.png", "Signatures"),
)


def write_png(rgb: np.ndarray, path: Path) -> None:
    """An 8-bit RGB PNG from an (h, w, 3) array; no imaging library needed."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def build(folder: Path) -> Path:
    """The database: two runs, one acknowledgement, a review and an approval."""
    assay = load_assay()
    db = folder / "lab.duckdb"
    runs = (
        ("2024-05-06_seq41", SimConfig(n_samples=12, seed=2)),
        (
            "2024-05-07_seq42",
            apply_faults(SimConfig(n_samples=20, seed=5), ["is-drift:30:2.0", "over-curve"]),
        ),
    )
    with Store(db) as store:
        for name, config in runs:
            sim = simulate_run(folder / name, config)
            ingestor = RunIngestor(
                store, assay, RunInfo(name, name), load_worklist(sim.worklist_path)
            )
            ingest_paths(ingestor, sorted((folder / name).glob("*.mzML")))
        target = runs[-1][0]
        fails = store.flags(target).filter(store.flags(target)["severity"] == "fail")
        comment = "IS drift seen; samples re-injected in seq43"
        if not hasattr(store, "sign_run"):  # a store without accounts and sign-off
            for flag_id in fails["flag_id"].to_list()[:2]:
                store.acknowledge(int(flag_id), "r.chen", comment)
            return db
        from asnmon.users import cli_actor

        admin = cli_actor("lab-admin")
        store.add_user("r.chen", "reviewer", "correct horse 1", actor=admin)
        store.add_user("m.okafor", "approver", "battery staple 2", actor=admin)
        reviewer = store.authenticate("r.chen", "correct horse 1")
        for flag_id in fails["flag_id"].to_list()[:2]:
            store.acknowledge(int(flag_id), reviewer, comment)
        store.sign_run(target, name="r.chen", password="correct horse 1", meaning="reviewed")
        store.sign_run(target, name="m.okafor", password="battery staple 2", meaning="approved")
    return db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=_HERE.parent / "docs")
    parser.add_argument("--keep", type=Path, help="keep the database, HTML and PDF here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="asnmon-report-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db = build(folder)
        html = folder / "report.html"
        start = time.perf_counter()
        code = asnmon(["report", "2024-05-07_seq42", "--db", str(db), "--out", str(html), "--pdf"])
        if code:
            return code
        took = time.perf_counter() - start
        pdf = html.with_suffix(".pdf")
        texts = [p.extract_text() for p in PdfReader(pdf).pages]
        print(f"{len(texts)} pages, {pdf.stat().st_size / 1e6:.1f} MB, written in {took:.1f} s")
        doc = pdfium.PdfDocument(pdf)
        args.out.mkdir(parents=True, exist_ok=True)
        for name, needle in PAGES:
            page = next(i for i, t in enumerate(texts) if needle in t)
            rgb = doc[page].render(scale=1.4, rev_byteorder=True).to_numpy()[:, :, :3]
            write_png(np.ascontiguousarray(rgb), args.out / name)
            print(f"page {page + 1} -> {args.out / name}")
        doc.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
