"""The assay TOML file -> ``Assay``: types, ranges and cross-checks, every problem at once.

Parsing collects *every* problem before raising, because a lab editing a
method file wants one list of fixes, not one error per attempt; each names
its key (``integration.interference.min_sn: must be > 0; got 0.0``).
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import MISSING, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from asnmon.assay.limits import (
    CalibrationSpec,
    Integration,
    InterferenceLimits,
    Limits,
    Retention,
    TraceLimits,
)
from asnmon.assay.model import Assay, Matrix, QcLevel, Review, Transition
from asnmon.errors import AssayError
from asnmon.records import Role

DEFAULT_ASSAY = "asparagine.toml"


def _review(table: Any, probs: _Problems) -> Review:
    """[review]: each key a non-empty list of distinct, non-empty texts."""
    if table is None:
        return Review()
    if not isinstance(table, dict):
        probs.add("review", "must be a table")
        return Review()
    names = [f.name for f in fields(Review)]
    values: dict[str, tuple[str, ...]] = {}
    for key, value in table.items():
        if key not in names:
            probs.unknown("review", key, names)
            continue
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v.strip() for v in value)
        ):
            probs.add(f"review.{key}", "must be a non-empty list of texts")
            continue
        texts = tuple(v.strip() for v in value)
        if len(set(texts)) != len(texts):
            probs.add(f"review.{key}", "lists a reason twice")
            continue
        values[key] = texts
    return Review(**values)


_ASSAY_KEYS: dict[str, tuple[type, Any]] = {
    "name": (str, MISSING),
    "analyte": (str, "asparagine"),
    "internal_standard": (str, ""),
    "unit": (str, "µM"),
    "polarity": (str, "positive"),
    "acquisition": (str, "mrm"),
    "mz_tolerance": (float, 0.5),
    "ppm": (float, 10.0),
}
_TOP_KEYS = (
    "assay",
    "transitions",
    "retention",
    "integration",
    "calibration",
    "qc_levels",
    "calibrators",
    "matrices",
    "limits",
    "traces",
    "review",
)


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, problem: str) -> None:
        self.items.append(f"{key}: {problem}")

    def unknown(self, where: str, key: str, known: tuple[str, ...] | list[str]) -> None:
        close = difflib.get_close_matches(key, list(known), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
        self.add(f"{where}.{key}" if where else key, f"unknown key{hint}")


def _coerce(value: Any, typ: type, key: str, probs: _Problems) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is bool and not isinstance(value, bool):
        probs.add(key, f"must be true or false, got {value!r}")
        return None
    if typ in (int, float) and isinstance(value, bool):
        probs.add(key, f"must be a number, got {value!r}")
        return None
    if not isinstance(value, typ):
        probs.add(key, f"must be {typ.__name__}, got {type(value).__name__} {value!r}")
        return None
    return value


def _section(cls: type, table: Any, where: str, probs: _Problems) -> Any:
    """Build a limits-like dataclass from a table, checking types and ranges."""
    if table is None:
        table = {}
    if not isinstance(table, dict):
        probs.add(where, "must be a table")
        return cls()
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for key in table:
        if key not in names:
            probs.unknown(where, key, names)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in table:
            continue
        key = f"{where}.{f.name}"
        typ = hints[f.name]
        value = _coerce(table[f.name], typ, key, probs)
        if value is None:
            continue
        meta = f.metadata
        if meta.get("choices") and value not in meta["choices"]:
            probs.add(key, f"must be one of {', '.join(meta['choices'])}; got {value!r}")
            continue
        if meta.get("lo") is not None and value < meta["lo"]:
            probs.add(key, f"must be >= {meta['lo']}; got {value}")
            continue
        if meta.get("hi") is not None and value > meta["hi"]:
            probs.add(key, f"must be <= {meta['hi']}; got {value}")
            continue
        if meta.get("above") is not None and not value > meta["above"]:
            probs.add(key, f"must be > {meta['above']}; got {value}")
            continue
        kwargs[f.name] = value
    return cls(**kwargs)


def _integration(table: Any, probs: _Problems) -> Integration:
    """[integration] and its [integration.interference] sub-table."""
    if not isinstance(table, dict) or "interference" not in table:
        return _section(Integration, table, "integration", probs)
    rest = {k: v for k, v in table.items() if k != "interference"}
    sub = _section(InterferenceLimits, table["interference"], "integration.interference", probs)
    return replace(_section(Integration, rest, "integration", probs), interference=sub)


def _transitions(items: Any, probs: _Problems) -> tuple[Transition, ...]:
    if not isinstance(items, list) or not items:
        probs.add("transitions", "at least one [[transitions]] table is required")
        return ()
    out: list[Transition] = []
    known = ("id", "name", "q1", "q3", "role")
    roles = tuple(r.value for r in Role)
    for i, t in enumerate(items):
        where = f"transitions[{i}]"
        if not isinstance(t, dict):
            probs.add(where, "must be a table")
            continue
        for key in t:
            if key not in known:
                probs.unknown(where, key, known)
        tid = t.get("id")
        if not isinstance(tid, str) or not tid:
            probs.add(f"{where}.id", "required, a non-empty string")
            continue
        q1 = t.get("q1")
        q3 = t.get("q3")
        if not isinstance(q1, int | float) or isinstance(q1, bool) or q1 <= 0:
            probs.add(f"{where}.q1", f"required, a positive m/z; got {q1!r}")
            continue
        if q3 is not None and (not isinstance(q3, int | float) or isinstance(q3, bool) or q3 <= 0):
            probs.add(f"{where}.q3", f"must be a positive m/z; got {q3!r}")
            continue
        role = t.get("role")
        if role not in roles:
            probs.add(f"{where}.role", f"must be one of {', '.join(roles)}; got {role!r}")
            continue
        out.append(
            Transition(
                id=tid,
                name=str(t.get("name", tid)),
                q1=float(q1),
                q3=None if q3 is None else float(q3),
                role=Role(role),
            )
        )
    ids = [t.id for t in out]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        probs.add("transitions", f"id '{dup}' is used more than once")
    if len(out) == len(items):
        n = sum(t.role == Role.ANALYTE_QUANT for t in out)
        if n != 1:
            probs.add(
                "transitions", f"exactly one transition must have role 'analyte_quant'; found {n}"
            )
        n_is = sum(t.role == Role.IS_QUANT for t in out)
        if n_is > 1:
            probs.add(
                "transitions",
                f"at most one transition may have role 'is_quant' (none: external "
                f"calibration); found {n_is}",
            )
        if n_is == 0 and any(t.role == Role.IS_QUAL for t in out):
            probs.add("transitions", "an 'is_qual' transition needs an 'is_quant' transition")
    return tuple(out)


def _named_list(items: Any, where: str, cls: type, probs: _Problems) -> tuple[Any, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        probs.add(where, "must be a list of tables ([[...]])")
        return ()
    hints = get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    out = []
    for i, item in enumerate(items):
        key = f"{where}[{i}]"
        if not isinstance(item, dict):
            probs.add(key, "must be a table")
            continue
        kwargs: dict[str, Any] = {}
        ok = True
        for k, v in item.items():
            if k not in names:
                probs.unknown(key, k, names)
                ok = False
                continue
            base = float if "float" in str(hints[k]) else str
            value = _coerce(v, base, f"{key}.{k}", probs)
            if value is None:
                ok = False
            kwargs[k] = value
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in kwargs]
        for m in missing:
            probs.add(f"{key}.{m}", "required")
            ok = False
        if ok:
            out.append(cls(**kwargs))
    names_seen = [o.name for o in out]
    for dup in sorted({n for n in names_seen if names_seen.count(n) > 1}):
        probs.add(where, f"name '{dup}' is used more than once")
    return tuple(out)


def parse_assay(data: dict[str, Any], source_path: str | None = None) -> Assay:
    """Validate a parsed TOML document; raise AssayError listing every problem."""
    probs = _Problems()
    for key in data:
        if key not in _TOP_KEYS:
            probs.unknown("", key, _TOP_KEYS)
    head = data.get("assay", {})
    if not isinstance(head, dict):
        probs.add("assay", "must be a table")
        head = {}
    for key in head:
        if key not in _ASSAY_KEYS:
            probs.unknown("assay", key, list(_ASSAY_KEYS))
    values: dict[str, Any] = {}
    for key, (typ, default) in _ASSAY_KEYS.items():
        if key in head:
            values[key] = _coerce(head[key], typ, f"assay.{key}", probs)
        elif default is MISSING:
            probs.add(f"assay.{key}", "required")
        else:
            values[key] = default
    if values.get("polarity") not in (None, "positive", "negative"):
        probs.add("assay.polarity", f"must be positive or negative; got {values['polarity']!r}")
    if values.get("acquisition") not in (None, "mrm", "full_scan"):
        probs.add("assay.acquisition", f"must be mrm or full_scan; got {values['acquisition']!r}")
    for key in ("mz_tolerance", "ppm"):
        if isinstance(values.get(key), float) and values[key] <= 0:
            probs.add(f"assay.{key}", f"must be > 0; got {values[key]}")

    transitions = _transitions(data.get("transitions"), probs)
    retention = _section(Retention, data.get("retention"), "retention", probs)
    integration = _integration(data.get("integration"), probs)
    calibration = _section(CalibrationSpec, data.get("calibration"), "calibration", probs)
    limits = _section(Limits, data.get("limits"), "limits", probs)
    traces = _section(TraceLimits, data.get("traces"), "traces", probs)
    review = _review(data.get("review"), probs)
    qc_levels = _named_list(data.get("qc_levels"), "qc_levels", QcLevel, probs)
    matrices = _named_list(data.get("matrices"), "matrices", Matrix, probs)
    calibrators = _named_list(data.get("calibrators"), "calibrators", QcLevel, probs)

    if calibration.lloq >= calibration.uloq:
        probs.add(
            "calibration.lloq",
            f"must be below calibration.uloq ({calibration.lloq} >= {calibration.uloq})",
        )
    if limits.is_low_pct >= limits.is_high_pct:
        probs.add("limits.is_low_pct", "must be below limits.is_high_pct")
    for m in matrices:
        if m.ref_low is not None and m.ref_high is not None and m.ref_low > m.ref_high:
            probs.add(f"matrices.{m.name}", f"ref_low {m.ref_low} is above ref_high {m.ref_high}")
    for q in qc_levels:
        if not calibration.lloq <= q.nominal <= calibration.uloq:
            probs.add(
                f"qc_levels.{q.name}.nominal",
                f"{q.nominal} lies outside the calibrated range "
                f"{calibration.lloq}-{calibration.uloq}",
            )

    if probs.items:
        where = source_path or "assay"
        raise AssayError(
            f"{where}: {len(probs.items)} problem(s):\n  - " + "\n  - ".join(probs.items),
            tuple(probs.items),
        )
    return Assay(
        transitions=transitions,
        retention=retention,
        integration=integration,
        calibration=calibration,
        qc_levels=qc_levels,
        matrices=matrices,
        limits=limits,
        source_path=source_path,
        calibrators=calibrators,
        traces=traces,
        review=review,
        **values,
    )


def load_assay(path: str | Path | None = None) -> Assay:
    """Load an assay file; ``None`` loads the shipped asparagine assay."""
    if path is None:
        text = resources.files("asnmon.data").joinpath(DEFAULT_ASSAY).read_text("utf-8")
        where = f"(built-in) {DEFAULT_ASSAY}"
    else:
        p = Path(path)
        try:
            text = p.read_text("utf-8")
        except FileNotFoundError as exc:
            raise AssayError(f"{p}: no such assay file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise AssayError(f"{p}: cannot be read ({exc})") from exc
        where = str(p)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AssayError(f"{where}: not valid TOML ({exc})") from exc
    return parse_assay(data, where)
