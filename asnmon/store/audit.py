"""Store mixin: the audit trail, acknowledgements, sign-off and the run lock.

Every write a person makes calls ``append_event`` inside the same
transaction as the change, so a change and its event commit or roll back
together. Events are hash-chained (``asnmon.audit``); nothing here updates
or deletes an event, a signature or an acknowledgement.

Sign-off (21 CFR Part 11 §11.50: printed name, date and time, meaning;
§11.200(a): both the account name and the password at each signing;
§11.70: the signature is linked to its record — the event carries a digest
of the run's results as signed). A run's cycle is reviewed → approved;
approved locks it (``ensure_unlocked``), and only "reopen" with a reason
unlocks it, which ends the cycle: it is reviewed and approved anew.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb
import polars as pl

from asnmon.audit import canonical
from asnmon.errors import AccessDenied, RunLocked, StoreError
from asnmon.store.audit_reads import SIGN_ACTIONS, AuditReads
from asnmon.store.queries import Queries
from asnmon.store.trail import _notify, _now, append_event, local_text
from asnmon.store.users import UsersMixin
from asnmon.users import Actor, require

log = logging.getLogger("asnmon.store")

MEANINGS: dict[str, str] = {"reviewed": "Reviewed", "approved": "Approved"}
# the role an acknowledgement typed before accounts is recorded with
LEGACY_ROLE = "unverified (typed name)"


def results_digest(results: pl.DataFrame) -> str:
    """SHA-256 of what a signature vouches for: each current injection's result."""
    keep = [
        c
        for c in (
            "injection_id",
            "version",
            "sample_id",
            "sample_type",
            "level",
            "nominal",
            "dilution",
            "analyte_area",
            "is_area",
            "conc",
            "unit",
            "status",
            "calibration_id",
            "flags",
            "error",
        )
        if c in results.columns
    ]
    rows = results.select(keep).sort("injection_id").rows() if keep else []
    return hashlib.sha256(canonical(rows).encode()).hexdigest()


