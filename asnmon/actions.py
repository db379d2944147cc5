"""Let the queue act: a machine-readable verdict file, and a command run on FAIL.

A lab pauses its sequence from its own instrument-control software; asnmon
cannot know every vendor's API, so it offers two plain hand-offs:

* **The status file** (``status_file_path(db)``: ``<db stem>.status.json``
  beside the database), rewritten atomically (temp file, fsync, rename: a
  reader sees the old or the new document, never half of one) at every
  heartbeat and after every stored injection. Schema ``asnmon-status``,
  ``version`` 1; documented in the README ("Let the queue act").
* **The hook** ``[actions] on_fail = ["cmd", "arg", ...]``: run when an
  injection gets its first FAIL flag and when a run's verdict turns FAIL. No
  shell (the list is the argv; ``{run}``, ``{file}``, ``{position}``,
  ``{code}``, ``{event}`` and ``{status_file}`` in an argument are filled in,
  and the same values are in ``ASNMON_*`` environment variables). One at a
  time on its own thread, killed after ``on_fail_timeout`` seconds; its output
  is logged. A hook that fails, times out or cannot start is itself reported
  (``report(ok=False, ...)``: alert and banner), never raised: the monitor goes on.

Tested with a script that "pauses a sequence" by writing a file
(tests/helpers_actions/pause_sequence.py): on an injection's FAIL, a failing,
hanging or missing command (tests/test_monitor_status.py), and on a run called
early as RUN_FAIL, the script reading the verdict from the status file, and a
hook hanging while the whole run is ingested (tests/test_actions.py); not with
any vendor's control software.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("asnmon.actions")

STATUS_SCHEMA = "asnmon-status"
STATUS_VERSION = 1
OUTPUT_KEPT = 2000  # characters of a hook's output kept in the log and the report
QUEUE_MAX = 200  # hook runs waiting; beyond, they are counted as dropped (a flood of FAILs)
PLACEHOLDERS = ("run", "file", "position", "code", "event", "status_file")


def status_file_path(db: str | Path) -> Path:
    """``lab.duckdb`` -> ``lab.status.json``, in the same folder."""
    path = Path(db)
    return path.with_name(f"{path.stem}.status.json")


def write_json_atomic(path: Path, document: Mapping[str, Any]) -> None:
    """Write beside ``path`` and rename over it: readers never see a partial document."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(document, indent=1, default=str, allow_nan=False)
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _clean(value: Any) -> Any:
    """JSON has no NaN: a number asnmon could not compute is null, not a plausible value."""
    if isinstance(value, float) and value != value:
        return None
    return value


def injection_verdict(severities: Sequence[str]) -> str:
    """pass / warning / fail from an injection's active flags (info never matters here)."""
    if "fail" in severities:
        return "fail"
    return "warning" if "warning" in severities else "pass"


def run_document(
    run_id: str,
    verdict: str,
    reason: str,
    results: Sequence[Mapping[str, Any]],
    flags: Sequence[Mapping[str, Any]],
    pace: Mapping[str, Any] | None = None,
    link: Callable[[str], int | None] | None = None,
) -> dict[str, Any]:
    """One run's part of the status file, from ``Store.results`` and ``Store.flags`` rows.

    ``link(file)``: the worklist position a file not in the worklist re-injects.
    """
    by_injection: dict[Any, list[Mapping[str, Any]]] = {}
    for f in flags:
        by_injection.setdefault(f.get("injection_id"), []).append(f)
    injections = []
    for r in results:
        own = by_injection.get(r.get("injection_id"), [])
        listed = r.get("position") is not None
        injections.append(
            {
                "position": r.get("position"),
                "in_worklist": listed,
                "reinjection_of": None
                if listed or link is None or not r.get("file")
                else link(str(r.get("file"))),
                "file": r.get("file"),
                "sample_id": r.get("sample_id"),
                "sample_type": r.get("sample_type"),
                "acquired_at": r.get("acquired_at"),
                "verdict": injection_verdict([str(f.get("severity")) for f in own]),
                "flags": sorted({str(f.get("code")) for f in own}),
                "open_fail_flags": sum(
                    1 for f in own if f.get("severity") == "fail" and not f.get("acks")
                ),
                "status": r.get("status"),
                "conc": _clean(r.get("conc")),
                "unit": r.get("unit"),
            }
        )
    run_flags = by_injection.get(None, [])
    open_fails = sum(1 for f in flags if f.get("severity") == "fail" and not f.get("acks"))
    return {
        "run_id": run_id,
        "verdict": verdict or "none",
        "verdict_reason": reason,
        "injections_in": len(injections),
        "in_worklist": len({i["position"] for i in injections if i["in_worklist"]}),
        "not_in_worklist": sum(1 for i in injections if not i["in_worklist"]),
        "failed_injections": sum(1 for i in injections if i["verdict"] == "fail"),
        "open_fail_flags": open_fails,
        "run_flags": sorted({str(f.get("code")) for f in run_flags}),
        "pace": dict(pace or {}),
        "injections": injections,
    }


