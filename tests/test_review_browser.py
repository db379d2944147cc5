"""Reintegration and calibrator exclusion in real headless Chromium, as a reviewer does them.

The page is served by our own server over a real DuckDB file of an ingested
simulated run; the reviewer logs in (``/login``), selects a calibrator,
types new boundaries, chooses a reason and sees the result and the curve
version change; then excludes a calibrator and sees a new curve version in the
Calibration tab. Each step is checked in the database too. The screenshot the
README shows is taken here (``screenshots/review-reintegration.png``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from helpers import BROWSER_MARKS, chromium, page_text, wait_on

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.review import Person
from asnmon.simulate import SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
WAIT = 30.0  # generous: two cores shared by many test runs
PASSWORD = "correct horse battery"

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Iterator[dict]:
    from dashboard.app import create_app
    from dashboard.server import serve

    tmp = tmp_path_factory.mktemp("review")
    sim = simulate_run(tmp / "run", SimConfig(n_samples=6, seed=21))
    store = Store(tmp / "db.duckdb")
    ingestor = RunIngestor(
        store,
        assay,
        RunInfo("run", "run", planned=len(sim.injections)),
        worklist=load_worklist(sim.worklist_path),
    )
    ingest_paths(ingestor, sim.paths)
    accounts = hasattr(store, "add_user")  # the log-in of issue 13 (dashboard/auth.py)
    if accounts:
        store.add_user("Ana Reviewer", "reviewer", PASSWORD, actor=Person("lab-admin", "admin"))
    server = serve(create_app(store, assay, refresh_ms=500), port=0)
    yield {
        "store": store,
        "url": server.url,
        "name": "Ana Reviewer" if accounts else "bench (no accounts)",
        "accounts": accounts,
    }
    server.stop()
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium(1920, 2000) as driver:
        yield driver


def _choose(driver: object, dropdown_id: str, option: str) -> bool:
    """Pick an option of a dcc.Dropdown by its text."""
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, f"#{dropdown_id}")  # type: ignore[attr-defined]
    if box.get_attribute("aria-expanded") != "true":
        box.click()
    # Dash 4 renders the open list in a pop-over at the end of the page
    for el in driver.find_elements(By.CSS_SELECTOR, "[role=option]"):  # type: ignore[attr-defined]
        if el.text.strip() == option:
            el.click()
            return True
    return False


def _type(driver: object, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    el = driver.find_element(By.ID, element_id)  # type: ignore[attr-defined]
    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(Keys.BACKSPACE)
    el.send_keys(text)


def _row(driver: object, words: str) -> bool:
    """Click the table row naming ``words``; False when it is not on this page (yet)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        for tr in driver.find_elements(By.CSS_SELECTOR, "tr.inj-row"):  # type: ignore[attr-defined]
            if words in tr.text:
                tr.click()
                return True
    except StaleElementReferenceException:  # the live table was redrawn meanwhile
        return False
    return False


