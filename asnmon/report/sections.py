"""The measurement sections of the report: header, results, calibration, QC, IS.

Each builder takes the ``ReportData`` record (and the shared ``Figures``
inliner) and returns HTML; nothing here reads the store.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import polars as pl

from asnmon.report.data import ReportData
from asnmon.report.figures import calibration_figure, is_response_figure, levey_jennings_figure
from asnmon.report.format import pct, result_text, sig
from asnmon.report.html import Figures, esc, table_html
from asnmon.westgard import guides_for, qc_points

VERDICT_CLASS = {"pass": "pass", "fail": "fail", "at risk": "warning", "pending": "warning"}


def asnmon_version() -> str:
    try:
        return version("asnmon")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "unknown"


def _signed(r: dict[str, object]) -> str:
    when = r.get("signed_at") or r.get("at_utc") or r.get("at")
    who = r.get("name") or r.get("printed_name") or r.get("actor") or "?"
    role = f" ({r['role']})" if r.get("role") else ""
    stamp = f" on {str(when)[:19]} UTC" if when else ""
    return f"{str(r.get('meaning') or 'signed').capitalize()} by {who}{role}{stamp}"


def signoff_state(data: ReportData) -> tuple[str, str]:
    """(css class, sentence): whether these results are released, in words.

    Only the current sign-off cycle counts: a reopen ends the one before it.
    """
    sigs = data.signatures
    if sigs.height and "current" in sigs.columns:
        sigs = sigs.filter(pl.col("current"))
    signed = [_signed(r) for r in sigs.iter_rows(named=True)] if sigs.height else []
    if signed and data.results_digest and "results_digest" in sigs.columns:
        last = str(sigs["results_digest"][-1] or "")
        if last and last != data.results_digest:
            signed.append(
                f"THE RESULTS CHANGED after the last signature (signed SHA-256 {last[:12]}…, "
                f"now {data.results_digest[:12]}…): they must be reviewed again"
            )
        elif last:
            signed.append(f"the results are those signed (SHA-256 {last[:12]}…)")
    if data.lock.locked:
        text = "LOCKED: approved; any change needs a reopen with a reason. " + data.lock.message
        return "state locked", text + (" " + "; ".join(signed) + "." if signed else "")
    if signed:
        return "state", "; ".join(signed) + ". Not approved: the results are not released yet."
    return "state", "NOT SIGNED: no review or approval is recorded; these results are not released."


def header(data: ReportData) -> str:
    run, assay = data.run, data.assay
    verdict = str(run.get("verdict") or "pending")
    cal = assay.calibration
    counts = (
        data.results.group_by("sample_type").len().sort("sample_type")
        if data.results.height
        else pl.DataFrame()
    )
    by_type = ", ".join(f"{r['len']} {r['sample_type']}" for r in counts.iter_rows(named=True))
    planned = run.get("planned")
    rows = [
        ("Run", run.get("run_id")),
        ("Folder", run.get("folder")),
        ("Worklist", run.get("worklist")),
        (
            "Assay",
            f"{assay.name}: {assay.analyte} with {assay.internal_standard}; "
            f"{cal.model} {cal.weighting}, {sig(run.get('lloq') or cal.lloq)}–"
            f"{sig(run.get('uloq') or cal.uloq)} {assay.unit}",
        ),
        ("Created", str(run.get("created_at") or "")[:19]),
        (
            "Injections",
            f"{data.results.height}"
            + (f" of {planned} planned" if planned else "")
            + f" ({by_type})",
        ),
        (
            "Generated",
            f"{data.generated_at:%Y-%m-%d %H:%M:%S} UTC by asnmon {asnmon_version()} "
            f"from {data.database}",
        ),
    ]
    meta = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows if v)
    state_class, state = signoff_state(data)
    return (
        f"<h1>Run report: {esc(run.get('name') or data.run_id)}</h1>"
        f'<table class="meta">{meta}</table>'
        f'<p>Verdict: <span class="verdict {VERDICT_CLASS.get(verdict, "warning")}">'
        f"{esc(verdict.upper())}</span> {esc(run.get('verdict_reason'))}</p>"
        f'<div class="{state_class}"><b>Sign-off.</b> {esc(state)}</div>'
        f"<p>{esc(audit_summary(data))}</p>"
        "<p class='small'>This report shows the database at the time above. Later changes "
        "(reintegration, exclusion, edits, sign-off) appear in a report generated after them; "
        "nothing is deleted from the database.</p>"
    )


def audit_summary(data: ReportData) -> str:
    if data.audit_problems is None:
        return "Audit trail: this database keeps none (written by an asnmon before audit trails)."
    n = data.audit.height
    head = ""
    if data.audit_head is not None:
        event_id, digest = data.audit_head
        head = f" (newest event {event_id}, hash {digest[:16]}…)"
    if data.audit_problems:
        return (
            f"Audit trail: {n} event(s) for this run. THE CHAIN IS BROKEN — the history was "
            f"altered: {' '.join(data.audit_problems[:3])}"
            + (f" (+{len(data.audit_problems) - 3} more)" if len(data.audit_problems) > 3 else "")
        )
    return (
        f"Audit trail: {n} event(s) for this run; the database's hash chain verified intact{head}."
    )


def _changed(data: ReportData) -> dict[int, list[str]]:
    """Injection id -> the actions recorded on it (reintegrate, exclude, edit ...)."""
    out: dict[int, list[str]] = {}
    if data.audit.height and "injection_id" in data.audit.columns:
        for r in data.audit.filter(pl.col("injection_id").is_not_null()).iter_rows(named=True):
            out.setdefault(int(r["injection_id"]), []).append(str(r.get("action") or "change"))
    return out


def results_section(data: ReportData) -> str:
    """Every injection's result, samples included; BLQ/ALQ and errors in words."""
    res = data.results
    lloq = data.run.get("lloq") or data.assay.calibration.lloq
    uloq = data.run.get("uloq") or data.assay.calibration.uloq
    unit = data.assay.unit
    changed = _changed(data)

    def sample(r: dict[str, object]) -> str:
        parts = [f"<b>{esc(r.get('sample_id'))}</b>"]
        if r.get("level") and r.get("level") != r.get("sample_id"):
            parts.append(esc(r.get("level")))
        return " ".join(parts) + f"<br><span class='small'>{esc(r.get('file'))}</span>"

    def result(r: dict[str, object]) -> str:
        text = esc(result_text(r, float(lloq), float(uloq)))
        if r.get("normalized_value") is not None:
            text += f"<br>{esc(sig(r['normalized_value']))} {esc(r.get('normalized_unit'))}"
        iid = r.get("injection_id")
        acts = changed.get(int(iid)) if isinstance(iid, int) else None
        if acts:
            what = esc(", ".join(dict.fromkeys(acts)))
            text += f"<br><span class='small'>changed by review: {what}</span>"
        return text

    def flags(r: dict[str, object]) -> str:
        return esc(str(r.get("flags") or "").replace(";", ", "))

    cols = ["position", "sample", "sample_type"]
    if res.height and res["matrix"].drop_nulls().len():
        cols.append("matrix")
    cols += ["analyte_area", "is_area", "is_pct", "area_ratio", "analyte_rt", "conc_vial"]
    if res.height and (res["dilution"].fill_null(1.0) != 1.0).any():
        cols.append("dilution")
    cols += ["result", "accuracy_pct", "flags"]
    table = table_html(
        res,
        cols,
        unit=unit,
        headings={"result": f"Result ({unit}, × dilution)", "sample": "Sample / file"},
        render={"sample": sample, "result": result, "flags": flags},
        row_class=lambda r: "fail" if r.get("status") in ("no_result", "no_peak") else "",
        empty="No injection was stored for this run.",
    )
    counts = res.group_by("status").len().sort("status") if res.height else pl.DataFrame()
    summary = ", ".join(f"{r['len']} {r['status']}" for r in counts.iter_rows(named=True))
    return (
        "<section><h2>Results: every injection</h2>"
        f"<p class='small'>Status: {esc(summary)}. Concentrations to 3 significant figures, "
        f"areas in counts, % to 1 decimal. &lt; LLOQ and &gt; ULOQ are never numbers: the "
        f"limit is shown in final units (× dilution). LLOQ {esc(sig(lloq))} {esc(unit)}, "
        f"ULOQ {esc(sig(uloq))} {esc(unit)} in the vial.</p>{table}</section>"
    )


