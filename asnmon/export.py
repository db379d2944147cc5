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
