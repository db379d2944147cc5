"""Rows for the injection table and the flags panel: pure functions of store frames.

Kept apart from the figures because the table is where a reviewer reads the
reportable value, so its wording ("< LLOQ", "> ULOQ — dilute 1:N") must match
what the lab would write in a report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from dashboard import style

REFERENCE_TYPES = ("calibrator", "qc")
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("position", "Pos"),
    ("time", "Time"),
    ("file", "File"),
    ("sample_id", "Sample"),
    ("sample_type", "Type"),
    ("concentration", "Concentration"),
    ("is_pct", "IS %"),
    ("badges", "Flags"),  # rendered from "flags" as badges
)


def details(raw: object) -> dict[str, Any]:
    """A flag's ``details`` JSON as a dict ({} when absent or unreadable)."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def is_reference(results: pl.DataFrame) -> float | None:
    """Mean IS area of the run's calibrators and QCs: what 100 % means."""
    if results.is_empty():
        return None
    ref = results.filter(
        pl.col("sample_type").is_in(REFERENCE_TYPES)
        & pl.col("is_area").is_not_null()
        & (pl.col("is_area") > 0)
    )["is_area"]
    return float(ref.mean()) if len(ref) else None  # type: ignore[arg-type]


def _number(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{min(digits, 3)}f}"


def concentration_text(
    status: str | None,
    conc: float | None,
    unit: str | None,
    *,
    lloq: float | None = None,
    dilution: float | None = None,
    dilute_factor: int | None = None,
    accuracy: float | None = None,
) -> str:
    """The reportable value in words: never an extrapolated number outside the curve.

    ``accuracy``: a standard's or QC's back-calculated accuracy, shown beside its value.
    """
    unit = unit or ""
    if status == "BLQ":
        if lloq is not None:
            return f"< LLOQ ({_number(lloq * (dilution or 1.0))} {unit})".strip()
        return "< LLOQ"
    if status == "ALQ":
        return f"> ULOQ — dilute 1:{dilute_factor}" if dilute_factor else "> ULOQ — dilute"
    if status in ("no_peak", "no_result") or conc is None:
        return "—"
    text = f"{_number(conc)} {unit}".strip()
    if accuracy is not None:  # a calibrator or QC: its back-calculated accuracy beside it
        text += f" ({accuracy:.1f} %)"
    return f"{text} (provisional)" if status == "provisional" else text


def injection_flags(flags: pl.DataFrame) -> dict[int, list[tuple[str, str, int]]]:
    """injection_id -> [(code, severity, acks)], worst first."""
    out: dict[int, list[tuple[str, str, int]]] = {}
    if flags.is_empty():
        return out
    for inj, code, sev, acks in flags.select(
        "injection_id", "code", "severity", "acks"
    ).iter_rows():
        if inj is None:
            continue
        out.setdefault(int(inj), []).append((code, sev, int(acks or 0)))
    for v in out.values():
        v.sort(key=lambda f: (-style.SEVERITY_RANK.get(f[1], 0), f[0]))
    return out


def alq_factors(flags: pl.DataFrame) -> dict[int, int]:
    """injection_id -> suggested dilution from the ALQ flag's details."""
    out: dict[int, int] = {}
    if flags.is_empty():
        return out
    for inj, raw in flags.filter(pl.col("code") == "ALQ").select("injection_id", "details").rows():
        factor = details(raw).get("dilution")
        if inj is not None and isinstance(factor, int | float):
            out[int(inj)] = int(factor)
    return out


def injection_rows(
    results: pl.DataFrame,
    flags: pl.DataFrame,
    *,
    lloq: float | None = None,
    types: Iterable[str] = (),
    codes: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Table rows newest first, filtered by sample type and flag code."""
    if results.is_empty():
        return []
    types, codes = set(types), set(codes)
    ref = is_reference(results)
    per_inj = injection_flags(flags)
    factors = alq_factors(flags)
    frame = results.sort("injection_id", descending=True)
    if types:
        frame = frame.filter(pl.col("sample_type").is_in(sorted(types)))
    rows = []
    for r in frame.iter_rows(named=True):
        inj = int(r["injection_id"])
        inj_flags = per_inj.get(inj, [])
        if codes and not codes & {c for c, _, _ in inj_flags}:
            continue
        is_area = r["is_area"]
        # The QC rules' own number (causal reference) where stored; else the run mean.
        pct = r.get("is_pct")
        if pct is None:
            pct = 100.0 * is_area / ref if ref and is_area is not None else None
        worst = inj_flags[0][1] if inj_flags else ""
        rows.append(
            {
                "id": inj,
                "injection_id": inj,
                "position": r["position"] if r["position"] is not None else "",
                "time": clock_time(r["acquired_at"]),
                "file": r["file"],
                "sample_id": r["sample_id"] or "",
                "sample_type": r["sample_type"] or "",
                "concentration": concentration_text(
                    r["status"],
                    r["conc"],
                    r["unit"],
                    lloq=lloq,
                    dilution=r["dilution"],
                    dilute_factor=factors.get(inj),
                    accuracy=r.get("accuracy_pct") if r["sample_type"] in REFERENCE_TYPES else None,
                ),
                "is_pct": f"{pct:.0f} %" if pct is not None else "—",
                "flags": inj_flags,
                "worst": worst,
            }
        )
    return rows


def clock_time(stamp: object) -> str:
    """HH:MM:SS from an ISO timestamp as the file stated it (UTC 'Z' kept as is)."""
    if not isinstance(stamp, str) or "T" not in stamp:
        return str(stamp or "")
    return stamp.split("T", 1)[1][:8]


def open_flags(flags: pl.DataFrame) -> list[dict[str, Any]]:
    """Flags needing a look: unacknowledged first, then worst first, newest first."""
    if flags.is_empty():
        return []
    rows = list(flags.iter_rows(named=True))
    rows.sort(
        key=lambda f: (
            int(f["acks"] or 0) > 0,
            -style.SEVERITY_RANK.get(f["severity"], 0),
            -int(f["flag_id"]),
        )
    )
    return [
        {
            "flag_id": int(f["flag_id"]),
            "code": f["code"],
            "severity": f["severity"],
            "message": f["message"] or "",
            "action": f["action"] or "",
            "where": _where(f),
            "acks": int(f["acks"] or 0),
        }
        for f in rows
        if f["severity"] != "info" or f["injection_id"] is None
    ]


def _where(f: Mapping[str, Any]) -> str:
    if f.get("injection_id") is None:
        return "whole run"
    pos = f.get("position")
    return f"{f.get('file') or ''}" + (f" (position {pos})" if pos is not None else "")


def flag_codes(flags: pl.DataFrame) -> list[str]:
    return sorted(set(flags["code"].to_list())) if not flags.is_empty() else []
