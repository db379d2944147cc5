"""The record sections: flags with their acknowledgements, the audit trail, signatures.

The audit trail is rendered generically — every event the store holds, whatever
its action (acknowledge, reintegrate, exclude, edit, review, approve, reopen),
with who, when, what, the value before and after, and why — so a new kind of
change appears on the report without a change here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from asnmon.report.data import ReportData
from asnmon.report.figures import chromatogram_figure
from asnmon.report.format import result_text
from asnmon.report.html import Figures, esc, table_html, value_text
from asnmon.report.sections import audit_summary, signoff_state

SEVERITY_ORDER = {"fail": 0, "warning": 1, "info": 2}


def _when(value: object) -> str:
    return str(value)[:19].replace("T", " ") if value is not None else ""


def _time_of(column: str) -> Callable[[dict[str, object]], str]:
    """A time cell: the date over the time, so a narrow column never splits a date."""
    return lambda r: esc(_when(r.get(column))).replace(" ", "<br>", 1)


def flags_section(data: ReportData) -> str:
    """Every active flag with its acknowledgements (who, when, comment).

    A flag withdrawn by a later evaluation (the run re-judged, an injection
    re-quantified) stays in the database; it is listed here only if someone had
    acknowledged it, since then it is part of what was signed for.
    """
    flags = data.flags
    parts = ['<section class="page"><h2>Flags and acknowledgements</h2>']
    if not flags.height:
        parts.append("<p>No flag was raised in this run.</p>")
        return "".join(parts) + "</section>"
    acks: dict[int, list[dict[str, object]]] = {}
    for a in data.acknowledgements.iter_rows(named=True):
        acks.setdefault(int(a["flag_id"]), []).append(a)
    active = pl.col("active").fill_null(True)
    shown = flags.filter(active | (pl.col("acks") > 0)).with_columns(
        pl.col("severity").replace_strict(SEVERITY_ORDER, default=3).alias("_rank")
    )
    shown = shown.sort(["position", "_rank", "flag_id"], nulls_last=False)
    withdrawn = flags.filter(~active).height
    n_open = flags.filter(active & (pl.col("severity") == "fail") & (pl.col("acks") == 0)).height
    parts.append(
        f"<p>{flags.filter(active).height} active flag(s); <b>{n_open} fail flag(s) not "
        f"acknowledged</b>. {withdrawn} earlier flag(s) were withdrawn by later evaluations "
        "(kept in the database, listed here only if acknowledged).</p>"
    )
    legend = (
        shown.filter(active)
        .group_by("code", "severity", "_rank")
        .agg(pl.len().alias("count"), pl.col("action").drop_nulls().first().alias("action"))
        .sort("_rank", "code")
    )
    parts.append('<div class="keep"><h3>What to do, per flag</h3>')
    parts.append(
        table_html(
            legend,
            ["code", "severity", "count", "action"],
            headings={"count": "Count"},
        )
    )
    parts.append("</div>")

    def where(r: dict[str, object]) -> str:
        if r.get("injection_id") is None:
            return "<b>run</b>"
        return f"{esc(r.get('position'))} {esc(r.get('sample_id'))}"

    def what(r: dict[str, object]) -> str:
        text = esc(r.get("message"))
        if not r.get("active", True):
            text += (
                f"<br><span class='small'>withdrawn {esc(_when(r.get('deactivated_at')))} UTC "
                "by a later evaluation</span>"
            )
        return text

    def acknowledged(r: dict[str, object]) -> str:
        found = acks.get(int(r["flag_id"]), [])  # type: ignore[call-overload]
        if not found:
            return "not acknowledged"
        lines = []
        for a in found:
            who = esc(a.get("by_name") or a.get("actor"))
            role = f" ({esc(a['role'])})" if a.get("role") else ""
            comment = f": “{esc(a.get('comment'))}”" if a.get("comment") else ""
            lines.append(f"<b>{who}</b>{role}, {esc(_when(a.get('acked_at')))} UTC{comment}")
        return "<br>".join(lines)

    def row_class(r: dict[str, object]) -> str:
        return "withdrawn" if not r.get("active", True) else str(r.get("severity") or "")

    parts.append("<h3>Every flag</h3>")
    parts.append(
        table_html(
            shown,
            ["where", "code", "severity", "what", "acknowledged"],
            headings={"where": "Pos. / sample", "what": "What was found"},
            render={"where": where, "what": what, "acknowledged": acknowledged},
            row_class=row_class,
        )
    )
    return "".join(parts) + "</section>"


def audit_section(data: ReportData) -> str:
    """Every recorded change to this run, oldest first, original and new values side by side."""
    parts = ["<section><h2>Changes: reintegration, exclusion, edits, sign-off</h2>"]
    parts.append(f"<p>{esc(audit_summary(data))}</p>")
    audit = data.audit
    if not audit.height:
        parts.append(
            "<p>No change was made by a person: every result is the automatic one.</p>"
            if data.audit_problems is not None
            else ""
        )
        return "".join(parts) + "</section>"
    samples = {
        int(r["injection_id"]): f"{r.get('position')} {r.get('sample_id')}"
        for r in data.results.iter_rows(named=True)
        if r.get("injection_id") is not None
    }

    def who(r: dict[str, object]) -> str:
        role = f" ({esc(r['role'])})" if r.get("role") else ""
        return f"<b>{esc(r.get('actor'))}</b>{role}"

    def target(r: dict[str, object]) -> str:
        text = esc(r.get("target"))
        iid = r.get("injection_id")
        if iid is not None:
            text += f"<br>injection {esc(samples.get(int(iid), iid))}"  # type: ignore[call-overload]
        return text

    cols = [c for c in ("event_id", "at_utc", "at") if c in audit.columns][:2]
    parts.append(
        table_html(
            audit,
            [*cols, "who", "action", "target_text", "old", "new", "reason"],
            headings={
                "event_id": "#",
                "at": "When (UTC)",
                "at_utc": "When (UTC)",
                "who": "Who",
                "action": "Action",
                "target_text": "What",
                "old": "Before",
                "new": "After",
                "reason": "Why",
            },
            render={
                "at": _time_of("at"),
                "at_utc": _time_of("at_utc"),
                "who": who,
                "target_text": target,
                "old": lambda r: esc(value_text(r.get("old"))),
                "new": lambda r: esc(value_text(r.get("new"))),
            },
            row_class=lambda r: "",
        )
    )
    return "".join(parts) + "</section>"


SIGNATURE_COLUMNS = (
    ("meaning", "Meaning"),
    ("name", "Printed name"),
    ("printed_name", "Printed name"),
    ("role", "Role"),
    ("signed_at", "Signed (UTC)"),
    ("local_time", "Local time"),
    ("reason", "Reason"),
    ("results_digest", "Results SHA-256 signed"),
)


def signatures_section(data: ReportData) -> str:
    """Every signature and reopening: printed name, time, meaning (21 CFR Part 11 §11.50)."""
    cls, state = signoff_state(data)
    parts = [
        '<section class="keep signature"><h2>Signatures</h2>',
        f'<div class="{cls}">{esc(state)}</div>',
    ]
    sigs = data.signatures
    if not sigs.height:
        parts.append("<p>No electronic signature is recorded for this run.</p>")
        return "".join(parts) + "</section>"
    cols: list[tuple[str, str]] = []
    for col, heading in SIGNATURE_COLUMNS:
        if col in sigs.columns and heading not in dict(cols).values():
            cols.append((col, heading))

    def meaning(r: dict[str, object]) -> str:
        text = f"<b>{esc(str(r.get('meaning') or '').capitalize())}</b>"
        if r.get("current") is False and r.get("meaning") != "reopened":
            text += "<br><span class='small'>ended by a later reopen</span>"
        return text

    render = {
        "meaning": meaning,
        "signed_at": _time_of("signed_at"),
        "results_digest": lambda r: f"<span class='small'>{esc(r.get('results_digest'))}</span>",
    }
    parts.append(
        table_html(
            sigs,
            [c for c, _ in cols],
            headings=dict(cols),
            render={k: v for k, v in render.items() if k in sigs.columns},
            row_class=lambda r: "",
        )
    )
    parts.append(
        "<p class='small'>Each signature was given by re-entering the signer's password and "
        "is an event of the hash-chained audit trail; the results' SHA-256 is what was "
        "signed.</p>"
    )
    return "".join(parts) + "</section>"


def _transition_name(t: Any) -> str:
    """``Asn 133.1→87.1``: the assay's name, with Q1→Q3 unless the name already says them."""
    mz = f"{t.q1:g}→{t.q3:g}" if t.q3 is not None else f"{t.q1:g}"
    return t.name if f"{t.q1:g}" in t.name else f"{t.name} {mz}"


