"""Log-in, sign-off and the run lock in real headless Chromium, as the lab would use them.

An analyst is refused at signing, a reviewer reviews, a different approver
approves, and then a write (acknowledging a flag) is refused with a plain
message naming who locked the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import BROWSER_MARKS, chromium, ingest_short_run, page_text, wait_on

from asnmon.assay import Assay
from asnmon.store import Store
from asnmon.users import cli_actor

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
WAIT = 20.0
PW = {"ana": "analyst-pw-1", "rita": "reviewer-pw-1", "paul": "approver-pw-1"}

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Iterator[dict[str, Any]]:
    """A small real run with a short last injection (IS_LOW) and three accounts."""
    from dashboard.app import create_app
    from dashboard.server import serve

    tmp = tmp_path_factory.mktemp("signoff")
    store = Store(tmp / "db.duckdb")
    ingest_short_run(store, tmp, assay)
    for name, role in (("ana", "analyst"), ("rita", "reviewer"), ("paul", "approver")):
        store.add_user(name, role, PW[name], actor=cli_actor("lab admin"))
    server = serve(create_app(store, assay, refresh_ms=500), port=0)
    yield {"store": store, "url": server.url}
    server.stop()
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(1600, 1400) as driver:
        yield driver


def _wait(driver: Any, condition: Any, timeout: float = WAIT) -> Any:
    return wait_on(driver, condition, timeout)


def log_in(driver: Any, url: str, name: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "logout")
    _wait(driver, lambda d: "You are logged out" in page_text(d, "#login-message"))
    driver.find_element(By.ID, "login-name").send_keys(name)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


def open_signoff(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    tab = _wait(
        driver,
        lambda d: next(
            (t for t in d.find_elements(By.CSS_SELECTOR, ".tab") if "Sign-off" in t.text), None
        ),
    )
    tab.click()
    _wait(driver, lambda d: "Run run:" in page_text(d, "#signoff-state"))


def sign(driver: Any, button: str, password: str, reason: str = "") -> str:
    from selenium.webdriver.common.by import By

    before = page_text(driver, "#sign-result")
    field = driver.find_element(By.ID, "sign-password")
    field.clear()
    field.send_keys(password)
    if reason:
        driver.find_element(By.ID, "sign-reason").send_keys(reason)
    driver.find_element(By.ID, button).click()
    return str(_wait(driver, lambda d: (t := page_text(d, "#sign-result")) != before and t))


def test_a_wrong_password_does_not_log_in(live: dict[str, Any], browser: Any) -> None:
    log_in(browser, live["url"], "rita", "not-her-password")
    _wait(browser, lambda d: "Wrong account name or password" in page_text(d, "#login-message"))


def test_review_refused_to_an_analyst_then_reviewed_approved_and_locked(
    live: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    driver, url, store = browser, live["url"], live["store"]

    # an analyst logs in and cannot sign
    log_in(driver, url, "ana", PW["ana"])
    _wait(driver, lambda d: "ana (analyst)" in page_text(d, "#who"))
    open_signoff(driver)
    refused = sign(driver, "sign-reviewed", PW["ana"])
    assert "Not signed: ana is an analyst: review needs the role reviewer" in refused
    assert store.signatures("run").is_empty()
    assert driver.find_element(By.ID, "sign-password").get_attribute("value") == ""

    # the reviewer signs Reviewed, re-entering the password
    log_in(driver, url, "rita", PW["rita"])
    _wait(driver, lambda d: "rita (reviewer)" in page_text(d, "#who"))
    open_signoff(driver)
    assert "wrong account name or password" in sign(driver, "sign-reviewed", "not-her-pw")
    done = sign(driver, "sign-reviewed", PW["rita"])
    assert done.startswith("✔ Reviewed: run run signed by rita")
    _wait(driver, lambda d: "REVIEWED" in page_text(d, "#signoff-state"))

    # the approver approves; the run is locked
    log_in(driver, url, "paul", PW["paul"])
    _wait(driver, lambda d: "paul (approver)" in page_text(d, "#who"))
    open_signoff(driver)
    done = sign(driver, "sign-approved", PW["paul"])
    assert "✔ Approved" in done and "locked" in done
    _wait(driver, lambda d: "APPROVED" in page_text(d, "#signoff-state"))
    table = page_text(driver, "#signatures")
    assert "Reviewed rita reviewer" in table and "Approved paul approver" in table
    _wait(driver, lambda d: "approve" in page_text(d, "#audit-run"))
    assert "intact" in page_text(driver, "#chain-state")
    SHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SHOTS / "signoff-approved.png"))
    assert store.sign_state("run") == "approved"

    # a write in the locked run is refused in plain words
    tab = next(t for t in driver.find_elements(By.CSS_SELECTOR, ".tab") if "Open flags" in t.text)
    tab.click()
    acks_before = store.audit_events("run").height

    def click_ack(d: Any) -> bool:
        # found and clicked in one go: a refresh tick may redraw the card in between
        # (a stale button is "not yet", and the wait tries again)
        button = next(
            (
                b
                for b in d.find_elements(By.CSS_SELECTOR, ".flag-card .ack-btn")
                if b.is_displayed()
            ),
            None,
        )
        if button is None:
            return False
        button.click()
        return True

    _wait(driver, click_ack)
    message = _wait(driver, lambda d: "Not recorded" in (t := page_text(d, "#ack-result")) and t)
    assert "Run run is locked: approved by paul" in message
    assert "reopens it with a reason" in message
    assert store.audit_events("run").height == acks_before
    assert store.verify_audit() == []


def test_without_a_log_in_a_write_asks_for_one(live: dict[str, Any], browser: Any) -> None:
    driver = browser
    driver.get(live["url"] + "logout")
    driver.get(live["url"])
    _wait(driver, lambda d: "Not logged in" in page_text(d, "#who"))
    open_signoff(driver)
    assert "Not signed: Not logged in" in sign(driver, "sign-approved", PW["paul"])