def calibration_section(data: ReportData, fig: Figures) -> str:
    cal = data.calibration
    parts = ['<section class="page"><h2>Calibration</h2>']
    if cal is None:
        parts.append(
            "<p>No calibration curve was fitted in this run: no sample was quantified.</p>"
        )
        return "".join(parts) + "</section>"
    limit = data.assay.calibration.accuracy_pct
    parts.append(fig(calibration_figure(data.cal_points, cal, limit, data.assay.unit)))
    reason = str(cal.get("reason") or "").rstrip(". ")
    parts.append(
        f"<p>{esc(reason.capitalize())}. Limits: back-calculated standards within ±{limit:g} % "
        f"(±{data.assay.calibration.accuracy_lloq_pct:g} % at the LLOQ), ICH M10.</p>"
    )
    pts = data.cal_points
    if pts.height:
        pts = pts.filter(pl.col("nominal") > 0).sort("nominal")

        def used(r: dict[str, object]) -> str:
            if r.get("excluded"):
                return f"<b>excluded</b>: {esc(r.get('reason'))}"
            return "used"

        parts.append('<div class="keep"><h3>Standards of this version</h3>')
        parts.append(
            table_html(
                pts,
                [
                    "level",
                    "sample_id",
                    "nominal",
                    "area_ratio",
                    "back_calculated",
                    "accuracy_pct",
                    "used",
                ],
                unit=data.assay.unit,
                headings={"used": "In the fit"},
                render={"used": used},
            )
        )
        parts.append("</div>")
    if data.calibrations.height > 1 or cal.get("carried_over_from"):
        parts.append('<div class="keep"><h3>Curve versions</h3>')

        def accepted(r: dict[str, object]) -> str:
            return "accepted" if r.get("accepted") else "<b>rejected</b>"

        parts.append(
            table_html(
                data.calibrations,
                ["version", "created_at", "accepted_text", "r2", "reason", "carried_over_from"],
                headings={
                    "version": "Version",
                    "created_at": "Fitted (UTC)",
                    "accepted_text": "Accepted",
                    "r2": "r²",
                    "carried_over_from": "Carried over from",
                },
                render={
                    "accepted_text": accepted,
                    "created_at": lambda r: esc(str(r.get("created_at") or "")[:19]),
                },
            )
        )
        parts.append("</div>")
    return "".join(parts) + "</section>"


