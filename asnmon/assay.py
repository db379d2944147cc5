"""The assay: a TOML file parsed once into frozen dataclasses.

Each limit carries its default and the rule it comes from (``source`` in the
field metadata), so flag messages, ``check-assay`` and the README all name the
same source. Parsing collects *every* problem before raising, because a lab
editing a method file wants one list of fixes, not one error per attempt.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from asnmon.errors import AssayError
from asnmon.records import Role

DEFAULT_ASSAY = "asparagine.toml"


def _f(
    default: Any,
    source: str = "",
    help: str = "",
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] = (),
) -> Any:
    """A field with its default, its source and its allowed range."""
    meta = {"source": source, "help": help, "lo": lo, "hi": hi, "choices": choices}
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class Transition:
    id: str
    name: str
    q1: float
    q3: float | None  # None: a precursor-only XIC (full-scan MS1)
    role: Role


@dataclass(frozen=True, slots=True)
class Retention:
    expected_rt: float = _f(3.2, help="min, expected IS apex", lo=0.0)
    window: float = _f(0.6, help="min, half-width searched for the IS peak", lo=0.0)
    analyte_window: float = _f(0.1, help="min, half-width around the IS apex", lo=0.0)


@dataclass(frozen=True, slots=True)
class Integration:
    boundaries: str = _f(
        "group",
        source="OpenMS MRMTransitionGroupPicker / Skyline: one peak per transition group",
        help="group: analyte and IS share boundaries; per_transition: each trace its own",
        choices=("group", "per_transition"),
    )
    smoothing_points: int = _f(
        0, help="Savitzky-Golay window for detection; 0 = sized to the peak", lo=0, hi=51
    )
    valley_depth: float = _f(
        0.5,
        source="asnmon default: a valley splits two apexes only if it dips this fraction "
        "of the smaller apex (noise dips on spiky tops stay one peak)",
        lo=0.0,
        hi=1.0,
    )
    truncation_pct: float = _f(
        1.0,
        source="asnmon default: a cut where the signal is still >= 1 % of the apex "
        "loses about 1 % of the area or more",
        lo=0.0,
    )
    min_points_across: int = _f(8, source="common LC-MS practice (>= 8-10 points per peak)", lo=1)
    min_sn: float = _f(10.0, source="LLOQ convention S/N >= 10 (ICH M10 / CLSI C62-A)", lo=0)
    saturation_intensity: float = _f(1.0e9, help="detector ceiling", lo=0)


@dataclass(frozen=True, slots=True)
class TraceLimits:
    """Checks on each trace before integration (``asnmon/traces.py``)."""

    max_point_spacing_s: float = _f(
        10.0,
        source="MRM cycle times are 0.02-5 s (real files: 0.1-3.4 s); seconds labelled "
        "minutes give 60x that",
        lo=0,
    )
    max_span_min: float = _f(
        240.0,
        source="longest LC gradient of a targeted method (2-3 h); seconds labelled minutes "
        "give 60x the run",
        lo=0,
    )
    cut_apex_fraction: float = _f(
        0.5,
        source="a peak cut above half its height has lost its top: its area is not "
        "an estimate (asnmon)",
        lo=0,
        hi=1,
    )


@dataclass(frozen=True, slots=True)
class CalibrationSpec:
    model: str = _f(
        "linear", source="ICH M10 (simplest adequate model)", choices=("linear", "quadratic")
    )
    weighting: str = _f(
        "1/x^2", source="Gu et al. 2014 (LC-MS/MS default)", choices=("1/x^2", "1/x", "none")
    )
    zero_intercept: bool = _f(False)
    lloq: float = _f(1.0, help="lowest calibrator", lo=0)
    uloq: float = _f(500.0, help="highest calibrator", lo=0)
    min_levels: int = _f(6, source="ICH M10: >= 6 non-zero levels", lo=2)
    accuracy_pct: float = _f(15.0, source="ICH M10: back-calculated within ±15 %", lo=0)
    accuracy_lloq_pct: float = _f(20.0, source="ICH M10: ±20 % at the LLOQ", lo=0)
    min_pass_fraction: float = _f(0.75, source="ICH M10: >= 75 % of standards", lo=0, hi=1)
    r2_min: float = _f(0.995, source="CLSI C62-A recommendation (warning only)", lo=0, hi=1)


@dataclass(frozen=True, slots=True)
class QcLevel:
    name: str
    nominal: float


@dataclass(frozen=True, slots=True)
class Matrix:
    name: str
    ref_low: float | None = None
    ref_high: float | None = None
    depleted_below: float | None = None
    normalized_unit: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    is_low_pct: float = _f(50.0, source="lab convention, FDA 2019 IS Q&A", lo=0)
    is_high_pct: float = _f(150.0, source="lab convention, FDA 2019 IS Q&A", lo=0)
    is_reference: str = _f(
        "cal_qc",
        source="mean IS of accepted calibrators and QCs",
        choices=("cal_qc", "calibrators", "all"),
    )
    rt_tolerance_pct: float = _f(2.5, source="CLSI C62-A", lo=0)
    rt_tolerance_min_floor: float = _f(
        0.1,
        source="SANTE/11312/2021 and Regulation (EU) 2021/808 (sample vs standard RT "
        "within ±0.1 min); "
        "CLSI C62-A's 2.5 % is below one MRM cycle at an early RT",
        lo=0,
    )
    coelution_tolerance: float = _f(
        0.05, source="stable-isotope IS co-elution", help="min, analyte apex vs IS apex", lo=0
    )
    coelution_min_r: float = _f(
        0.9,
        source="asnmon default; cf. the cross-correlation shape score of OpenMS/mProphet",
        help="analyte vs IS profile correlation inside the shared boundaries",
        lo=-1.0,
        hi=1.0,
    )
    ion_ratio_tolerance_pct: float = _f(20.0, source="CLSI C62-A", lo=0)
    ion_ratio_weak_tolerance_pct: float = _f(
        25.0, source="vendor practice for weak qualifiers", lo=0
    )
    weak_qualifier_ratio: float = _f(0.5, source="CLSI C62-A", lo=0)
    carryover_analyte_pct_lloq: float = _f(20.0, source="ICH M10; CLSI C62-A", lo=0)
    carryover_is_pct: float = _f(5.0, source="ICH M10; CLSI C62-A", lo=0)
    qc_accuracy_pct: float = _f(15.0, source="ICH M10", lo=0)
    qc_accuracy_lloq_pct: float = _f(20.0, source="ICH M10", lo=0)
    run_qc_pass_fraction: float = _f(0.667, source="ICH M10: >= 2/3 of QCs", lo=0, hi=1)
    run_qc_level_pass_fraction: float = _f(0.5, source="ICH M10: >= 50 % per level", lo=0, hi=1)
    cusum_k: float = _f(0.5, source="Panorama (CUSUM k = 0.5 SD)", lo=0)
    cusum_h: float = _f(5.0, source="Panorama (CUSUM h = 5 SD)", lo=0)
    is_drift_baseline_n: int = _f(
        8,
        source="in-control injections that set the IS level "
        "before CUSUM decides (asnmon, benchmarks/drift.py)",
        lo=2,
    )
    is_drift_min_cv_pct: float = _f(
        3.0, source="SD floor, below CLSI C62-A's expected 5-10 % IS CV", lo=0
    )
    is_drift_clip_sd: float = _f(
        3.0, source="robust CUSUM: one outlier adds at most clip - k SD", lo=0
    )
    is_drift_min_rate_pct: float = _f(
        0.75,
        source="confirmation: the IS must still "
        "be moving this many % per injection (benchmarks/drift.py)",
        lo=0,
    )
    is_drift_slope_window: int = _f(10, source="points for the Theil-Sen drift rate", lo=2)
    rt_trend_n: int = _f(
        15, source="injections in the Theil-Sen RT trend (asnmon default, RT_TREND)", lo=3
    )
    rt_trend_horizon: int = _f(
        20,
        source="[derived] RT_TREND warns when the RT trend reaches the tolerance within this "
        "many injections (about two QC brackets)",
        lo=1,
    )
    is_drift_forecast_confidence: float = _f(
        0.90, source="confidence of the drift rate's interval (Sen 1968)", lo=0.5, hi=0.999
    )
    is_drift_escalate_n: int = _f(
        10,
        source="[derived] about one QC bracket: IS_DRIFT becomes a fail when the forecast "
        "crossing is this few injections away, time to pause the queue",
        lo=0,
    )
    is_bias_n: int = _f(10, source="FDA 2019 IS Q&A (sample IS consistently higher/lower)", lo=2)
    is_bias_pct: float = _f(
        20.0,
        source="FDA 2019 IS Q&A; 20 % is far beyond the noise of a 10-sample mean at 4 % CV",
        lo=0,
    )


@dataclass(frozen=True, slots=True)
class Assay:
    name: str
    analyte: str
    internal_standard: str
    unit: str
    polarity: str
    acquisition: str
    mz_tolerance: float
    ppm: float
    transitions: tuple[Transition, ...]
    retention: Retention
    integration: Integration
    calibration: CalibrationSpec
    qc_levels: tuple[QcLevel, ...]
    matrices: tuple[Matrix, ...]
    limits: Limits
    source_path: str | None = None
    calibrators: tuple[QcLevel, ...] = ()  # level names -> nominal, for the file-name convention
    traces: TraceLimits = field(default_factory=TraceLimits)

    def by_role(self, role: Role) -> Transition | None:
        return next((t for t in self.transitions if t.role == role), None)

    @property
    def analyte_quant(self) -> Transition:
        t = self.by_role(Role.ANALYTE_QUANT)
        if t is None:  # parse_assay guarantees one; kept for the type checker
            raise AssayError("the assay has no analyte_quant transition")
        return t

    @property
    def is_quant(self) -> Transition | None:
        """The internal standard's quantifier; None for an external calibration."""
        return self.by_role(Role.IS_QUANT)

    @property
    def external_calibration(self) -> bool:
        """No internal standard: quantified on the analyte area, IS rules not applied."""
        return self.is_quant is None

    def matrix(self, name: str | None) -> Matrix | None:
        return next((m for m in self.matrices if m.name == name), None)

    def qc_level(self, name: str | None) -> QcLevel | None:
        return next((q for q in self.qc_levels if q.name == name), None)

    def nominal(self, level: str | None) -> float | None:
        """The nominal concentration of a QC or calibrator level (``QC-L``, ``CAL03``)."""
        found = self.qc_level(level) or next((c for c in self.calibrators if c.name == level), None)
        return found.nominal if found else None


# ---------------------------------------------------------------- parsing

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
        kwargs[f.name] = value
    return cls(**kwargs)


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
    integration = _section(Integration, data.get("integration"), "integration", probs)
    calibration = _section(CalibrationSpec, data.get("calibration"), "calibration", probs)
    limits = _section(Limits, data.get("limits"), "limits", probs)
    traces = _section(TraceLimits, data.get("traces"), "traces", probs)
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


def limit_sources() -> list[tuple[str, str, Any, str]]:
    """(section, key, default, source) for every documented limit: README and check-assay."""
    rows = []
    for section, cls in (
        ("integration", Integration),
        ("calibration", CalibrationSpec),
        ("limits", Limits),
        ("traces", TraceLimits),
    ):
        for f in fields(cls):
            if f.metadata.get("source"):
                rows.append((section, f.name, f.default, f.metadata["source"]))
    return rows
