"""The all-instruments view over the shared Parquet folder: builders, folder reading, browser.

The share is written by ``asnmon.share.write_share`` from two real DuckDB
stores filled by the simulator and the pipeline, as two monitors would.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import CHROMEDRIVER, CHROMIUM, NO_BROWSER, chromium, page_text, wait_on

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.share import write_share
from asnmon.simulate import Faults, SimConfig, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.worklist import load_worklist
from dashboard import style
from dashboard.share_app import (
    ShareCache,
    create_share_app,
    folder_message,
    folder_signature,
    instrument_cards,
    run_plots,
    run_rows,
    run_summaries,
    runs_table,
)

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
WAIT = 20.0


@dataclass(frozen=True)
class Share:
    folder: Path
    verdicts: dict[str, str]  # instrument -> verdict of its run


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory, assay: Assay) -> Share:
    """QQQ-1 with a clean run, QQQ-2 with a biased mid QC and a short injection."""
    tmp = tmp_path_factory.mktemp("share")
    folder = tmp / "share"
    folder.mkdir()
    verdicts: dict[str, str] = {}
    for inst, faults in (
        ("QQQ-1", Faults()),
        ("QQQ-2", Faults(biased_qc=("QC-M", 40.0, True), short_injection=5)),
    ):
        sim = simulate_run(tmp / inst, SimConfig(n_samples=4, qc_every=4, faults=faults))
        with Store(tmp / f"{inst}.duckdb") as store:
            ingestor = RunIngestor(
                store,
                assay,
                RunInfo("run1", "run1", folder=str(sim.out_dir), planned=len(sim.injections)),
                worklist=load_worklist(sim.worklist_path),
            )
            ingest_paths(ingestor, sim.paths)
            ingestor.flush()
            write_share(store, folder, inst)
            verdicts[inst] = str(store.runs()["verdict"][0])
    return Share(folder, verdicts)


def _text(component: Any) -> str:
    """All text in a Dash component tree (what a reader would see)."""
    if component is None:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


# ---------------------------------------------------------------- pure builders


def _results(instrument: str, run_id: str, flags: list[str], start: int = 0) -> pl.DataFrame:
    n = len(flags)
    return pl.DataFrame(
        {
            "run_id": [run_id] * n,
            "injection_id": list(range(start + 1, start + n + 1)),
            "sample_type": ["calibrator"] * n,
            "sample_id": [f"S{i}" for i in range(n)],
            "acquired_at": [f"2024-05-06T08:{i:02d}:00Z" for i in range(n)],
            "is_area": [1.0e5] * n,
            "conc": [10.0] * n,
            "flags": flags,
            "instrument": [instrument] * n,
        }
    )


def _runs(instrument: str, run_id: str, verdict: str, created: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "run_id": [run_id],
            "name": [run_id],
            "planned": [10],
            "created_at": [created],
            "verdict": [verdict],
            "verdict_reason": [f"because {verdict}"],
            "injections": [3],
            "instrument": [instrument],
            "exported_at": ["2024-05-06T09:10:00"],
        }
    )


def test_summaries_cards_and_rows_from_frames() -> None:
    results = pl.concat(
        [
            _results("A", "old", ["", "", ""]),
            _results("A", "new", ["IS_LOW", "", "BLQ;QC_FAIL"], start=10),
            _results("B", "r", ["RT_SHIFT", "", ""], start=20),
        ]
    )
    runs = pl.concat(
        [
            _runs("A", "old", "pass", "2024-05-05 08:00:00"),
            _runs("A", "new", "fail", "2024-05-06 08:00:00"),
            _runs("B", "r", "at risk", "2024-05-06 07:00:00"),
        ]
    )
    summaries = run_summaries(results, runs)
    assert [(s["instrument"], s["run_id"]) for s in summaries] == [
        ("A", "new"),
        ("B", "r"),
        ("A", "old"),
    ]
    new = summaries[0]
    assert new["fails"] == 2  # IS_LOW and QC_FAIL; BLQ is not a FAIL code
    assert new["flagged"] == 2
    assert new["last_injection"] == "2024-05-06T08:02:00Z"

    cards = instrument_cards(summaries)
    assert len(cards) == 2  # one per instrument: its newest run only
    a, b = (_text(c) for c in cards)
    look = style.verdict("fail")
    assert look.icon in a and "FAIL" in a and "A" in a and "because fail" in a
    assert "✖ 2" in a and "3 / 10" in a and "08:02:00" in a
    assert "AT RISK" in b and "▲" in b
    assert cards[0].children[0].style["background"] == look.colour

    rows = run_rows(summaries)
    assert rows[0] == {
        "instrument": "A",
        "run_id": "new",
        "run": "new",
        "verdict": "✖ FAIL",
        "verdict_key": "fail",
        "injections": 3,
        "flagged": 2,
        "updated": "2024-05-06 09:10",
    }
    table = runs_table(rows, {"instrument": "B", "run_id": "r"})
    body = table.children[1].children
    assert [r.className.endswith("selected") for r in body] == [False, True, False]
    assert body[0].id == {"type": "share-run", "instrument": "A", "run": "new"}


def test_results_without_a_runs_table_still_show_as_pending() -> None:
    summaries = run_summaries(_results("C", "x", ["NO_PEAK", ""]), pl.DataFrame())
    assert len(summaries) == 1
    assert summaries[0]["verdict"] == "pending" and summaries[0]["fails"] == 1
    assert "PENDING" in _text(instrument_cards(summaries))


def test_nothing_shared_yet_is_said_plainly() -> None:
    assert "No instrument" in _text(instrument_cards([]))
    assert "No runs." in _text(runs_table([], None))


def test_run_plots_use_the_single_run_builders(share: Share, assay: Assay) -> None:
    state = ShareCache(share.folder).get()
    is_fig, asn_fig = run_plots(state.results, {"instrument": "QQQ-2", "run_id": "run1"}, assay)
    points = sum(len(t.y or ()) for t in is_fig.data)
    assert points > 10
    assert "QQQ-2" in is_fig.layout.title.text
    assert min(y for t in is_fig.data for y in (t.y or ())) < 50  # the short injection
    assert sum(len(t.y or ()) for t in asn_fig.data) > 5
    empty, _ = run_plots(state.results, None, assay)
    assert not empty.data and "Select a run" in empty.layout.annotations[0].text


# ---------------------------------------------------------------- reading the folder


def test_cache_rereads_only_changed_files(
    share: Share, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "s"
    shutil.copytree(share.folder, folder)
    reads: list[str] = []
    real = pl.read_parquet

    def counting(path: Any, *a: Any, **k: Any) -> pl.DataFrame:
        reads.append(Path(path).name)
        return real(path, *a, **k)

    monkeypatch.setattr(pl, "read_parquet", counting)
    cache = ShareCache(folder)
    first = cache.get()
    assert len(reads) == 4 and first.results.height == 60
    assert cache.get() is first  # nothing moved: a stat, no read
    assert len(reads) == 4

    target = folder / "QQQ-1__run1.parquet"
    frame = real(target).head(10)
    tmp = folder / ".QQQ-1__run1.parquet.tmp"
    frame.write_parquet(tmp)
    os.replace(tmp, target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = cache.get()
    assert reads[4:] == ["QQQ-1__run1.parquet"]
    assert second.results.height == 40
    assert second.version != first.version


def test_half_written_file_is_skipped_named_and_retried(share: Share, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    shutil.copytree(share.folder, folder)
    good = (folder / "QQQ-2__run1.parquet").read_bytes()
    (folder / "QQQ-2__run1.parquet").write_bytes(good[: len(good) // 2])
    (folder / ".QQQ-1__run1.parquet.ab12cd34.tmp").write_bytes(b"partial")  # writer's temp
    cache = ShareCache(folder)
    state = cache.get()
    assert state.skipped == ("QQQ-2__run1.parquet",)
    assert set(state.results["instrument"].unique()) == {"QQQ-1"}
    message = folder_message(folder, state)
    assert "Skipped 1 file" in message and "QQQ-2__run1.parquet" in message
    # both cards still render: QQQ-2's verdict comes from its runs table
    assert len(instrument_cards(run_summaries(state.results, state.runs))) == 2

    (folder / "QQQ-2__run1.parquet").write_bytes(good)
    healed = cache.get()
    assert healed.skipped == () and healed.results.height == 60
    assert folder_message(folder, healed) == ""


def test_empty_and_unreachable_folders_say_so(tmp_path: Path) -> None:
    empty = ShareCache(tmp_path).get()
    assert empty.signature == () and "No runs in" in folder_message(tmp_path, empty)
    gone = tmp_path / "unmounted"
    assert folder_signature(gone) is None
    state = ShareCache(gone).get()
    assert "cannot be reached" in folder_message(gone, state)
    assert run_summaries(state.results, state.runs) == []


def test_app_healthz_reports_the_folder(share: Share, assay: Assay, tmp_path: Path) -> None:
    ok = create_share_app(share.folder, assay).server.test_client().get("/healthz")
    assert ok.status_code == 200 and ok.get_json()["files"] == 4
    gone = create_share_app(tmp_path / "nope", assay).server.test_client().get("/healthz")
    assert gone.status_code == 503


# ---------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(NO_BROWSER)
    with chromium(1600, 1500) as driver:
        yield driver


def _wait(driver: Any, condition: Any, timeout: float = WAIT) -> Any:
    return wait_on(driver, condition, timeout)


@pytest.mark.browser
@pytest.mark.filterwarnings("ignore::DeprecationWarning:urllib3.*")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:selenium.*")
def test_browser_shows_both_instruments_and_a_selected_run(
    share: Share, assay: Assay, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    from dashboard.server import serve

    assert share.verdicts == {"QQQ-1": "pass", "QQQ-2": "fail"}
    server = serve(create_share_app(share.folder, assay, refresh_ms=500), port=0)
    try:
        driver = browser
        driver.get(server.url)
        _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".share-card")) == 2)
        cards = {
            c.find_element(By.CSS_SELECTOR, ".share-instrument").text: c.text
            for c in driver.find_elements(By.CSS_SELECTOR, ".share-card")
        }
        assert "✔" in cards["QQQ-1"] and "PASS" in cards["QQQ-1"]
        assert "✖" in cards["QQQ-2"] and "FAIL" in cards["QQQ-2"]
        assert not driver.find_elements(By.CSS_SELECTOR, "#share-is-plot .scatterlayer .point")

        row = _wait(
            driver,
            lambda d: [
                r for r in d.find_elements(By.CSS_SELECTOR, "tr.share-run") if "QQQ-2" in r.text
            ],
        )[0]
        row.click()
        _wait(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#share-is-plot .scatterlayer .point"),
        )
        _wait(
            driver,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#share-asn-plot .scatterlayer .point"),
        )
        _wait(driver, lambda d: "QQQ-2" in page_text(d, "#share-is-plot .gtitle"))
        _wait(driver, lambda d: "selected" in _page_text_class(d, "tr.share-run.selected"))
        SHOTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(SHOTS / "dashboard-share.png"))
    finally:
        server.stop()


def _page_text_class(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.get_attribute("class") for e in driver.find_elements(By.CSS_SELECTOR, css))
