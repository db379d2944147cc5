"""The night-shift view in real headless Chromium (issue 12): a demo-like simulated run
(falling IS, an over-curve sample, a truncated and a junk file) served by our server.

The tests run in file order on one page and one database: the headline before any
acknowledgement, then acknowledging, then the kiosk.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import helpers
import polars as pl
import pytest
from helpers import BROWSER_MARKS, chromium, wait_on
from helpers import page_text as _text

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.simulate import SimConfig, apply_faults, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist

WAIT = 40.0  # generous: a loaded CI machine draws a 95-injection page slowly
N_SAMPLES = 60  # the demo's run: 95 injections, IS falling 2.5 % per injection from ~43

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Iterator[dict[str, Any]]:
    from asnmon.cli.simulation import demo_faults
    from dashboard.app import create_app
    from dashboard.server import serve

    tmp = tmp_path_factory.mktemp("night")
    config = apply_faults(SimConfig(n_samples=N_SAMPLES), demo_faults(N_SAMPLES))
    sim = simulate_run(tmp / "run", config)
    store = Store(tmp / "db.duckdb")
    ingestor = RunIngestor(
        store,
        assay,
        RunInfo("night", "night", folder=str(sim.out_dir), planned=len(sim.injections)),
        worklist=load_worklist(sim.worklist_path),
    )
    ingest_paths(ingestor, sim.paths)
    server = serve(create_app(store, assay, refresh_ms=500), port=0)
    yield {"store": store, "url": server.url, "assay": assay}
    server.stop()
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(1920, 1600) as driver:
        yield driver


def _texts(driver: Any, css: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def _open(store: Store) -> pl.DataFrame:
    f = store.flags("night")
    return f.filter((f["acks"] == 0) & f["severity"].is_in(["fail", "warning"]))


def _open_fail(store: Store) -> int:
    # injection info notes make no card; run-level ones have no severity that counts
    return _open(store).filter(pl.col("severity") == "fail").height


def test_the_headline_names_the_is_drift_when_the_is_collapses(night: dict, browser: Any) -> None:
    store = night["store"]
    codes = set(store.flags("night")["code"].to_list())
    assert {"IS_DRIFT", "IS_LOW", "READ_ERROR"} <= codes  # the junk file is there too
    browser.get(night["url"])
    wait_on(browser, lambda d: "IS falling" in _text(d, "#headline"), WAIT)
    head = _text(browser, "#headline")
    assert "READ_ERROR" not in head  # one junk file does not outrank the collapsing IS
    assert "IS_LOW ×" in head and "→" in head  # what it has done, and what to do
    drift = store.flags("night").filter(pl.col("code") == "IS_DRIFT").row(0, named=True)
    assert f"since injection {json.loads(drift['details'])['started_at']}" in head
    assert "IS_DRIFT forecast" in _text(browser, "#forecasts")
    assert "FAIL" in _text(browser, "#verdict")


def test_is_low_flags_are_one_card_after_their_cause(night: dict, browser: Any) -> None:
    store = night["store"]
    browser.get(night["url"])
    wait_on(browser, lambda d: "IS_DRIFT" in _text(d, ".flag-card:first-child .flag-head"), WAIT)
    heads = _texts(browser, ".flag-card .flag-head")
    lows = store.flags("night").filter(pl.col("code") == "IS_LOW")
    caused = [h for h in heads if "IS_LOW ×" in h and "caused by IS_DRIFT" in h]
    assert len(caused) == 1, heads  # one card, not one per injection
    assert heads.index(caused[0]) == 1  # right after its cause
    n = int(caused[0].split("IS_LOW ×", 1)[1].split()[0])
    assert 2 <= n <= lows.height
    first, last = lows["position"].min(), lows["position"].max()
    assert f"{first}" in caused[0] and f"{last}" in caused[0]


def test_counters_agree_after_acknowledging_a_group(night: dict, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    store = night["store"]
    browser.get(night["url"])
    wait_on(browser, lambda d: "Acknowledge all" in _text(d, ".flag-card.caused"), WAIT)
    before_fail = _open_fail(store)
    acks_before = store.reader().execute("SELECT count(*) FROM acknowledgements").fetchone()[0]
    browser.find_element(By.ID, "ack-comment").send_keys("source cleaning planned")
    _in_sync(browser, store)
    button = browser.find_element(By.CSS_SELECTOR, ".flag-card.caused .ack-btn")
    n = int(button.text.split()[-1])
    _click_until(browser, ".flag-card.caused .ack-btn", "acknowledged by bench (no accounts)")
    msg = _text(browser, "#ack-result")
    assert msg.startswith(f"✔ IS_LOW ×{n} on injections ")  # names injections, never an id
    acks = store.reader().execute("SELECT count(*) FROM acknowledgements").fetchone()[0]
    assert acks == acks_before + n
    comments = store.reader().execute("SELECT DISTINCT comment FROM acknowledgements").fetchall()
    assert ("source cleaning planned",) in comments
    assert _open_fail(store) == before_fail - n
    _agree(browser, store)
    # the acknowledged card left "Open flags"; the toggle brings it back
    wait_on(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, ".flag-card.caused"), WAIT)
    browser.find_element(By.CSS_SELECTOR, "#show-acked input").click()
    wait_on(browser, lambda d: f"acknowledged ×{n}" in _text(d, ".flag-card.acked"), WAIT)
    browser.find_element(By.CSS_SELECTOR, "#show-acked input").click()

    # every remaining FAIL acknowledged: the banner says the run's own verdict, 0 open
    for _ in range(30):
        left = _open_fail(store)
        if not left:
            break
        # click only once the page shows the store's state (a list being redrawn drops clicks)
        _in_sync(browser, store)
        wait_on(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, ".flag-card.acked"), WAIT)
        for _attempt in range(3):
            assert browser.execute_script(CLICK_FIRST_FAIL_CARD) != "none"
            if helpers.wait_for(lambda n=left: _open_fail(store) < n, WAIT / 2):
                break
        assert _open_fail(store) < left
    wait_on(browser, lambda d: _open_fail(store) == 0 and _stat(d, "stat-open-fail") == "0", WAIT)
    verdict = str(store.runs().row(0, named=True)["verdict"]).upper()
    wait_on(browser, lambda d: verdict in _text(d, "#verdict"), WAIT)
    _agree(browser, store)


# The live list re-renders under the test: find and click in one step, in the page.
CLICK_FIRST_FAIL_CARD = """
const card = [...document.querySelectorAll('.flag-card')].find(
    c => c.querySelector('.ack-btn') && c.querySelector('.badge').textContent.includes('FAIL'));
