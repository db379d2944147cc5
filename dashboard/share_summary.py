"""One summary per (instrument, run) from the shared frames: what cards and table show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

# The share keeps flag codes, not severities. These codes are raised as FAIL
# (CARRYOVER and SATURATION only sometimes: counted, because a wall display
# should err towards sending someone to look).
FAIL_CODES = frozenset(
    {
        "NO_PEAK",
        "IS_LOW",
        "IS_HIGH",
        "SATURATION",
        "CARRYOVER",
        "QC_FAIL",
        "CAL_FAIL",
        "RUN_FAIL",
        "READ_ERROR",
        "TRACE_INVALID",
        "WINDOW_NOT_COVERED",
        "CONVERT_ERROR",
        "INCOMPLETE",
        "ERROR",
        "WESTGARD_1_3S",
        "WESTGARD_2_2S",
        "WESTGARD_R_4S",
        "WESTGARD_4_1S",
        "WESTGARD_10X",
    }
)


def _fail_count(codes: str | None) -> int:
    return sum(1 for c in (codes or "").split(";") if c in FAIL_CODES)


def run_summaries(results: pl.DataFrame, runs: pl.DataFrame) -> list[dict[str, Any]]:
    """One dict per (instrument, run), newest first: what the cards and table show."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if not runs.is_empty() and {"instrument", "run_id"} <= set(runs.columns):
        for r in runs.iter_rows(named=True):
            out[(str(r["instrument"]), str(r["run_id"]))] = {
                "instrument": str(r["instrument"]),
                "run_id": str(r["run_id"]),
                "name": r.get("name") or r["run_id"],
                "verdict": r.get("verdict") or "pending",
                "reason": r.get("verdict_reason") or "",
                "injections": int(r.get("injections") or 0),
                "planned": r.get("planned"),
                "created": str(r.get("created_at") or ""),
                "updated": str(r.get("exported_at") or ""),
            }
    if not results.is_empty() and {"instrument", "run_id"} <= set(results.columns):
        order = "injection_id" if "injection_id" in results.columns else "acquired_at"
        for (inst, rid), part in results.sort(order).group_by(
            ["instrument", "run_id"], maintain_order=True
        ):
            codes = part["flags"].to_list() if "flags" in part.columns else []
            row = out.setdefault(
                (str(inst), str(rid)),
                {
                    "instrument": str(inst),
                    "run_id": str(rid),
                    "name": str(rid),
                    "verdict": "pending",
                    "reason": "no runs table exported yet",
                    "injections": part.height,
                    "planned": None,
                    "created": "",
                    "updated": "",
                },
            )
            acquired = [a for a in part["acquired_at"].to_list() if a] if part.height else []
            row["last_injection"] = str(acquired[-1]) if acquired else ""
            row["flagged"] = sum(1 for c in codes if c)
            row["fails"] = sum(_fail_count(c) for c in codes)
            if not row["injections"]:
                row["injections"] = part.height
            if not row["created"]:
                row["created"] = row["last_injection"]
            if not row["updated"] and "ingested_at" in part.columns:
                row["updated"] = str(part["ingested_at"].cast(pl.String).max() or "")
    rows = list(out.values())
    for r in rows:
        r.setdefault("last_injection", "")
        r.setdefault("flagged", 0)
        r.setdefault("fails", 0)
    rows.sort(key=lambda r: (r["created"], r["last_injection"]), reverse=True)
    return rows


def newest_per_instrument(summaries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Each instrument's newest run (summaries come newest first), instruments by name."""
    seen: dict[str, Mapping[str, Any]] = {}
    for s in summaries:
        seen.setdefault(s["instrument"], s)
    return [seen[k] for k in sorted(seen)]
