"""Stand-in for ``msconvert {input} --mzML -o {output_dir}``: writes {stem}.mzML.

Usage: fake_msconvert.py INPUT OUTPUT_DIR. Appends the input to OUTPUT_DIR/calls.log
and lists a raw folder's files in a comment, so tests can tell what it saw.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from minimal_mzml import mzml_doc


def main() -> int:
    source, output_dir = Path(sys.argv[1]), Path(sys.argv[2])
    print(f"fake msconvert: converting {source.name}", file=sys.stderr)
    if source.is_dir():
        seen = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    else:
        seen = [f"{source.name} {source.stat().st_size} bytes"]
    output = output_dir / (source.stem + ".mzML")
    partial = output.with_name(output.name + ".partial")
    partial.write_bytes(mzml_doc(source.stem, comment="seen: " + ", ".join(seen)))
    os.replace(partial, output)
    with (output_dir / "calls.log").open("a", encoding="utf-8") as log:
        log.write(f"{source}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
