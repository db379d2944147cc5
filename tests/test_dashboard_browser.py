"""The dashboard in real headless Chromium, served by our own server (as in production).

Selenium is driven directly rather than through dash[testing]'s ``dash_duo``:
its Chromium options hook must live in conftest.py, and serving through
``dashboard.server.serve`` tests the real waitress path as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from helpers import BROWSER_MARKS, chromium, page_text, wait_on

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.simulate import Faults, SimConfig, plan_run, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
WAIT = 15.0

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Iterator[dict]:
    """A simulated run ingested except its last file: a short injection (IS at ~30 %)."""
    from dashboard.app import create_app
    from dashboard.server import serve

    tmp = tmp_path_factory.mktemp("dash")
    n = len(plan_run(SimConfig(n_samples=6)))
    config = replace(SimConfig(n_samples=6), faults=Faults(short_injection=n))
    sim = simulate_run(tmp / "run", config)
    store = Store(tmp / "db.duckdb")
    ingestor = RunIngestor(
        store,
        assay,
        RunInfo("run", "run", folder=str(sim.out_dir), planned=len(sim.injections)),
        worklist=load_worklist(sim.worklist_path),
    )
    ingest_paths(ingestor, sim.paths[:-1])
    server = serve(create_app(store, assay, refresh_ms=500), port=0)
    yield {"store": store, "ingestor": ingestor, "last": sim.paths[-1], "url": server.url}
    server.stop()
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium(1920, 1600) as driver:
        yield driver


def _wait(driver: object, condition: object, timeout: float = WAIT) -> object:
    # A live page re-renders under the test: a stale element is "not yet", not a failure.
    return wait_on(driver, condition, timeout)


def _click(driver: object, css: str) -> bool:
    """Click the element now on the page (the live table may have been redrawn)."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()  # type: ignore[attr-defined]
    return True


def test_live_page_flags_new_is_drop_and_opens_chromatograms(live: dict, browser: object) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(live["url"])  # type: ignore[attr-defined]
    _wait(driver, lambda d: "INJECTIONS" in page_text(d, "#banner").upper())
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.inj-row")) > 5)
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#is-plot .scatterlayer .point"))
    SHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SHOTS / "dashboard-main.png"))  # type: ignore[attr-defined]
    before = str(_wait(driver, lambda d: page_text(d, "#banner")))

    # the short injection arrives while the page is open
    report = live["ingestor"].ingest(live["last"])
    live["ingestor"].flush()
    codes = live["store"].flags("run").filter(pl.col("injection_id") == report.injection_id)
    assert "IS_LOW" in codes["code"].to_list()
    _wait(driver, lambda d: "IS_LOW" in page_text(d, "tr.inj-row:first-child"), timeout=5)
    _wait(driver, lambda d: "✖ 1" in page_text(d, "#banner"), timeout=5)
    # an unacknowledged FAIL flag turns the banner to FAIL whatever the run verdict
    _wait(driver, lambda d: "FAIL" in page_text(d, ".verdict"), timeout=5)
    _wait(driver, lambda d: "IS_LOW" in page_text(d, "#headline"))  # the headline names it
    _wait(driver, lambda d: page_text(d, "#banner") != before)

    # clicking an injection shows its traces beside the reference calibrator
    _wait(driver, lambda d: _click(d, "tr.inj-row:first-child"))
    _wait(driver, lambda d: "Asn quantifier" in page_text(d, "#chrom"))
    _wait(driver, lambda d: "reference" in page_text(d, "#chrom"))
    driver.save_screenshot(str(SHOTS / "dashboard-selected.png"))  # type: ignore[attr-defined]


def test_acknowledging_a_flag_records_it(live: dict, browser: object) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(live["url"])  # type: ignore[attr-defined]
    button = _wait(
        driver, lambda d: (d.find_elements(By.CSS_SELECTOR, ".flag-card .ack-btn") or [None])[0]
    )
    flag_id = int(
        button.get_attribute("id").split('"flag":')[1].split(",")[0].split("}")[0]  # type: ignore[attr-defined]
    )
    assert not driver.find_elements(By.ID, "ack-name")  # type: ignore[attr-defined]  # no typed names
    assert "single bench, no accounts" in page_text(driver, "#who")
    card = f'"flag":{flag_id},'

    def cards(d: object) -> list[str]:
        return [
            b.get_attribute("id")
            for b in d.find_elements(By.CSS_SELECTOR, ".flag-card .ack-btn")  # type: ignore[attr-defined]
        ]

    assert any(card in c for c in cards(driver))
    driver.find_element(By.ID, "ack-comment").send_keys("re-injection queued")  # type: ignore[attr-defined]
    button_id = button.get_attribute("id")  # type: ignore[attr-defined]

    def click_it(d: object) -> bool:
        # found again and clicked in one go: a refresh tick may have redrawn the card
        found = [
            b
            for b in d.find_elements(By.CSS_SELECTOR, ".flag-card .ack-btn")  # type: ignore[attr-defined]
            if b.get_attribute("id") == button_id
        ]
        if not found:
            return False
        found[0].click()
        return True

    _wait(driver, click_it)
    _wait(driver, lambda d: "acknowledged by bench (no accounts)" in page_text(d, "#ack-result"))
    acks = live["store"].acknowledgements(flag_id)
    assert acks["by_name"].to_list() == ["bench (no accounts)"]
    assert acks["comment"].to_list() == ["re-injection queued"]
    # the acknowledged card leaves the open flags; "show acknowledged" brings it back
    _wait(driver, lambda d: not any(card in c for c in cards(d)))
    driver.find_element(By.CSS_SELECTOR, "#show-acked input").click()  # type: ignore[attr-defined]
    # the card may hold a group: every member is acknowledged, the tag counts them
    _wait(driver, lambda d: "✓ acknowledged ×" in page_text(d, "#flag-list"))
    driver.find_element(By.CSS_SELECTOR, "#show-acked input").click()  # type: ignore[attr-defined]
    if live["store"].runs()["verdict"][0] != "fail":  # the alarm ends once acknowledged
        _wait(driver, lambda d: "FAIL" not in page_text(d, ".verdict"))


def _ack_ids(driver: object) -> str:
    from selenium.webdriver.common.by import By

    buttons = driver.find_elements(By.CSS_SELECTOR, ".ack-btn")  # type: ignore[attr-defined]
    return " ".join(b.get_attribute("id") or "" for b in buttons)


def test_kiosk_view_shows_banner_and_run_plots_only(live: dict, browser: object) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(live["url"] + "?kiosk=1")  # type: ignore[attr-defined]
    _wait(driver, lambda d: "kiosk" in d.find_element(By.ID, "root").get_attribute("class"))
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#asn-plot .scatterlayer .point"))
    assert not driver.find_element(By.ID, "injections").is_displayed()  # type: ignore[attr-defined]
    assert not driver.find_element(By.ID, "run").is_displayed()  # type: ignore[attr-defined]
    SHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SHOTS / "dashboard-kiosk.png"))  # type: ignore[attr-defined]
