"""HTML pieces of the report: escaping, tables, figures and the print stylesheet.

Print rules, so that no page holds a stray label: a figure, a signature and a
heading with what follows it are never split (``break-inside: avoid`` on a
wrapper — Chromium does not honour ``break-after: avoid`` on headings in every
layout), long tables repeat their header on each page and never split a row,
and each chromatogram is a page of its own. Every page's footer names the run
and says "page N of M", so a printed page can be traced to its record.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence

import plotly.graph_objects as go
import polars as pl

from asnmon.report.format import cell, label

_CONFIG = {"staticPlot": True, "displayModeBar": False}

CSS = """
body { font-family: "DejaVu Sans", system-ui, sans-serif; margin: 2em; color: #222;
       font-size: 10pt; }
h1 { font-size: 1.5em; margin: 0 0 0.3em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #999; margin-top: 1.2em; }
h3 { font-size: 1.05em; margin: 0.8em 0 0.3em; }
h2, h3 { break-after: avoid; page-break-after: avoid; }
table { border-collapse: collapse; font-size: 8pt; margin: 0.4em 0 1em; width: 100%; }
th, td { border: 1px solid #bbb; padding: 2px 4px; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
.small { font-size: 7pt; color: #555; }
.fail { color: #b23c00; font-weight: bold; } .warning { color: #8a5a00; }
.info { color: #0b5a8a; } .pass { color: #00704f; font-weight: bold; }
.withdrawn { color: #777; }
.verdict { font-size: 1.3em; padding: 0.15em 0.5em; border: 2px solid currentColor; }
.state { border: 1px solid #999; padding: 0.5em 0.8em; margin: 0.6em 0; }
.state.locked { border: 2px solid #000; }
.keep, .figure, .signature { break-inside: avoid; page-break-inside: avoid; }
.figure { width: 700px; margin: 0.3em 0; }
section.page { break-before: page; page-break-before: always; }
.meta td:first-child { width: 11em; font-weight: bold; }
.meta { width: auto; }
@page {
  size: A4; margin: 12mm 12mm 16mm;
  @bottom-left { content: __FOOTER__; font-size: 8pt; color: #555; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt;
                  color: #555; }
}
@media print { body { margin: 0; } }
"""


def esc(x: object) -> str:
    if x is None:
        return ""
    return html.escape(str(x))


def css_string(text: str) -> str:
    """A CSS string literal (for the page footer): quotes and backslashes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def stylesheet(footer: str) -> str:
    return CSS.replace("__FOOTER__", css_string(footer))


def value_text(value: object) -> str:
    """An audit old/new value for people: JSON objects as ``key: value`` lines."""
    if value is None:
        return ""
    text = str(value)
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in parsed.items())
    return _plain(parsed)


def _plain(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return repr(v)  # as recorded: the shortest text that gives the value back
    if isinstance(v, list):
        return ", ".join(_plain(x) for x in v)
    if isinstance(v, dict):
        return "{" + "; ".join(f"{k}: {_plain(x)}" for k, x in v.items()) + "}"
    return str(v)


NUMERIC = (pl.Float64, pl.Float32, pl.Int64, pl.Int32, pl.Int16, pl.Int8, pl.UInt32, pl.UInt64)


def table_html(
    df: pl.DataFrame,
    columns: Sequence[str],
    *,
    unit: str = "µM",
    headings: Mapping[str, str] | None = None,
    render: Mapping[str, Callable[[dict[str, object]], str]] | None = None,
    row_class: Callable[[dict[str, object]], str] | None = None,
    empty: str = "None.",
) -> str:
    """An HTML table of ``columns`` with people's headings and the report's rounding.

    ``render`` gives a column its own HTML from the whole row (already escaped by
    the caller); a ``severity``/``verdict`` column colours its row unless
    ``row_class`` says otherwise.
    """
    render = render or {}
    headings = headings or {}
    cols = [c for c in columns if c in df.columns or c in render]
    if df.height == 0:
        return f"<p>{esc(empty)}</p>"
    head = "".join(f"<th>{esc(headings.get(c) or label(c, unit))}</th>" for c in cols)
    numeric = {c for c in cols if c in df.columns and df.schema[c] in NUMERIC}
    rows = []
    for rec in df.iter_rows(named=True):
        cells = []
        for c in cols:
            if c in render:
                cells.append(f"<td>{render[c](rec)}</td>")
            else:
                cls = ' class="num"' if c in numeric else ""
                cells.append(f"<td{cls}>{esc(cell(c, rec.get(c)))}</td>")
        if row_class is not None:
            klass = row_class(rec)
        else:
            klass = str(rec.get("severity") or rec.get("verdict") or "")
        attr = f' class="{esc(klass)}"' if klass else ""
        rows.append(f"<tr{attr}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


class Figures:
    """Figures to HTML, plotly.js inlined once (the first figure), so the file is offline."""

    def __init__(self) -> None:
        self._first = True

    def __call__(self, fig: go.Figure) -> str:
        body = fig.to_html(full_html=False, include_plotlyjs=self._first, config=_CONFIG)
        self._first = False
        return f'<div class="figure">{body}</div>'


def document(title: str, footer: str, body: Sequence[str]) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{stylesheet(footer)}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
