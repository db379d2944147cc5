"""Layout builders: pure functions of rows and settings, returning Dash components.

The page's skeleton, the injection table and the calibration versions; the
banner (read from across the room) is ``dashboard.banner``, the flag cards
``dashboard.cards``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html

from asnmon.qc.headline import run_counts
from dashboard import signoff, style
from dashboard.banner import banner, problem_banner
from dashboard.cards import MAX_FLAG_CARDS, flag_cards, flags_pane
from dashboard.review_edit import review_panel
from dashboard.tables import TABLE_COLUMNS

__all__ = [
    "MAX_FLAG_CARDS",
    "banner",
    "build_layout",
    "flag_cards",
    "flags_pane",
    "problem_banner",
]

TYPE_OPTIONS = [{"label": label, "value": kind} for kind, label, *_ in style.SAMPLE_TYPES]
TABS = (
    ("flags", "Open flags"),
    ("calibration", "Calibration"),
    ("qc", "QC (Levey-Jennings)"),
    ("pools", "Pools: media / lysate"),
    signoff.TAB,
)
GRAPH_CONFIG = {"displaylogo": False}
# The run plots' toolbar cut to zoom, pan, reset and save: the full one (13 buttons)
# sat on top of the plot titles; lasso/select/spikes mean nothing on a trend plot.
RUN_PLOT_CONFIG = {
    "displaylogo": False,
    "modeBarButtonsToRemove": [
        "select2d",
        "lasso2d",
        "zoomIn2d",
        "zoomOut2d",
        "autoScale2d",
        "toggleSpikelines",
        "hoverClosestCartesian",
        "hoverCompareCartesian",
    ],
}


def build_layout(
    *, kiosk: bool = False, sound: bool = False, refresh_ms: int = 1000, read_only: bool = False
) -> html.Div:
    """The whole page. Kiosk mode hides everything but the banner and the run plots (CSS)."""
    return html.Div(
        id="root",
        className="kiosk" if kiosk else "",
        children=[
            dcc.Location(id="url", refresh=False),
            dcc.Interval(id="tick", interval=refresh_ms, n_intervals=0),
            dcc.Store(id="changed"),
            dcc.Store(id="plot-meta"),
            dcc.Store(id="selected"),
            dcc.Store(id="fail-count", data=0),
            dcc.Store(id="kiosk-default", data=kiosk),
            html.Div(id="beep", style={"display": "none"}),
            html.Header(
                className="topbar",
                children=[
                    html.Span("asnmon", className="brand"),
                    dcc.Dropdown(
                        id="run",
                        placeholder="newest run (follows new runs)",
                        clearable=True,
                        className="run-picker controls",
                    ),
                    # outside .controls: the kiosk keeps it; remembered by this browser
                    dcc.Checklist(
                        id="sound",
                        options=[{"label": " sound on new FAIL", "value": "on"}],
                        value=["on"] if sound else [],
                        className="sound",
                        persistence=True,
                        persistence_type="local",
                    ),
                    html.Span(id="sound-note", className="sound-note"),
                    html.A("kiosk view", href="?kiosk=1", className="kiosk-link controls"),
                    html.A("◀ full view", href="?kiosk=0", className="full-link", id="full-link"),
                    signoff.user_bar(),
                    html.Span("read-only review" if read_only else "live", className="mode-tag"),
                ],
            ),
            html.Section(
                id="banner",
                className="banner",
                children=banner(None, run_counts(None, (), (), None)),
            ),
            html.Section(
                className="run-plots",
                children=[
                    dcc.Graph(id="is-plot", className="run-plot", config=RUN_PLOT_CONFIG),
                    dcc.Graph(id="asn-plot", className="run-plot", config=RUN_PLOT_CONFIG),
                ],
            ),
            html.Section(
                className="detail controls",
                children=[
                    html.Div(className="table-pane", children=injection_table()),
                    html.Div(
                        className="chrom-pane",
                        children=[
                            html.H2("Chromatograms", className="pane-title"),
                            dcc.Graph(id="chrom", config=GRAPH_CONFIG),
                            review_panel(read_only),
                        ],
                    ),
                ],
            ),
            html.Section(
                className="tabs-pane controls",
                children=[
                    dcc.Tabs(
                        id="tabs",
                        value="flags",
                        children=[
                            dcc.Tab(label=label, value=v, id=f"tab-{v}") for v, label in TABS
                        ],
                    ),
                    html.Div(id="pane-flags", className="pane", children=flags_pane(read_only)),
                    html.Div(
                        id="pane-calibration",
                        className="pane",
                        children=[
                            dcc.Graph(id="cal-plot", config=GRAPH_CONFIG),
                            html.Div(id="cal-versions"),
                        ],
                    ),
                    html.Div(id="pane-qc", className="pane", children=[dcc.Graph(id="lj-plot")]),
                    html.Div(
                        id="pane-pools", className="pane", children=[dcc.Graph(id="pools-plot")]
                    ),
                    html.Div(id="pane-signoff", className="pane", children=signoff.pane()),
                ],
            ),
        ],
    )


def injection_table() -> list[Any]:
    return [
        html.Div(
            className="filters",
            children=[
                html.H2("Injections, newest first", className="pane-title"),
                dcc.Dropdown(
                    id="filter-type",
                    options=TYPE_OPTIONS,
                    multi=True,
                    placeholder="all sample types",
                ),
                dcc.Dropdown(id="filter-flag", multi=True, placeholder="any flags"),
            ],
        ),
        html.Div(id="injections", className="inj-table"),
        html.Div(
            className="pager",
            children=[
                html.Button("◀ newer", id="page-newer", n_clicks=0),
                html.Span(id="page-label", children="page 1 / 1"),
                html.Button("older ▶", id="page-older", n_clicks=0),
                dcc.Store(id="page", data=0),
            ],
        ),
    ]


def injection_rows_table(rows: Sequence[Mapping[str, Any]], selected: int | None = None) -> Any:
    """The table: each row clickable (pattern-matching id), flags as severity badges."""
    head = html.Tr([html.Th(name) for _, name in TABLE_COLUMNS])
    body = []
    for r in rows:
        worst = style.SEVERITY.get(r.get("worst") or "")
        cells = []
        for cid, _ in TABLE_COLUMNS:
            if cid == "badges":
                cells.append(html.Td([flag_badge(c, s, a) for c, s, a in r.get("flags", ())]))
            else:
                cells.append(html.Td(r.get(cid, "")))
        body.append(
            html.Tr(
                cells,
                id={"type": "inj-row", "injection": r["injection_id"]},
                n_clicks=0,
                className="inj-row" + (" selected" if r["injection_id"] == selected else ""),
                style={"borderLeft": f"8px solid {worst.colour}"} if worst else {},
            )
        )
    if not body:
        body = [html.Tr(html.Td("No injections match.", colSpan=len(TABLE_COLUMNS)))]
    return html.Table(className="injections", children=[html.Thead(head), html.Tbody(body)])


def flag_badge(code: str, severity: str, acks: int = 0) -> html.Span:
    look = style.severity(severity)
    return html.Span(
        f"{look.icon} {code}" + (" ✓" if acks else ""),
        className="badge",
        title=f"{look.word}" + (" (acknowledged)" if acks else ""),
        style={"background": look.colour, "color": look.text},
    )


def versions_table(calibrations: Sequence[Mapping[str, Any]]) -> Any:
    if not calibrations:
        return html.P("No calibration versions yet.")
    head = html.Tr([html.Th(h) for h in ("Version", "Status", "Model", "Weighting", "r²", "Why")])
    rows = []
    for c in calibrations:
        look = style.verdict("pass" if c.get("accepted") else "fail")
        r2 = c.get("r2")
        rows.append(
            html.Tr(
                [
                    html.Td(f"v{c.get('version')}"),
                    html.Td(
                        f"{look.icon} {'accepted' if c.get('accepted') else 'rejected'}",
                        style={"color": look.colour if c.get("accepted") else style.VERMILION},
                    ),
                    html.Td(c.get("model")),
                    html.Td(c.get("weighting")),
                    html.Td(f"{r2:.4f}" if isinstance(r2, float) else "—"),
                    html.Td(c.get("reason") or ""),
                ]
            )
        )
    return html.Table(className="versions", children=[html.Thead(head), html.Tbody(rows)])