if (!card) { return 'none'; }
card.querySelector('.ack-btn').click();
return card.querySelector('.card-title').textContent;
"""


def _in_sync(browser: Any, store: Store) -> None:
    """The page shows what the store holds (a list still being redrawn drops clicks)."""
    fails = _open_fail(store)
    want = f"✖ {fails}" if fails else "0"
    wait_on(browser, lambda d: _stat(d, "stat-open-fail") == want, WAIT)


def _click_until(browser: Any, css: str, said: str, attempts: int = 3) -> None:
    """Click ``css`` until the confirmation says ``said``: a click that lands while the
    live list is being redrawn is lost (the button it hit is gone), so try again; a
    card already acknowledged has left the list, so a retry cannot acknowledge twice."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(attempts):
        with contextlib.suppress(NoSuchElementException, StaleElementReferenceException):
            browser.find_element(By.CSS_SELECTOR, css).click()
        if helpers.wait_for(lambda: said in _text(browser, "#ack-result"), WAIT / 2):
            return
    raise AssertionError(f"no {said!r} after {attempts} clicks: {_text(browser, '#ack-result')!r}")


def _stat(driver: Any, sid: str) -> str:
    return _text(driver, f"#{sid} .stat-value")


def _agree(browser: Any, store: Store) -> None:
    """Banner counter, its detail, the tab label and the pane's summary: one number each."""
    fails = _open_fail(store)
    open_n = _open(store).filter(
        pl.col("injection_id").is_not_null() | (pl.col("severity") != "info")
    )
    n = open_n.height

    def agree(d: Any) -> bool:
        return (
            _stat(d, "stat-open-fail") == (f"✖ {fails}" if fails else "0")
            and f"{n} unacknowledged" in _text(d, "#stat-open-fail")
            and f"Open flags ({n})" in _text(d, "#tabs")
            and (f"{n} open ({fails} FAIL" in _text(d, "#flag-summary") if n else True)
        )

    wait_on(browser, agree, WAIT)
    runs = store.runs().row(0, named=True)
    placed = store.results("night")["position"].drop_nulls().n_unique()
    assert f"{placed} / {runs['planned']}" in _stat(browser, "stat-progress")