def _log_in(driver: object, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/login")  # type: ignore[attr-defined]
    wait_on(driver, lambda d: d.find_elements(By.NAME, "password"), WAIT)
    driver.find_element(By.NAME, "name").send_keys("Ana Reviewer")  # type: ignore[attr-defined]
    pw = driver.find_element(By.NAME, "password")  # type: ignore[attr-defined]
    pw.send_keys(PASSWORD)
    pw.submit()


def test_a_reviewer_reintegrates_a_calibrator_and_then_excludes_one(
    served: dict, browser: object
) -> None:
    from selenium.webdriver.common.by import By

    driver, store, who = browser, served["store"], served["name"]
    if served["accounts"]:
        _log_in(driver, served["url"])
    else:
        driver.get(served["url"])  # type: ignore[attr-defined]
    wait_on(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.inj-row")) > 5, WAIT)
    # a plot point clicked brings its table row into view (the first injection: last page)
    from selenium.webdriver.common.action_chains import ActionChains

    point = wait_on(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#is-plot .scatterlayer .point"), WAIT
    )[0]
    ActionChains(driver).move_to_element(point).click().perform()  # type: ignore[arg-type]
    wait_on(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.inj-row.selected"), WAIT)
    assert "page 1 /" not in page_text(driver, "#page-label")
    res = store.results("run")
    cals = res.filter(pl.col("sample_type") == "calibrator").sort("position")
    cal = cals.row(cals.height // 2, named=True)
    iid, name = int(cal["injection_id"]), str(cal["sample_id"])
    versions = store.calibration_versions("run")
    # the calibrator may be on a later page of the newest-first table
    driver.get(served["url"])  # type: ignore[attr-defined]
    wait_on(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.inj-row")) > 5, WAIT)
    for _ in range(10):
        if _row(driver, name):
            break
        label = page_text(driver, "#page-label")
        driver.find_element(By.ID, "page-older").click()  # type: ignore[attr-defined]
        wait_on(driver, lambda d, was=label: page_text(d, "#page-label") != was, WAIT)
    wait_on(driver, lambda d: name in page_text(d, "#rv-info"), WAIT)
    wait_on(
        driver,
        lambda d: d.find_element(By.ID, "rv-start").get_attribute("value"),  # prefilled
        WAIT,
    )
    # a drag across the first panel proposes the bounds (the reviewer can still type them)
    from selenium.common.exceptions import TimeoutException

    wait_on(driver, lambda d: f"{name}: Asn quantifier" in page_text(d, "#chrom"), WAIT)
    typed_before = driver.find_element(By.ID, "rv-start").get_attribute("value")  # type: ignore[attr-defined]
    for attempt in range(3):  # a redraw landing mid-drag drops the selection: drag again
        drag = driver.find_element(By.CSS_SELECTOR, "#chrom .nsewdrag")  # type: ignore[attr-defined]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", drag)  # type: ignore[attr-defined]
        width = drag.size["width"]
        ActionChains(driver).move_to_element_with_offset(
            drag, -width // 4, 0
        ).click_and_hold().move_by_offset(width // 3, 0).release().perform()  # type: ignore[arg-type]
        try:
            wait_on(
                driver,
                lambda d: d.find_element(By.ID, "rv-start").get_attribute("value") != typed_before,
                10,
            )
            break
        except TimeoutException:
            if attempt == 2:
                raise
    lo = float(driver.find_element(By.ID, "rv-start").get_attribute("value"))  # type: ignore[attr-defined]
    hi = float(driver.find_element(By.ID, "rv-end").get_attribute("value"))  # type: ignore[attr-defined]
    assert 2.0 < lo < hi < 4.5
    peak = store.peaks(iid).filter(pl.col("role") == "analyte_quant").row(0, named=True)
    start = peak["apex_rt"] - 0.6 * peak["fwhm"]  # the front of the peak left out
    _type(driver, "rv-end", f"{peak['end_rt']:.3f}")
    _type(driver, "rv-start", f"{start:.3f}")
    wait_on(driver, lambda d: _choose(d, "rv-reason", "peak tail cut too early"), WAIT)
    _type(driver, "rv-comment", "tail integrated into the noise")
    driver.find_element(By.ID, "rv-apply").click()  # type: ignore[attr-defined]
    wait_on(driver, lambda d: f"manually integrated by {who}" in page_text(d, "#rv-result"), WAIT)
    assert "Curve refitted: version" in page_text(driver, "#rv-result")
    # the result changed: manual peaks stored, the curve refitted, the panel says so
    now = store.peaks(iid).filter(pl.col("role") == "analyte_quant").row(0, named=True)
    assert now["source"] == "manual" and now["start_rt"] == pytest.approx(start, abs=1e-3)
    assert now["area"] < peak["area"]
    assert store.calibration_versions("run") == versions + 1
    wait_on(driver, lambda d: "automatic:" in page_text(d, "#chrom"), WAIT)
    wait_on(driver, lambda d: f"manually integrated by {who}" in page_text(d, "#rv-info"), WAIT)
    SHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SHOTS / "review-reintegration.png"))  # type: ignore[attr-defined]
    assert store.edits("run", iid)["actor"].to_list() == [who]

    # exclude the same calibrator: another curve version, shown in the Calibration tab
    driver.find_element(By.XPATH, "//summary[contains(., 'Calibrator')]").click()  # type: ignore[attr-defined]
    wait_on(
        driver, lambda d: _choose(d, "rv-ex-reason", "injection error (vial, needle, air)"), WAIT
    )
    driver.find_element(By.ID, "rv-exclude").click()  # type: ignore[attr-defined]
    version = versions + 2
    wait_on(
        driver, lambda d: f"Curve refitted: version {version}" in page_text(d, "#rv-result"), WAIT
    )
    assert store.exclusions("run")[iid].startswith(f"excluded by {who}")
    driver.find_element(By.XPATH, "//div[contains(@class,'tab') and .='Calibration']").click()  # type: ignore[attr-defined]
    wait_on(driver, lambda d: f"v{version}" in page_text(d, "#cal-versions"), WAIT)
    wait_on(driver, lambda d: "Include in the curve again" in page_text(d, "#rv-exclude"), WAIT)
