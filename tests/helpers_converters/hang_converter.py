"""Stand-in for a converter that hangs, with a child process (both must be killed).

Usage: hang_converter.py INPUT OUTPUT_DIR. Writes "<own pid> <child pid>" to
OUTPUT_DIR/pids.txt so tests can check that the whole process group died.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

output_dir = Path(sys.argv[2])
output_dir.mkdir(parents=True, exist_ok=True)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
pids = output_dir / "pids.txt"
pids.with_suffix(".partial").write_text(f"{os.getpid()} {child.pid}\n", encoding="utf-8")
os.replace(pids.with_suffix(".partial"), pids)
print("hang converter: waiting forever", file=sys.stderr, flush=True)
time.sleep(600)
