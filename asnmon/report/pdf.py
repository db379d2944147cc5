"""Print the report to PDF with headless Chromium, as a person's Ctrl-P would.

Chromium, not a PDF library: the report's figures are drawn by plotly.js, so
only a browser renders them exactly as the screen shows them. Chromium runs
with a throw-away profile (several may print at once), without its own
header/footer (it would print the file's path; the report has its own footer),
and with a virtual-time budget so plotly has drawn before the page is printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from asnmon.errors import AsnmonError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
RENDER_BUDGET_MS = 30_000  # virtual time for scripts to finish drawing (plotly: < 1 s each)
TIMEOUT_S = 300.0  # a report with a chromatogram page per injection takes longest


def find_chromium(explicit: str | None = None) -> str | None:
    """The browser to print with: ``explicit`` if given, else the first on PATH."""
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def print_pdf(
    html_path: Path, pdf_path: Path, *, browser: str | None = None, timeout: float = TIMEOUT_S
) -> Path:
    """Render ``html_path`` to ``pdf_path``; AsnmonError saying what to install or what failed."""
    exe = find_chromium(browser)
    if exe is None:
        raise AsnmonError(
            "no Chromium found to print the PDF: install it (Debian: apt-get install "
            "chromium) or open the HTML report in a browser and print it (Ctrl-P)"
        )
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path).resolve()
    pdf_path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="asnmon-print-") as profile:
        args = [
            exe,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--virtual-time-budget={RENDER_BUDGET_MS}",
            f"--print-to-pdf={pdf_path}",
            html_path.as_uri(),
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to start as root with its sandbox
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise AsnmonError(
                f"Chromium did not finish printing {html_path.name} in {timeout:g} s"
            ) from exc
    if done.returncode != 0 or not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise AsnmonError(
            f"Chromium could not print {html_path.name} (exit {done.returncode}): "
            + (" / ".join(tail) or "no error output")
        )
    return pdf_path
