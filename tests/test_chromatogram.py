"""The chromatogram panels as a reviewer reads them (pure figure builders, no browser)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from dashboard.chromatogram import Panel, TransitionInfo, chromatogram_figure, plain
from dashboard.overlay import overlay_figure
from dashboard.review_edit import _x_range, describe, info_block

RT = [3.0 + i * 0.01 for i in range(41)]
INFOS = {
    "asn_quant": TransitionInfo("Asn 133.1>87.1", 133.1, 87.1),
    "asn_qual": TransitionInfo("Asn 133.1>74.0", 133.1, 74.0),
    "is_quant": TransitionInfo("IS", 139.1, 92.1),
}


def traces(height: float = 6.65e4) -> pl.DataFrame:
    y = [300.0 + height * math.exp(-0.5 * ((x - 3.2) / 0.03) ** 2) for x in RT]
    return pl.DataFrame(
        {"transition": ["asn_quant", "asn_qual", "is_quant"], "rt": [RT] * 3, "intensity": [y] * 3}
    )


def peaks(area: float = 66512.4, start: float = 3.1, source: str = "auto") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transition": ["asn_quant", "asn_qual", "is_quant"],
            "role": ["analyte_quant", "analyte_qual", "is_quant"],
            "apex_rt": [3.2011] * 3,
            "start_rt": [start] * 3,
            "end_rt": [3.3] * 3,
            "baseline_start": [300.0] * 3,
            "baseline_end": [300.0] * 3,
            "area": [area, 0.41 * area, 2.0 * area],
            "sn": [245.3, 80.0, 500.0],
            "source": [source] * 3,
        }
    )


def texts(fig: object) -> list[str]:
    return [str(a.text) for a in fig.layout.annotations]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(66512.4, "66,512"), (1234567.0, "1,234,567"), (245.3, "245"), (12.34, "12.3"),
     (0.412, "0.412"), (None, "—"), (float("nan"), "—")],
)  # fmt: skip
def test_numbers_are_plain(value: float | None, shown: str) -> None:
    assert plain(value) == shown


def test_each_panel_says_rt_area_sn_ion_ratio_transition_and_unit() -> None:
    fig = chromatogram_figure([Panel("S1", traces(), peaks())], transitions=INFOS)
    t = texts(fig)
    assert "S1: Asn quantifier<br>133.1→87.1" in t
    assert "S1: IS quantifier<br>139.1→92.1" in t
    quant = next(x for x in t if x.startswith("RT 3.201 min") and "66,512" in x)
    assert "area 66,512 counts·min" in quant and "S/N 245" in quant
    assert "e+" not in " ".join(t)
    qual = next(x for x in t if "27,270" in x)
    assert "ion ratio 0.410" in qual


def test_the_reference_can_share_each_columns_y_scale() -> None:
    rows = [Panel("S1", traces(3e4), peaks()), Panel("reference CAL05", traces(), peaks())]
    own = chromatogram_figure(rows, transitions=INFOS)
    shared = chromatogram_figure(rows, transitions=INFOS, share_y=True)
    assert own.layout.yaxis4.matches is None
    assert shared.layout.yaxis4.matches == "y"  # IS-at-47 % shows beside its reference
    assert shared.layout.yaxis6.matches == "y3"


def test_a_read_error_shows_its_text_instead_of_empty_panels() -> None:
    error = "READ_ERROR: the file ends before </mzML> (truncated at 14,336 bytes)"
    fig = chromatogram_figure(
        [Panel("S7", pl.DataFrame(), pl.DataFrame(), error=error)], transitions=INFOS
    )
    assert any("No chromatograms" in x and "truncated at 14,336" in x for x in texts(fig))
    assert not fig.data
    assert not any(x == "no trace" for x in texts(fig))


def test_a_manual_integration_is_shown_beside_the_automatic_one() -> None:
    manual = peaks(area=50000.0, start=3.15, source="manual")
    fig = chromatogram_figure(
        [Panel("S1", traces(), manual, auto=peaks(), note="manually integrated by Ana because x")],
        transitions=INFOS,
    )
    autos = [t for t in fig.data if t.name == "automatic integration"]
    assert len(autos) == 3
    assert [x for x in autos[0].x if x is not None] == [3.1, 3.1, 3.3, 3.3]
    t = texts(fig)
    assert any("automatic: 66,512 (3.100–3.300 min)" in x for x in t)
    assert any("manually integrated by Ana because x" in x for x in t)


def test_select_mode_lets_a_drag_pick_the_bounds() -> None:
    fig = chromatogram_figure([Panel("S1", traces(), peaks())], select=True)
    assert fig.layout.dragmode == "select" and fig.layout.selectdirection == "h"
    assert _x_range({"range": {"x2": [3.31, 3.05], "y2": [0, 1]}}) == (3.05, 3.31)
    assert _x_range({"points": []}) is None
    assert _x_range({"range": {"x": ["a", 1]}}) is None


def test_overlay_draws_one_colour_per_injection() -> None:
    fig = overlay_figure(
        [("S1", traces(), peaks()), ("S2", traces(2e4), peaks())], transitions=INFOS
    )
    assert len(fig.data) == 6
    assert {t.name for t in fig.data} == {"S1", "S2"}
    assert len({t.line.color for t in fig.data}) == 2
    assert sum(bool(t.showlegend) for t in fig.data) == 2


def test_info_block_and_confirmation_name_the_injection() -> None:
    from asnmon.records import Calibration
    from asnmon.requantify import Requantified

    cal = Calibration(
        3, "linear", "1/x^2", (0.0, 0.01, 0.0), 0.999, (), True, "accepted: 7/8", 5, 1000
    )
    msg = describe(Requantified((4,), (12,), cal, 31), "CAL03", "excluded from the curve by Ana")
    assert msg.startswith("✔ CAL03: excluded from the curve by Ana.")
    assert "version 3, accepted" in msg and "31 result(s)" in msg
    block = info_block(
        {"label": "S1", "sample_type": "sample", "dilution": 10.0, "result": "12.3 µM",
         "note": "manually integrated by Ana because x", "edits": [
             {"when": "2026-12-01 03:12", "actor": "Ana", "role": "reviewer",
              "what": "dilution 1 → 10", "reason": "dilution applied at the bench"}]}
    )  # fmt: skip
    text = str(block)
    assert "dilution 10" in text and "Ana (reviewer): dilution 1 → 10" in text