class AuditMixin(AuditReads, UsersMixin, Queries):
    """The audit trail, acknowledgements and sign-off of ``Store``."""

    # ---------------------------------------------------------------- plumbing

    def migrate(self) -> None:
        """The numbered migrations, then old acknowledgements into the trail (once).

        A file that cannot be read here (corrupt, disk failing) still opens: the
        monitor's own error handling names the problem on its first write, and the
        adoption is tried again on the next open.
        """
        super().migrate()
        try:
            self.adopt_legacy_acknowledgements()
        except StoreError as exc:
            log.warning("acknowledgements from before the audit trail not adopted yet: %s", exc)

    def append_event(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        run_id: str | None,
        injection_id: int | None,
        actor: Actor,
        action: str,
        target: str,
        old: Any,
        new: Any,
        reason: str,
    ) -> int:
        """Record a person's change; call it inside the change's own ``self._tx()``."""
        return append_event(
            con,
            run_id=run_id,
            injection_id=injection_id,
            actor=actor,
            action=action,
            target=target,
            old=old,
            new=new,
            reason=reason,
        )

    def adopt_legacy_acknowledgements(self) -> int:
        """Acknowledgements made before the audit trail (typed names) join the chain once.

        They keep their name, comment and time; their role says the name was typed,
        not logged in. Returns how many were adopted (0 on every later open).
        """
        if self.read_only or not self._has_table("audit_events"):
            return 0
        with self._tx() as con:
            rows = con.execute(
                "SELECT a.rowid, a.flag_id, a.by_name, a.comment, a.acked_at, f.run_id, "
                "f.injection_id, f.code FROM acknowledgements a LEFT JOIN flags f USING "
                "(flag_id) WHERE a.event_id IS NULL ORDER BY a.acked_at, a.flag_id"
            ).fetchall()
            for rowid, flag_id, by_name, comment, acked_at, run_id, inj, code in rows:
                event_id = append_event(
                    con,
                    run_id=run_id,
                    injection_id=inj,
                    actor=Actor(str(by_name), LEGACY_ROLE),
                    action="acknowledge",
                    target=f"flag {flag_id} {code or ''}".strip(),
                    old=None,
                    new={"comment": comment or "", "acknowledged_at": acked_at},
                    reason="recorded before accounts and the audit trail: the name was typed",
                )
                con.execute(
                    "UPDATE acknowledgements SET event_id = ?, role = ? WHERE rowid = ?",
                    [event_id, LEGACY_ROLE, rowid],
                )
        return len(rows)

    # ---------------------------------------------------------------- reads

    def signatures(self, run_id: str) -> pl.DataFrame:
        """Every signing and reopening of a run, oldest first; ``current``: this cycle."""
        schema: dict[str, Any] = {
            "event_id": pl.Int64,
            "run_id": pl.String,
            "meaning": pl.String,
            "name": pl.String,
            "role": pl.String,
            "signed_at": pl.Datetime("us"),
            "local_time": pl.String,
            "reason": pl.String,
            "results_digest": pl.String,
            "current": pl.Boolean,
        }
        if not self._has_table("signatures"):
            return pl.DataFrame(schema=schema)
        rows = (
            self.reader()
            .execute(
                "SELECT event_id, run_id, meaning, name, role, signed_at, local_time, reason, "
                "results_digest FROM signatures WHERE run_id = ? ORDER BY event_id",
                [run_id],
            )
            .fetchall()
        )
        last_reopen = max((i for i, r in enumerate(rows) if r[2] == "reopened"), default=-1)
        data = [(*r, i > last_reopen and r[2] != "reopened") for i, r in enumerate(rows)]
        return pl.DataFrame(data, schema=schema, orient="row")

    def sign_state(self, run_id: str) -> str:
        """``open``, ``reviewed`` or ``approved`` (locked)."""
        current = self.signatures(run_id).filter(pl.col("current"))
        meanings = set(current["meaning"].to_list())
        return "approved" if "approved" in meanings else "reviewed" if meanings else "open"

    def changed_since_approval(self, run_id: str) -> str:
        """Why the approved record no longer matches the run ('' when it does).

        A person cannot change an approved run, but the instrument can: a file
        arriving (or re-read) after approval changes the results under the signature.
        """
        approved = self.signatures(run_id).filter(
            pl.col("current") & (pl.col("meaning") == "approved")
        )
        if approved.is_empty():
            return ""
        signed = approved.row(-1, named=True)
        if signed["results_digest"] == results_digest(self.results(run_id)):
            return ""
        return (
            f"the results changed after {signed['name']} approved them "
            f"({signed['signed_at']:%Y-%m-%d %H:%M} UTC): an injection arrived or was re-read. "
            "An approver should reopen the run so it is reviewed and approved again."
        )

    def ensure_unlocked(self, run_id: str | None) -> None:
        """``RunLocked`` for an approved run: every person's write calls this first."""
        if run_id is None:
            return
        approved = (
            self.signatures(run_id).filter(pl.col("current") & (pl.col("meaning") == "approved"))
            if self._has_table("signatures")
            else pl.DataFrame()
        )
        if not approved.is_empty():
            row = approved.row(-1, named=True)
            raise RunLocked(
                f"Run {run_id} is locked: approved by {row['name']} on "
                f"{row['signed_at']:%Y-%m-%d %H:%M} UTC. Nothing in it can change until an "
                "approver reopens it with a reason."
            )

    # ---------------------------------------------------------------- acknowledgements

    def acknowledge(self, flag_id: int, actor: Actor, comment: str = "") -> int:
        """One flag looked at by ``actor``; the number recorded (0: it already was)."""
        return self.acknowledge_many([flag_id], actor, comment, again=True)

    def acknowledge_many(
        self, flag_ids: Iterable[int], actor: Actor, comment: str, *, again: bool = False
    ) -> int:
        """Acknowledge flags with one comment, as ``actor``; how many were recorded.

        Flags already acknowledged are skipped unless ``again``. All or nothing: an
        unknown flag or a locked run records none of them.
        """
        require(actor, "acknowledge")
        ids = sorted({int(f) for f in flag_ids})
        if not ids:
            return 0
        comment = (comment or "").strip()
        with self._tx() as con:
            rows = con.execute(
                "SELECT f.flag_id, f.run_id, f.injection_id, f.code, i.sample_id, i.file, "
                "(SELECT count(*) FROM acknowledgements a WHERE a.flag_id = f.flag_id) "
                f"FROM flags f LEFT JOIN injections i USING (injection_id) "
                f"WHERE f.flag_id IN ({','.join('?' * len(ids))}) ORDER BY f.flag_id",
                ids,
            ).fetchall()
            missing = sorted(set(ids) - {int(r[0]) for r in rows})
            if missing:
                raise StoreError(f"no flag with id {', '.join(map(str, missing))}")
            for run_id in sorted({r[1] for r in rows}):
                self.ensure_unlocked(run_id)
            done = 0
            for flag_id, run_id, inj, code, sample_id, file, acks in rows:
                if acks and not again:
                    continue
                now = _now()
                event_id = append_event(
                    con,
                    run_id=run_id,
                    injection_id=inj,
                    actor=actor,
                    action="acknowledge",
                    target=f"flag {flag_id} {code}"
                    + (f" on {sample_id or file}" if inj is not None else " (run)"),
                    old=None,
                    new={"comment": comment},
                    reason=comment,
                )
                con.execute(
                    "INSERT INTO acknowledgements (flag_id, by_name, comment, acked_at, role, "
                    "event_id) VALUES (?,?,?,?,?,?)",
                    [flag_id, actor.name, comment, now, actor.role, event_id],
                )
                done += 1
            for run_id in sorted({r[1] for r in rows}):
                _notify(con, run_id, "acknowledgement", None)
        return done

    # ---------------------------------------------------------------- sign-off

    def sign_run(
        self,
        run_id: str,
        *,
        name: str,
        password: str,
        meaning: str,
        reason: str = "",
        approver_not_reviewer: bool = True,
    ) -> int:
        """Sign a run as ``name`` (password re-entered) with ``meaning``; the event id.

        ``meaning``: ``reviewed``, ``approved`` or ``reopened`` (reopen needs a reason).
        ``approver_not_reviewer``: the four-eyes principle, on by default.
        """
        if meaning not in (*MEANINGS, "reopened"):
            raise AccessDenied(f"meaning {meaning!r}: one of reviewed, approved, reopened")
        actor = self.authenticate(name, password)
        action = SIGN_ACTIONS[meaning]
        require(actor, action)
        if meaning == "reopened" and not reason.strip():
            raise AccessDenied("reopening a run needs a reason (it is printed on the report)")
        runs = self.reader().execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if runs is None:
            raise StoreError(f"no run {run_id!r} in {self.path} (asnmon runs lists them)")
        digest = results_digest(self.results(run_id))
        current = self.signatures(run_id).filter(pl.col("current"))
        self._check_signing(run_id, actor, meaning, current, digest, approver_not_reviewer)
        with self._tx() as con:
            now = _now()
            local = local_text(now)
            event_id = append_event(
                con,
                run_id=run_id,
                injection_id=None,
                actor=actor,
                action=action,
                target=f"run {run_id}",
                old=self.sign_state(run_id),
                new={
                    "meaning": MEANINGS.get(meaning, "Reopened"),
                    "printed_name": actor.name,
                    "signed_at_utc": now,
                    "local_time": local,
                    "results_sha256": digest,
                },
                reason=reason,
            )
            con.execute(
                "INSERT INTO signatures VALUES (?,?,?,?,?,?,?,?,?)",
                [event_id, run_id, meaning, actor.name, actor.role, now, local, reason, digest],
            )
            _notify(con, run_id, "signature", None)
        return event_id

    def _check_signing(
        self,
        run_id: str,
        actor: Actor,
        meaning: str,
        current: pl.DataFrame,
        digest: str,
        approver_not_reviewer: bool,
    ) -> None:
        """Why this signature cannot be given now, as ``AccessDenied``."""
        mine = {r["meaning"]: r for r in current.iter_rows(named=True)}
        if meaning == "reopened":
            if "approved" not in mine:
                raise AccessDenied(f"run {run_id} is not approved: there is nothing to reopen")
            return
        if "approved" in mine:
            self.ensure_unlocked(run_id)
        if meaning == "reviewed":
            review = mine.get("reviewed")
            if review is not None and not self._changed_since(run_id, review, digest):
                raise AccessDenied(
                    f"run {run_id} is already reviewed by {review['name']} "
                    f"({review['signed_at']:%Y-%m-%d %H:%M} UTC) and nothing changed since"
                )
            return
        review = mine.get("reviewed")
        if review is None:
            raise AccessDenied(f"run {run_id} is not reviewed yet: a reviewer signs first")
        why = self._changed_since(run_id, review, digest)
        if why:
            raise AccessDenied(
                f"run {run_id} changed after {review['name']}'s review ({why}): it must be "
                "reviewed again before approval"
            )
        if approver_not_reviewer and review["name"] == actor.name:
            raise AccessDenied(
                f"{actor.name} reviewed this run and cannot also approve it: a second person "
                "checks what the first signed (four-eyes principle; [review] "
                "approver_not_reviewer)"
            )

    def _changed_since(self, run_id: str, review: Mapping[str, Any], digest: str) -> str:
        """What changed in the run after a review ('' when nothing did)."""
        later = self.audit_events(run_id).filter(
            (pl.col("event_id") > review["event_id"])
            & ~pl.col("action").is_in(list(SIGN_ACTIONS.values()))
        )
        if not later.is_empty():
            e = later.row(0, named=True)
            return f"{e['action']} of {e['target']} by {e['actor']}, event {e['event_id']}"
        if review["results_digest"] != digest:
            return "its results differ from the reviewed ones (new or re-read injections)"
        return ""

    # ---------------------------------------------------------------- listing helpers

    def flag_labels(self, flag_ids: Sequence[int]) -> dict[int, str]:
        """How a person names a flag: its code and where ("IS_LOW on QC-M-2")."""
        if not flag_ids:
            return {}
        marks = ",".join("?" * len(flag_ids))
        rows = (
            self.reader()
            .execute(
                "SELECT f.flag_id, f.code, i.sample_id, i.file, f.run_id FROM flags f LEFT JOIN "
                f"injections i USING (injection_id) WHERE f.flag_id IN ({marks})",
                [int(f) for f in flag_ids],
            )
            .fetchall()
        )
        return {
            int(fid): f"{code} on {sample or file}" if (sample or file) else f"{code} (run {run})"
            for fid, code, sample, file, run in rows
        }

    def acknowledgements_of(self, flag_ids: Sequence[int]) -> pl.DataFrame:
        """Who acknowledged these flags, when, with what comment (oldest first)."""
        if not flag_ids:
            return pl.DataFrame()
        marks = ",".join("?" * len(flag_ids))
        return self._frame(
            f"SELECT * FROM acknowledgements WHERE flag_id IN ({marks}) ORDER BY acked_at",
            list(flag_ids),
        )