def _asn_trace(driver: Any, name: str) -> Any:
    return driver.execute_script(
        "const g = document.querySelector('#asn-plot .js-plotly-plot');"
        "if (!g || !g.data) return null;"
        f"const t = g.data.find(t => t.name === {name!r});"
        "return t ? [t.x, t.y, t.text] : null;"
    )


def test_the_over_curve_sample_is_drawn_at_the_uloq(night: dict, browser: Any) -> None:
    store, assay = night["store"], night["assay"]
    over = store.results("night").filter(pl.col("status") == "ALQ").row(0, named=True)
    browser.get(night["url"])
    trace = wait_on(browser, lambda d: _asn_trace(d, "> ULOQ"), WAIT)
    xs, ys, texts = trace
    assert over["position"] in xs
    i = xs.index(over["position"])
    assert ys[i] == pytest.approx(assay.calibration.uloq * (over["dilution"] or 1.0))
    assert texts[i] == f"{over['sample_id']} > ULOQ"
    # drawn, not only listed: the marker is on the page, with its label
    wait_on(browser, lambda d: "> ULOQ" in _text(d, "#asn-plot .textpoint"), WAIT)


def test_kiosk_draws_it_too_has_no_toolbars_a_sound_switch_and_a_way_back(
    night: dict, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(night["url"] + "?kiosk=1")
    wait_on(
        browser, lambda d: "kiosk" in d.find_element(By.ID, "root").get_attribute("class"), WAIT
    )
    wait_on(browser, lambda d: _asn_trace(d, "> ULOQ"), WAIT)
    assert "IS_DRIFT forecast" in _text(browser, "#forecasts")  # acknowledged or not
    bars = browser.find_elements(By.CSS_SELECTOR, ".modebar-container")
    assert bars and not any(b.is_displayed() for b in bars)  # toolbars exist, not shown
    sound = browser.find_element(By.CSS_SELECTOR, "#sound input")
    assert sound.is_displayed() and not sound.is_selected()
    sound.click()
    wait_on(browser, lambda d: "sound on" in _text(d, "#sound-note"), WAIT)
    browser.refresh()  # remembered by this browser
    wait_on(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#sound input").is_selected(), WAIT)
    back = browser.find_element(By.ID, "full-link")
    assert back.is_displayed()
    back.click()
    wait_on(
        browser, lambda d: "kiosk" not in d.find_element(By.ID, "root").get_attribute("class"), WAIT
    )
    assert browser.find_element(By.ID, "injections").is_displayed()
    assert not browser.find_element(By.ID, "full-link").is_displayed()
    # the choice is the browser's: switch it back off for whoever uses it next
    browser.find_element(By.CSS_SELECTOR, "#sound input").click()


def test_the_run_has_what_the_browser_tests_stand_on(night: dict) -> None:
    """An ALQ sample, and calibrators never called out of range (issue 12)."""
    res = night["store"].results("night")
    cal = res.filter(pl.col("sample_type") == "calibrator")
    assert not cal["status"].is_in(["BLQ", "ALQ"]).any()  # standards keep their values
    assert cal.filter(pl.col("status") == "ok")["conc"].is_not_null().all()
    assert res.filter(pl.col("status") == "ALQ").height >= 1
