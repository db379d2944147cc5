"""``Views`` over a real DuckDB file: what a click on a card acknowledges, and what it says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from asnmon.assay import Assay
from asnmon.pipeline import RunIngestor, ingest_paths
from asnmon.simulate import SimConfig, apply_faults, simulate_run
from asnmon.store import RunInfo, Store
from asnmon.users import BENCH_ACTOR, Actor
from asnmon.worklist import load_worklist
from dashboard.auth import Who

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:urllib3.*")


@pytest.fixture
def drifting(tmp_path: Any, assay: Assay) -> Iterator[tuple[Store, RunIngestor, list[Any]]]:
    """A run whose IS collapses from injection 12 (5 % per injection): IS_LOWs pile up."""
    config = apply_faults(SimConfig(n_samples=16), ["is-drift:12:5"])
    sim = simulate_run(tmp_path / "run", config)
    store = Store(tmp_path / "db.duckdb")
    ingestor = RunIngestor(
        store,
        assay,
        RunInfo("r", "r", folder=str(sim.out_dir), planned=len(sim.paths)),
        worklist=load_worklist(sim.worklist_path),
    )
    yield store, ingestor, sim.paths
    store.close()


def test_a_card_acknowledges_only_the_members_it_showed(
    drifting: tuple[Store, RunIngestor, list[Any]], assay: Assay
) -> None:
    from dashboard.views import Views

    store, ingestor, paths = drifting
    ingest_paths(ingestor, paths[:-3])
    views = Views(store, assay)
    card = next(g for g in views.snapshot("r").groups if g.code == "IS_LOW" and len(g.members) > 1)
    shown = set(card.flag_ids)
    newest = max(shown)
    ingest_paths(ingestor, paths[-3:])  # more IS_LOW arrive after the card was drawn
    lows = store.flags("r").filter(pl.col("code") == "IS_LOW")
    assert lows.height > len(shown)

    said = views.acknowledge(
        newest, Who(Actor("N. Shift", "analyst"), True, ""), "source cleaning planned"
    )

    lows = store.flags("r").filter(pl.col("code") == "IS_LOW")
    acked = set(lows.filter(pl.col("acks") > 0)["flag_id"].to_list())
    assert acked == shown  # the later arrivals stay open: nobody has seen them
    positions = sorted(m.position for m in card.members if m.position is not None)
    assert said.startswith(f"✔ IS_LOW ×{len(shown)} on injections {positions[0]}")
    assert said.endswith("acknowledged by N. Shift.")
    assert "flag" not in said.lower()  # injections, never a database id ("Flag 12 ...")
    comments = {store.acknowledgements(f)["comment"][0] for f in shown}
    assert comments == {"source cleaning planned"}
    # the banner's counters moved by exactly those
    counts = views.snapshot("r").counts
    open_fail = store.flags("r").filter((pl.col("severity") == "fail") & (pl.col("acks") == 0))
    assert counts.open_fail == open_fail.height


def test_a_single_flag_is_named_by_its_injection(
    drifting: tuple[Store, RunIngestor, list[Any]], assay: Assay
) -> None:
    from dashboard.views import Views

    store, ingestor, paths = drifting
    ingest_paths(ingestor, paths)
    views = Views(store, assay)
    single = next(
        g for g in views.snapshot("r").groups if len(g.members) == 1 and g.members[0].position
    )
    m = single.members[0]
    bench = Who(BENCH_ACTOR, False, "")
    said = views.acknowledge(m.flag_id, bench, "")
    by = "bench (no accounts)"
    assert said == f"✔ {m.code} on injection {m.position} ({m.sample_id}) acknowledged by {by}."
    assert "✖ Not recorded" in views.acknowledge(10**9, bench, "")
    # with accounts and nobody logged in, nothing is recorded and the page says why
    nobody = Who(None, True, "Not logged in: log in to acknowledge, edit or sign.")
    assert "✖ Not recorded: Not logged in" in views.acknowledge(m.flag_id, nobody, "")
