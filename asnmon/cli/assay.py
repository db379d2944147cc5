"""`asnmon check-assay`: an assay file validated and explained."""

from __future__ import annotations

import argparse
from pathlib import Path

from asnmon.cli.common import Subcommands


def register(sub: Subcommands) -> None:
    """Assay file checks."""
    p = sub.add_parser("check-assay", help="validate an assay file and explain every problem")
    p.add_argument("file", nargs="?", type=Path, help="assay TOML (default: built-in)")
    p.add_argument("--show", action="store_true", help="print the built-in assay file")
    p.set_defaults(func=cmd_check_assay)


def cmd_check_assay(args: argparse.Namespace) -> int:
    from importlib import resources

    from asnmon.assay import DEFAULT_ASSAY, limit_sources, load_assay
    from asnmon.errors import AssayError

    if args.show:
        print(resources.files("asnmon.data").joinpath(DEFAULT_ASSAY).read_text("utf-8"))
        return 0
    try:
        assay = load_assay(args.file)
    except AssayError as err:
        print(f"{args.file or 'built-in assay'}: {len(err.problems)} problem(s)")
        for p in err.problems:
            print(f"  - {p}")
        return 1
    print(f"OK: {assay.name}")
    print(
        "  transitions: "
        + ", ".join(f"{t.id} {t.q1}>{t.q3} ({t.role.value})" for t in assay.transitions)
    )
    if assay.external_calibration:
        print(
            "  internal standard: none -- external calibration on the analyte area; "
            "IS window, drift, bias and IS carryover are not applied"
        )
    c = assay.calibration
    print(f"  calibration: {c.model}, weighting {c.weighting}, {c.lloq}-{c.uloq} {assay.unit}")
    print("  QC levels: " + ", ".join(f"{q.name} {q.nominal}" for q in assay.qc_levels))
    print("  limits (default -> source):")
    for section, key, default, source in limit_sources():
        table: object = assay
        for part in section.split("."):  # "integration.interference": a sub-table
            table = getattr(table, part)
        value = getattr(table, key)
        print(
            f"    {section}.{key} = {value}   [{source}]"
            + ("" if value == default else f" (default {default})")
        )
    return 0
