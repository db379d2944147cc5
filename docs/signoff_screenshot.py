"""Make docs/signoff.png: the Sign-off & audit tab of a reviewed and approved run.

    python docs/signoff_screenshot.py [OUT.png]

A simulated run (with a short last injection: IS_LOW) is ingested into a
temporary database, two flags are acknowledged, a reviewer and a different
approver sign, and headless Chromium (chromium + chromedriver on PATH, as
for the browser tests) logs in as the approver and photographs the tab.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from asnmon.assay import load_assay
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.simulate import Faults, SimConfig, plan_run, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.users import Actor, cli_actor
from asnmon.worklist import load_worklist

HERE = Path(__file__).resolve().parent


def build(tmp: Path) -> Store:
    assay = load_assay(None)
    n = len(plan_run(SimConfig(n_samples=4)))
    sim = simulate_run(
        tmp / "run", replace(SimConfig(n_samples=4), faults=Faults(short_injection=n))
    )
    store = Store(tmp / "lab.duckdb")
    ingestor = RunIngestor(
        store,
        assay,
        RunInfo("2026-05-06_seq42", "2026-05-06_seq42", folder=str(sim.out_dir), planned=n),
        worklist=load_worklist(sim.worklist_path),
    )
    ingest_paths(ingestor, sim.paths)
    ingestor.flush()
    admin = cli_actor("labadmin")
    store.add_user("A. Analyst", "analyst", "analyst-pass-1", actor=admin)
    store.add_user("R. Reviewer", "reviewer", "reviewer-pass-1", actor=admin)
    store.add_user("P. Approver", "approver", "approver-pass-1", actor=admin)
    flags = [int(f) for f in store.flags("2026-05-06_seq42")["flag_id"]]
    store.acknowledge_many(
        flags, Actor("A. Analyst", "analyst"), "short injection: re-injected as position 14"
    )
    for name, meaning in (("R. Reviewer", "reviewed"), ("P. Approver", "approved")):
        password = name.split()[1].lower() + "-pass-1"
        store.sign_run("2026-05-06_seq42", name=name, password=password, meaning=meaning)
    return store


def shoot(url: str, out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--no-sandbox", "--headless", "--disable-gpu", "--window-size=1500,1900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)
    wait = WebDriverWait(driver, 30, poll_frequency=0.2)
    try:
        driver.get(url + "login")
        driver.find_element(By.ID, "login-name").send_keys("P. Approver")
        driver.find_element(By.ID, "login-password").send_keys("approver-pass-1")
        driver.find_element(By.ID, "login-submit").click()
        wait.until(lambda d: "P. Approver" in d.find_element(By.ID, "who").text)
        tab = wait.until(
            lambda d: next(
                (t for t in d.find_elements(By.CSS_SELECTOR, ".tab") if "Sign-off" in t.text),
                None,
            )
        )
        tab.click()
        wait.until(lambda d: "APPROVED" in d.find_element(By.ID, "signoff-state").text)
        wait.until(lambda d: "acknowledge" in d.find_element(By.ID, "audit-run").text)
        pane = driver.find_element(By.CSS_SELECTOR, ".tabs-pane")
        driver.execute_script("arguments[0].scrollIntoView(true);", pane)
        pane.screenshot(str(out))
    finally:
        driver.quit()


def main(argv: list[str]) -> int:
    from dashboard.app import create_app
    from dashboard.server import serve

    out = Path(argv[1]) if len(argv) > 1 else HERE / "signoff.png"
    with tempfile.TemporaryDirectory() as tmp:
        store = build(Path(tmp))
        server = serve(create_app(store, load_assay(None), refresh_ms=1000), port=0)
        try:
            shoot(server.url, out)
        finally:
            server.stop()
            store.close()
    print(f"screenshot -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
