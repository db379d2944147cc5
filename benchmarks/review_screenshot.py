"""Render docs/review-reintegration.png: a calibrator reintegrated by a reviewer, as the
dashboard's chromatogram pane shows it (manual bounds beside the automatic ones).

A simulated run is ingested into a temporary database; a calibrator's peak group
is reintegrated through the same call the review panel makes (its tail cut where
the reviewer would stop it), then the page is opened in headless Chromium, the
calibrator selected and the page saved. Needs chromium and chromedriver.

    python benchmarks/review_screenshot.py [--out docs/review-reintegration.png]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# run as a script, this folder comes first on sys.path and its dashboard.py (the dashboard
# benchmark) would shadow the dashboard package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import polars as pl  # noqa: E402

from asnmon.assay import load_assay  # noqa: E402
from asnmon.pipeline import RunIngestor, ingest_paths  # noqa: E402
from asnmon.review import Person  # noqa: E402
from asnmon.review_actions import reintegrate_injection  # noqa: E402
from asnmon.simulate import SimConfig, simulate_run  # noqa: E402
from asnmon.store import RunInfo, Store  # noqa: E402
from asnmon.worklist import load_worklist  # noqa: E402

ROOT = HERE.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "review-reintegration.png")
    args = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from dashboard.app import create_app
    from dashboard.server import serve

    assay = load_assay()
    tmp = Path(tempfile.mkdtemp(prefix="asnmon-review-"))
    try:
        sim = simulate_run(tmp / "run", SimConfig(n_samples=6, seed=21))
        store = Store(tmp / "db.duckdb")
        wl = load_worklist(sim.worklist_path)
        info = RunInfo("run", "run", planned=len(sim.injections))
        ingest_paths(RunIngestor(store, assay, info, wl), sim.paths)
        cals = store.results("run").filter(pl.col("sample_type") == "calibrator")
        cal = cals.sort("position").row(cals.height // 2, named=True)
        iid = int(cal["injection_id"])
        p = store.peaks(iid).filter(pl.col("role") == "analyte_quant").row(0, named=True)
        reintegrate_injection(
            store,
            assay,
            Person("Ana Reviewer", "reviewer"),
            iid,
            p["start_rt"],
            p["apex_rt"] + 1.5 * p["fwhm"],  # the tail stopped where the signal meets noise
            reason="peak tail cut too early",
            comment="tail integrated into the noise",
        )
        server = serve(create_app(store, assay, refresh_ms=1000), port=0)
        options = webdriver.ChromeOptions()
        for a in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1920,1900"):
            options.add_argument(a)
        options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
        driver = webdriver.Chrome(
            service=Service(shutil.which("chromedriver") or ""), options=options
        )
        try:
            driver.get(server.url)
            wait = WebDriverWait(driver, 30, poll_frequency=0.2)
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.inj-row")) > 5)
            name = str(cal["sample_id"])
            while not any(
                name in r.text for r in driver.find_elements(By.CSS_SELECTOR, "tr.inj-row")
            ):
                label = driver.find_element(By.ID, "page-label").text
                driver.find_element(By.ID, "page-older").click()
                wait.until(lambda d, was=label: d.find_element(By.ID, "page-label").text != was)
            next(
                r for r in driver.find_elements(By.CSS_SELECTOR, "tr.inj-row") if name in r.text
            ).click()
            wait.until(lambda d: "automatic:" in d.find_element(By.ID, "chrom").text)
            time.sleep(1.0)  # let Plotly finish drawing
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.find_element(By.CSS_SELECTOR, ".chrom-pane").screenshot(str(args.out))
        finally:
            driver.quit()
            server.stop()
            store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
