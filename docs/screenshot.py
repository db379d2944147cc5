"""Regenerate the README's dashboard screenshots from a real headless Chromium session.

    python docs/screenshot.py            # docs/dashboard.png and docs/kiosk.png
    python docs/screenshot.py --upto 70  # stop the run at another injection

A demo run (the demo's faults: the IS falling 2.5 % per injection from about
injection 43, an over-curve sample, a depleted plasma, a truncated and a junk
file) is simulated, its first ``--upto`` files go through the real pipeline
into a real DuckDB file, and the dashboard is served by our own server, as
``asnmon run`` serves it. Needs chromium and chromedriver on PATH.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _driver(width: int, height: int):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--no-sandbox", "--headless", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)


def _wait(driver, condition, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
    ).until(condition)


def main(argv: list[str] | None = None) -> int:
    from asnmon.assay import load_assay
    from asnmon.cli.simulation import demo_faults
    from asnmon.pipeline import RunIngestor, ingest_paths
    from asnmon.simulate import SimConfig, apply_faults, simulate_run
    from asnmon.store import RunInfo, Store
    from asnmon.worklist import load_worklist
    from dashboard.app import create_app
    from dashboard.server import serve

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--samples", type=int, default=60, help="study samples (the demo's 60)")
    ap.add_argument("--upto", type=int, default=66, help="files ingested before the shot")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for the PNG files")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)  # Chrome's save_screenshot fails silently
    if not (
        shutil.which("chromedriver")
        and (shutil.which("chromium") or shutil.which("chromium-browser"))
    ):
        print("needs chromium and chromedriver on PATH", file=sys.stderr)
        return 2
    from selenium.webdriver.common.by import By

    assay = load_assay()
    with tempfile.TemporaryDirectory(prefix="asnmon-shot-") as tmp:
        config = apply_faults(SimConfig(n_samples=args.samples), demo_faults(args.samples))
        sim = simulate_run(Path(tmp) / "run", config)
        with Store(Path(tmp) / "shot.duckdb") as store:
            ingestor = RunIngestor(
                store,
                assay,
                RunInfo("demo-run", "demo-run", folder=str(sim.out_dir), planned=len(sim.paths)),
                worklist=load_worklist(sim.worklist_path),
            )
            ingest_paths(ingestor, sim.paths[: args.upto])
            # What a running monitor's heartbeat says mid-run (asnmon.heartbeat keys): the
            # tile then reads as it does at 3 a.m., with the run's own pace.
            now = time.time()
            store.set_status(
                {
                    "watcher": "watching",
                    "queue": 0,
                    "pending": 0,
                    "last_error": None,
                    "updated": now,
                    "heartbeat_every": 10.0,
                    "median_interval": config.injection_minutes * 60.0,
                    # the shot's last file, on the simulated run's own clock (its
                    # startTimeStamp + the run time), as the tile and the table agree
                    "last_file_at": (
                        datetime.fromisoformat(config.start_time.replace("Z", "+00:00"))
                        + timedelta(
                            minutes=config.injection_minutes * (args.upto - 1) + config.run_minutes
                        )
                    ).timestamp(),
                    "instrument": "acquiring",
                }
            )
            with serve(create_app(store, assay, refresh_ms=1000), port=0) as server:
                driver = _driver(1920, 2300)
                try:
                    driver.get(server.url)
                    _wait(driver, lambda d: d.find_elements(By.ID, "headline"))
                    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".flag-card"))
                    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#asn-plot .point"))
                    # open the first row's chromatograms, as a scientist would
                    driver.find_element(By.CSS_SELECTOR, "tr.inj-row").click()
                    _wait(driver, lambda d: "Asn quantifier" in d.find_element(By.ID, "chrom").text)
                    time.sleep(1.0)  # let Plotly finish its transitions
                    full = args.out / "dashboard.png"
                    driver.save_screenshot(str(full))
                    driver.set_window_size(1920, 1080)
                    driver.get(server.url + "?kiosk=1")
                    _wait(
                        driver,
                        lambda d: "kiosk" in d.find_element(By.ID, "root").get_attribute("class"),
                    )
                    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#asn-plot .point"))
                    time.sleep(1.0)
                    kiosk = args.out / "kiosk.png"
                    driver.save_screenshot(str(kiosk))
                finally:
                    driver.quit()
    missing = [p for p in (full, kiosk) if not p.is_file()]
    if missing:
        print(f"not written: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    print(f"wrote {full} and {kiosk}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