def status_document(
    monitor: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    now = time.time()
    return {
        "schema": STATUS_SCHEMA,
        "version": STATUS_VERSION,
        "written_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "written_epoch": round(now, 3),
        "monitor": dict(monitor),
        "runs": list(runs),
    }


# ---------------------------------------------------------------- the hook


@dataclass(frozen=True, slots=True)
class Trigger:
    """Why the hook runs: an injection's first FAIL, or a run turning FAIL."""

    event: str  # "injection_fail" | "run_fail"
    run_id: str
    file: str = ""
    position: int | None = None
    code: str = ""


@dataclass(frozen=True, slots=True)
class HookResult:
    trigger: Trigger
    ok: bool
    message: str
    seconds: float


class ActionRunner:
    """Runs ``command`` for each trigger, one at a time, on its own thread."""

    def __init__(
        self,
        command: Sequence[str],
        timeout: float,
        status_file: Path,
        report: Callable[[HookResult], None],
    ) -> None:
        self.command = tuple(command)
        self.timeout = timeout
        self.status_file = status_file
        self._report = report
        self._jobs: queue.Queue[Trigger | None] = queue.Queue(QUEUE_MAX)
        self._thread = threading.Thread(target=self._loop, name="asnmon-actions", daemon=True)
        self._lock = threading.Lock()
        self.ran = 0
        self.failed = 0
        self.dropped = 0
        self.last: HookResult | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.command)

    def start(self) -> None:
        if self.enabled:
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            try:
                self._jobs.put(None, timeout=timeout)
            except queue.Full:
                log.warning("the action queue is full at stop; pending hook runs are dropped")
            self._thread.join(timeout + self.timeout)

    def trigger(self, trigger: Trigger) -> None:
        """Any thread; never blocks (a full queue counts the run as dropped)."""
        if not self.enabled:
            return
        try:
            self._jobs.put_nowait(trigger)
        except queue.Full:
            with self._lock:
                self.dropped += 1
            log.warning("action queue full: hook run for %s dropped", trigger)

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._jobs.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return self._jobs.unfinished_tasks == 0

    def status(self) -> dict[str, Any]:
        with self._lock:
            last = self.last
            return {
                "action_command": list(self.command) or None,
                "action_runs": self.ran,
                "action_failures": self.failed,
                "action_dropped": self.dropped,
                "action_last": None
                if last is None
                else {
                    "event": last.trigger.event,
                    "run_id": last.trigger.run_id,
                    "file": last.trigger.file,
                    "ok": last.ok,
                    "message": last.message,
                },
            }

    def _loop(self) -> None:
        while True:
            trigger = self._jobs.get()
            try:
                if trigger is None:
                    return
                result = self._run(trigger)
                with self._lock:
                    self.ran += 1
                    self.failed += 0 if result.ok else 1
                    self.last = result
                try:
                    self._report(result)
                except Exception:  # thread boundary: a report must not stop the hook thread
                    log.exception("reporting the hook result failed")
            finally:
                self._jobs.task_done()

    def argv(self, trigger: Trigger) -> list[str]:
        values = self._values(trigger)
        out = []
        for arg in self.command:
            for key in PLACEHOLDERS:
                arg = arg.replace("{" + key + "}", values[key])
            out.append(arg)
        return out

    def _values(self, trigger: Trigger) -> dict[str, str]:
        return {
            "run": trigger.run_id,
            "file": trigger.file,
            "position": "" if trigger.position is None else str(trigger.position),
            "code": trigger.code,
            "event": trigger.event,
            "status_file": str(self.status_file),
        }

    def _run(self, trigger: Trigger) -> HookResult:
        argv = self.argv(trigger)
        env = {**os.environ, **{f"ASNMON_{k.upper()}": v for k, v in self._values(trigger).items()}}
        started = time.monotonic()
        what = f"on_fail hook {argv[0]} ({trigger.event}, run {trigger.run_id}" + (
            f", {trigger.file})" if trigger.file else ")"
        )
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=self.timeout,
                env=env,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            output = _text(exc.stdout) + _text(exc.stderr)
            log.error("%s: killed after %g s; output: %s", what, self.timeout, output[:OUTPUT_KEPT])
            return HookResult(
                trigger,
                False,
                f"{what} did not finish within {self.timeout:g} s and was killed; the queue "
                "may NOT have been paused. Check the command ([actions] on_fail).",
                time.monotonic() - started,
            )
        except OSError as exc:
            log.error("%s could not start: %s", what, exc)
            return HookResult(
                trigger,
                False,
                f"{what} could not start ({exc.strerror or exc}); the queue was NOT paused. "
                "Check [actions] on_fail: the first item must be a program on this computer.",
                time.monotonic() - started,
            )
        seconds = time.monotonic() - started
        output = ((done.stdout or "") + (done.stderr or "")).strip()[:OUTPUT_KEPT]
        if done.returncode != 0:
            log.error("%s exited with %d: %s", what, done.returncode, output)
            return HookResult(
                trigger,
                False,
                f"{what} failed (exit code {done.returncode}): {output[-300:] or 'no output'}; "
                "the queue may NOT have been paused.",
                seconds,
            )
        log.info("%s ran in %.1f s: %s", what, seconds, output)
        return HookResult(trigger, True, f"{what} ran in {seconds:.1f} s", seconds)


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data if isinstance(data, str) else ""