def chromatogram_pages(data: ReportData, fig: Figures) -> str:
    """One page per injection: its traces with the boundaries it was integrated over."""
    assay = data.assay
    names = {t.id: _transition_name(t) for t in assay.transitions}
    order = [t.id for t in assay.transitions]
    lloq = float(data.run.get("lloq") or assay.calibration.lloq)
    uloq = float(data.run.get("uloq") or assay.calibration.uloq)
    pages = []
    for row, traces, peaks in data.chromatograms:
        head = (
            f"<h2>Chromatograms: {esc(row.get('position'))} {esc(row.get('sample_id'))} "
            f"({esc(row.get('sample_type'))})</h2>"
            f"<p>{esc(row.get('file'))}; result {esc(result_text(row, lloq, uloq))}; "
            f"flags {esc(str(row.get('flags') or 'none').replace(';', ', '))}</p>"
        )
        if traces.height:
            body = fig(chromatogram_figure(traces, peaks, names, order))
            if peaks.height:
                body += table_html(
                    peaks.with_columns(
                        pl.col("transition").replace_strict(names, default=pl.col("transition"))
                    ),
                    [
                        "transition",
                        "apex_rt",
                        "start_rt",
                        "end_rt",
                        "area",
                        "height",
                        "sn",
                        "points",
                    ],
                    headings={
                        "transition": "Transition",
                        "apex_rt": "Apex RT (min)",
                        "start_rt": "Start (min)",
                        "end_rt": "End (min)",
                        "area": "Area (counts)",
                        "height": "Height (cps)",
                        "sn": "S/N",
                        "points": "Points across",
                    },
                    row_class=lambda r: "",
                )
        else:
            error = row.get("error")
            body = f"<p>No trace stored{': ' + esc(error) if error else ''}.</p>"
        pages.append(f'<section class="page keep">{head}{body}</section>')
    return "".join(pages)
