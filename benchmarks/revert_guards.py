"""Does each #11 fault test fail without its fix? One guard reverted at a time.

    python benchmarks/revert_guards.py            # every guard
    python benchmarks/revert_guards.py --only fetched_cursor

For each guard, the committed tree (``git archive HEAD``) is copied to a
temporary folder, the guard's code is replaced by what it was before the fix
(a literal text substitution that must match exactly once), and the test that
covers it is run there. A guard passes this check when its test FAILS in the
reverted copy (and passes in the real tree, which the suite already shows).
Nothing reverted is ever written into the repository. Prints a table and one
JSON line; exit status 0 when every reverted guard's test failed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Guard:
    name: str
    path: str  # file holding the guard
    fixed: str  # the guard's code as committed
    reverted: str  # what it was before the fix
    test: str  # pytest node id that must fail without it
    more: tuple[tuple[str, str], ...] = ()  # further (fixed, reverted) pairs in the same file


GUARDS = (
    Guard(
        "fetched_cursor",
        "asnmon/store/base.py",
        "cur = FetchedCursor(self._con.cursor())",
        "cur = self._con.cursor()",
        "tests/test_store_open.py::"
        "test_a_half_read_result_in_an_idle_thread_does_not_block_checkpoints",
    ),
    Guard(  # the order windows counted from submission again, as before the fix
        "checks_timed_from_start",
        "asnmon/watch/settle.py",
        "self._checks.running_for(target, track.checking, now) > BATCH_WAIT",
        "now - track.check_started > BATCH_WAIT",
        "tests/test_watch_faults.py::"
        "test_a_restart_batch_is_handed_on_in_order_however_long_its_checks_wait",
        (
            (
                "self._checks.running_for(p, t.checking, now) <= ORDER_WAIT",
                "now - t.check_started <= ORDER_WAIT",
            ),
        ),
    ),
    Guard(
        "heartbeat_while_busy",
        "asnmon/monitor.py",
        "                self._beat_busy()  # the queue may not run dry for a long catch-up\n",
        "",
        "tests/test_monitor_status.py::"
        "test_a_long_catch_up_beats_says_its_backlog_and_checkpoints_once_dry",
    ),
    Guard(
        "healthz_while_waiting",
        "asnmon/monitor.py",
        "on_wait=wait.waiting",
        "on_wait=None",
        "tests/test_monitor_faults.py::"
        "test_database_locked_at_start_up_is_waited_for_said_and_alerted",
    ),
    Guard(
        "status_file_while_database_fails",
        "asnmon/monitor.py",
        "if not self.db.wait(self._stopped, self._beat_waiting):",
        "if not self.db.wait(self._stopped, self._beat):",
        "tests/test_monitor_faults.py::"
        "test_disk_full_is_a_database_problem_then_everything_is_stored_once",
    ),
)


def revert_and_run(guard: Guard, work: Path) -> dict[str, object]:
    tree = work / guard.name
    tree.mkdir()
    archive = subprocess.run(
        ["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    target = tree / guard.path
    text = target.read_text("utf-8")
    for fixed, reverted in ((guard.fixed, guard.reverted), *guard.more):
        if text.count(fixed) != 1:
            return {"guard": guard.name, "outcome": "guard text not found once: update it"}
        text = text.replace(fixed, reverted)
    target.write_text(text, "utf-8")
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", guard.test, "-x", "-q", "-p", "no:cacheprovider"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    last = (done.stdout.strip().splitlines() or ["?"])[-1]
    return {
        "guard": guard.name,
        "test": guard.test.split("::")[-1],
        "outcome": "test fails without it" if done.returncode == 1 else f"NOT caught ({last})",
        "seconds": round(time.monotonic() - began, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", action="append", help="guard name (repeatable)")
    args = ap.parse_args()
    chosen = [g for g in GUARDS if not args.only or g.name in args.only]
    work = Path(tempfile.mkdtemp(prefix="asnmon-revert-"))
    try:
        rows = [revert_and_run(g, work) for g in chosen]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        print(f"{row['guard']:<34} {row['outcome']:<28} {row.get('seconds', '')} s")
    caught = all(r["outcome"] == "test fails without it" for r in rows)
    print(json.dumps({"guards": rows, "all_caught": caught}))
    sys.exit(0 if caught else 1)


if __name__ == "__main__":
    main()
