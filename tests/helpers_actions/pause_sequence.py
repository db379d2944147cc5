"""Stands in for a lab's "pause the sequence" script: it writes what it was told to a file.

argv: OUT_DIR [ARGS...]; writes OUT_DIR/paused-<n>.json with its arguments and the
ASNMON_* environment, and prints a line (the monitor logs it). ``--exit N`` exits
with N after writing; ``--sleep S`` sleeps first (a hook that hangs); ``--gate PATH``
waits (up to 120 s) until PATH exists first (a hook that hangs until the test lets it
go); ``--status`` keeps the status file ($ASNMON_STATUS_FILE) as the hook read it.
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
if "--gate" in args:
    i = args.index("--gate")
    gate = Path(args[i + 1])
    del args[i : i + 2]
    deadline = time.monotonic() + 120
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
status = None
if "--status" in args:
    args.remove("--status")
    status = json.loads(Path(os.environ["ASNMON_STATUS_FILE"]).read_text("utf-8"))
if "--exit" in args:
    i = args.index("--exit")
    code = int(args[i + 1])
    del args[i : i + 2]
out.mkdir(parents=True, exist_ok=True)
n = len(list(out.glob("paused-*.json")))
env = {k: v for k, v in os.environ.items() if k.startswith("ASNMON_")}
# Written under another name and renamed, so a test polling for paused-*.json never
# reads a half-written record (CI once read an empty one).
tmp = out / f".writing-{n}-{os.getpid()}"
tmp.write_text(json.dumps({"args": args, "env": env, "status": status}), "utf-8")
os.replace(tmp, out / f"paused-{n}.json")
print(f"sequence paused ({' '.join(args)})")
if code:
    print("the instrument software refused", file=sys.stderr)
sys.exit(code)