def qc_section(data: ReportData, fig: Figures) -> str:
    qc = data.results.filter(pl.col("sample_type") == "qc") if data.results.height else data.results
    limits = data.assay.limits
    parts = ['<section class="page"><h2>Quality controls</h2>']

    def within(r: dict[str, object]) -> str:
        acc = r.get("accuracy_pct")
        if acc is None:
            return "<b>no value</b>"
        ok = abs(float(acc) - 100.0) <= limits.qc_accuracy_pct  # type: ignore[arg-type]
        return "pass" if ok else "<b>fail</b>"

    parts.append(
        table_html(
            qc,
            [
                "position",
                "sample_id",
                "level",
                "nominal",
                "conc_vial",
                "accuracy_pct",
                "within",
                "flags",
            ],
            unit=data.assay.unit,
            headings={"within": f"Within ±{limits.qc_accuracy_pct:g} %"},
            render={"within": within},
            empty="This run has no QC injections.",
        )
    )
    if qc.height:
        values = qc["accuracy_pct"].drop_nulls()
        n_pass = int(((values - 100.0).abs() <= limits.qc_accuracy_pct).sum())
        parts.append(
            f"<p>{n_pass} of {qc.height} QCs within ±{limits.qc_accuracy_pct:g} % "
            f"(ICH M10 asks ≥ {pct(limits.run_qc_pass_fraction * 100)} % overall and "
            f"≥ {pct(limits.run_qc_level_pass_fraction * 100)} % per level).</p>"
        )
    points = qc_points(data.all_results)
    guides = guides_for(points, data.run_id, runs=tuple(data.guide_runs or ()))
    for guide in guides.values():
        parts.append(fig(levey_jennings_figure(points, guide, data.run_id)))
    missing = sorted({p.level for p in points if p.run_id == data.run_id} - set(guides))
    for level in missing:
        parts.append(f"<p>{esc(level)}: too few QC values for a guide set (needs 2).</p>")
    return "".join(parts) + "</section>"


def is_section(data: ReportData, fig: Figures) -> str:
    limits = data.assay.limits
    res = data.results
    parts = ['<section class="keep"><h2>Internal standard</h2>']
    if not res.height or res["is_area"].drop_nulls().len() == 0:
        parts.append("<p>No internal-standard peak was measured in this run.</p>")
        return "".join(parts) + "</section>"
    parts.append(fig(is_response_figure(res, limits.is_low_pct, limits.is_high_pct)))
    outside = res.filter(
        (pl.col("is_pct") < limits.is_low_pct) | (pl.col("is_pct") > limits.is_high_pct)
    )
    parts.append(
        f"<p>{outside.height} injection(s) outside {limits.is_low_pct:g}–{limits.is_high_pct:g} % "
        "of the calibrator/QC reference (the % each was judged on when it arrived).</p>"
    )
    if outside.height:
        parts.append(
            table_html(
                outside,
                ["position", "sample_id", "sample_type", "is_area", "is_pct", "flags"],
            )
        )
    return "".join(parts) + "</section>"
