"""Render docs/integration_group.png: one peak group of a real file, as the dashboard shows it.

The negative-mode asparagine file in ``../shared/realdata`` (asn 131>114, 131>95,
13C4-Asn 135>118) goes through the real pipeline (``process_file``) with the
test assay ``tests/data/asn_negative_mrm.toml``; the dashboard's own figure
builder draws the group, and headless Chromium takes the picture.

    python benchmarks/group_figure.py [--realdata DIR] [--out docs/integration_group.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would
# shadow nothing here, but the project root must be importable for ``dashboard``.
_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent))

import polars as pl  # noqa: E402

from asnmon.assay import load_assay  # noqa: E402
from asnmon.pipeline import process_file  # noqa: E402
from asnmon.records import Outcome, Sample, SampleType  # noqa: E402
from dashboard import chromatogram  # noqa: E402

FILE = "smartpeak_misc/RawDataProcessor_mzML_1.mzML"


def frames(outcome: Outcome) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The three frames the dashboard reads from the store, built from one outcome."""
    traces = pl.DataFrame(
        {
            "transition": list(outcome.traces),
            "rt": [t.rt.tolist() for t in outcome.traces.values()],
            "intensity": [t.intensity.tolist() for t in outcome.traces.values()],
        }
    )
    rows = [
        {
            "transition": tid,
            "role": outcome.roles.get(tid),
            "apex_rt": p.apex_rt,
            "start_rt": p.start_rt,
            "end_rt": p.end_rt,
            "area": p.area,
            "sn": p.sn,
            "baseline_start": p.baseline_start,
            "baseline_end": p.baseline_end,
            "truncated": p.truncated,
        }
        for tid, p in outcome.peaks.items()
        if p is not None
    ]
    flags = pl.DataFrame(
        [
            {
                "code": f.code,
                "severity": f.severity.value,
                "value": f.value,
                "details": json.dumps(dict(f.details), default=str),
            }
            for f in outcome.flags
        ]
    )
    return traces, pl.DataFrame(rows), flags


def main() -> int:
    root = _HERE.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realdata", type=Path, default=root.parent / "shared" / "realdata")
    ap.add_argument("--out", type=Path, default=root / "docs" / "integration_group.png")
    args = ap.parse_args()
    path = args.realdata / FILE
    if not path.is_file():
        print(f"{path}: not found (the public real-data corpus, see tests/conftest.py)")
        return 2
    assay = load_assay(root / "tests" / "data" / "asn_negative_mrm.toml")
    sample = Sample(file=path.stem, sample_id="broth QC", sample_type=SampleType.SAMPLE)
    outcome = process_file(path, "-", sample, assay, None)
    traces, peaks, flags = frames(outcome)
    fig = chromatogram.chromatogram_figure([("real file", traces, peaks, flags)])
    for ax in ("xaxis", "xaxis2", "xaxis3"):
        fig.layout[ax].range = [0.6, 1.4]
    fig.update_layout(width=1500, height=430)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium not found: cannot render the PNG")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "group.html"
        fig.write_html(html, include_plotlyjs=True, config={"displayModeBar": False})
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1520,450",
                "--virtual-time-budget=5000",
                f"--screenshot={args.out.resolve()}",
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    g = outcome.peaks
    print(f"wrote {args.out}")
    for tid in ("asn_quant", "asn_qual", "is_quant"):
        p = g.get(tid)
        if p is not None:
            print(
                f"  {tid}: {p.start_rt:.3f}-{p.end_rt:.3f} min, area {p.area:.0f}, cut {p.cut_side}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
