"""Stand-in for a converter that fails: 30 lines of chatter, an error, exit status 1."""

from __future__ import annotations

import sys

for i in range(30):
    print(f"progress line {i}", file=sys.stderr)
print(f"ERROR: cannot open raw file {sys.argv[1]}: unsupported vendor format", file=sys.stderr)
sys.exit(1)
