"""Results as files other programs open: CSV safe for spreadsheets, Parquet as typed.

A CSV cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return) is run as a formula by Excel, LibreOffice and Google Sheets; a
worklist's sample id ``=HYPERLINK("http://...")`` would become a live link in
the lab's report. Following the OWASP guidance on CSV injection
(https://owasp.org/www-community/attacks/CSV_Injection), such *text* cells
are written with a leading single quote, which spreadsheets show as text.
Numbers are left alone: a real negative value stays a number.

A CSV starts with a UTF-8 byte-order mark: without it Excel reads the file as
the PC's ANSI code page and "µM" becomes "Âµm". Its numbers are rounded by the
report's rule (``asnmon.report.format``: concentrations to 3 significant
figures, areas as integers, % to 1 decimal) unless ``full_precision``; Parquet
keeps every value as stored, typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from asnmon.errors import AsnmonError
from asnmon.report.format import round_for_export

FORMATS = (".csv", ".txt", ".parquet")
# OWASP's list of characters that start a formula in common spreadsheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_STARTS_FORMULA = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_START) + "]"


def quote_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell that would start a formula, prefixed with ``'``; numbers untouched."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_STARTS_FORMULA))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


def write_results(frame: pl.DataFrame, out: Path, *, full_precision: bool = False) -> None:
    """``.csv``/``.txt`` (formula-safe, BOM, rounded) or ``.parquet`` (typed, unchanged)."""
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        frame.write_parquet(out)
    elif suffix in (".csv", ".txt"):
        table = frame if full_precision else round_for_export(frame)
        quote_formulas(table).write_csv(out, include_bom=True)
    else:
        raise AsnmonError(f"unknown format '{out.suffix}': use .csv or .parquet")


def runs_table(store: Any) -> pl.DataFrame:
    """One row per run: verdict, counts, open fail flags and sign-off state (newest first).

    Built from the store's read methods (runs, results, open_fail_counts,
    sign_state), so it lists the same numbers the report and the dashboard show;
    the flags of all runs are counted in one query, not one per run.
    """
    runs = store.runs()
    schema = {
        "run_id": pl.String,
        "created": pl.String,
        "verdict": pl.String,
        "injections": pl.Int64,
        "samples": pl.Int64,
        "reported": pl.Int64,
        "blq": pl.Int64,
        "alq": pl.Int64,
        "no_result": pl.Int64,
        "open_fails": pl.Int64,
        "sign_off": pl.String,
    }
    if runs.height == 0:
        return pl.DataFrame(schema=schema)
    results = store.results()
    open_fails = store.open_fail_counts()
    rows = []
    for run in runs.iter_rows(named=True):
        run_id = str(run["run_id"])
        res = results.filter(pl.col("run_id") == run_id)
        samples = res.filter(pl.col("sample_type") == "sample")
        state = store.sign_state(run_id) if hasattr(store, "sign_state") else "open"
        rows.append(
            {
                "run_id": run_id,
                "created": str(run.get("created_at") or "")[:16],
                "verdict": str(run.get("verdict") or "pending"),
                "injections": res.height,
                "samples": samples.height,
                "reported": samples.filter(pl.col("status") == "ok").height,
                "blq": samples.filter(pl.col("status") == "BLQ").height,
                "alq": samples.filter(pl.col("status") == "ALQ").height,
                "no_result": res.filter(pl.col("status").is_in(["no_result", "no_peak"])).height,
                "open_fails": open_fails.get(run_id, 0),
                "sign_off": "approved (locked)" if state == "approved" else state,
            }
        )
    return pl.DataFrame(rows, schema=schema)


RUNS_HEADINGS = {
    "run_id": "RUN",
    "created": "CREATED",
    "verdict": "VERDICT",
    "injections": "INJ",
    "samples": "SAMPLES",
    "reported": "REPORTED",
    "blq": "<LLOQ",
    "alq": ">ULOQ",
    "no_result": "NO RESULT",
    "open_fails": "OPEN FAILS",
    "sign_off": "SIGN-OFF",
}


def format_runs(table: pl.DataFrame) -> str:
    """The runs table as aligned text for a terminal."""
    cols = list(RUNS_HEADINGS)
    cells = [[RUNS_HEADINGS[c] for c in cols]]
    for row in table.iter_rows(named=True):
        cells.append([str(row[c]).upper() if c == "verdict" else str(row[c]) for c in cols])
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    numeric = {c for c, t in table.schema.items() if t == pl.Int64}
    lines = []
    for r in cells:
        parts = [
            v.rjust(w) if cols[i] in numeric else v.ljust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
