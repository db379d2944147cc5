"""Stands in for a lab's "pause the sequence" script: it writes what it was told to a file.

argv: OUT_DIR [ARGS...]; writes OUT_DIR/paused-<n>.json with its arguments and the
ASNMON_* environment, and prints a line (the monitor logs it). ``--exit N`` exits
with N after writing; ``--sleep S`` sleeps first (a hook that hangs).
"""

import json
import os
import sys
import time
from pathlib import Path

args = sys.argv[1:]
out = Path(args.pop(0))
code = 0
if "--sleep" in args:
    i = args.index("--sleep")
    time.sleep(float(args[i + 1]))
    del args[i : i + 2]
if "--exit" in args:
    i = args.index("--exit")
    code = int(args[i + 1])
    del args[i : i + 2]
out.mkdir(parents=True, exist_ok=True)
n = len(list(out.glob("paused-*.json")))
env = {k: v for k, v in os.environ.items() if k.startswith("ASNMON_")}
(out / f"paused-{n}.json").write_text(json.dumps({"args": args, "env": env}), "utf-8")
print(f"sequence paused ({' '.join(args)})")
if code:
    print("the instrument software refused", file=sys.stderr)
sys.exit(code)
