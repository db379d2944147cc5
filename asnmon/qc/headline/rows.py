"""The flag record the screen works from, and the small readers its modules share."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class FlagRow:
    """One stored flag as the screen needs it (``position``: acquisition position)."""

    flag_id: int
    code: str
    severity: str
    injection_id: int | None = None
    position: int | None = None
    sample_id: str = ""
    file: str = ""
    acks: int = 0
    message: str = ""
    action: str = ""
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    limit: float | None = None  # the flag's limit (RT_TREND: its tolerance, min)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> FlagRow:
        """From a ``Store.flags`` row (``details`` JSON text or a mapping)."""
        raw = row.get("details")
        details: Any = raw
        if isinstance(raw, str):
            try:
                details = json.loads(raw) if raw else {}
            except ValueError:
                details = {}
        if not isinstance(details, Mapping):
            details = {}
        inj = row.get("injection_id")
        pos = row.get("position")
        return cls(
            flag_id=int(row["flag_id"]),
            code=str(row["code"]),
            severity=str(row.get("severity") or "info"),
            injection_id=int(inj) if inj is not None else None,
            position=int(pos) if pos is not None else None,
            sample_id=str(row.get("sample_id") or ""),
            file=str(row.get("file") or ""),
            acks=int(row.get("acks") or 0),
            message=str(row.get("message") or ""),
            action=str(row.get("action") or ""),
            details=MappingProxyType(dict(details)),
            limit=finite(row.get("limit_value")),
        )

    @property
    def acknowledged(self) -> bool:
        return self.acks > 0

    @property
    def who(self) -> str:
        """'injection 62 (S-041)': how a person names it; never the database id."""
        if self.injection_id is None:
            return "the whole run"
        name = self.sample_id or self.file
        if self.position is None:
            return f"{name} (not in the worklist)" if name else "an unlisted injection"
        return f"injection {self.position}" + (f" ({name})" if name else "")


def finite(value: object) -> float | None:
    """A finite number from a details value, or None (bools, text and NaN are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def hhmm(stamp: object) -> str:
    """HH:MM of an ISO timestamp, as it was written (the instrument's clock)."""
    if not isinstance(stamp, str) or "T" not in stamp:
        return ""
    return stamp.split("T", 1)[1][:5]


def makes_card(f: FlagRow) -> bool:
    """Info flags on one injection are notes, not work: they make no card."""
    return f.severity != "info" or f.injection_id is None
