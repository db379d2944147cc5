"""Operations for a monitor that lives for months: backup, archive, prune, rescue."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from asnmon.errors import StoreError
from asnmon.store._sql import (
    _change,
    _now,
)
from asnmon.store.base import StoreBase

# Files DuckDB keeps beside a database (its write-ahead log, its spill folder) and the
# names SQLite-style tools use: a backup written over one of them destroys the database.
OWN_SUFFIXES = (".wal", "-wal", ".tmp", "-journal", "-shm", ".backup-request")


def backup_refusal(db: Path, dest: Path) -> str | None:
    """Why ``dest`` must not receive a backup of ``db`` (None: it may).

    Checked where the user types the command and again by the process that
    writes, because ``os.replace`` onto the live write-ahead log empties the
    database at its next start.
    """
    own = db.resolve()
    target = dest.resolve()
    if target.is_dir():
        return f"{dest} is a folder: give the backup a file name (e.g. {dest / own.name})"
    kin = [own, *(own.with_name(own.name + s) for s in OWN_SUFFIXES)]
    same = target in kin or any(k in target.parents for k in kin)
    if not same and target.exists():
        try:
            same = os.path.samefile(target, own)  # a hard link is the database itself
        except OSError:
            same = False
    if same:
        return (
            f"{dest} is the database's own file ({target.name} of {own.name}): a backup "
            "written there would overwrite the database and lose its data; choose another file"
        )
    return None


class Operations(StoreBase):
    """Backup, archive and prune; reads in one transaction give one consistent snapshot."""

    # parents first; prune deletes in reverse so each sub-select still finds its keys
    ARCHIVE_TABLES: tuple[str, ...] = (
        "runs",
        "injections",
        "peaks",
        "traces",
        "results",
        "calibrations",
        "calibration_points",
        "flags",
        "acknowledgements",
        "changes",
    )

    @staticmethod
    def archive_folder_name(run_id: str) -> str:
        """A file-system-safe folder per run (run ids may hold '/' with recursive watching)."""
        import hashlib
        import re

        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._") or "run"
        if safe == run_id:
            return safe
        return f"{safe}-{hashlib.sha1(run_id.encode()).hexdigest()[:8]}"

    @staticmethod
    def _sql_string(text: str) -> str:
        """A quoted SQL literal: ATTACH and COPY TO take no parameters for file names."""
        return "'" + text.replace("'", "''") + "'"

    def backup(self, dest: str | Path) -> Path:
        """A consistent copy of the whole database, taken while the monitor writes.

        Written under a temporary name beside ``dest`` and renamed, so a
        half-written backup never looks like a good one.
        """
        dest = Path(dest)
        refusal = backup_refusal(self.path, dest)
        if refusal is not None:
            raise StoreError(refusal)
        if not dest.parent.is_dir():
            raise StoreError(f"{dest.parent}: no such folder for the backup")
        return self._copy_open_database(dest, "backup", failed=f"backup to {dest} failed")

    def _run_rows(self, table: str, run_ids: Sequence[str]) -> tuple[str, list[Any]]:
        """SELECT of one table's rows that belong to the given runs (for archive/prune)."""
        marks = ",".join("?" * len(run_ids))
        by_injection = (
            f"injection_id IN (SELECT injection_id FROM injections WHERE run_id IN ({marks}))"
        )
        where = {
            "runs": f"run_id IN ({marks})",
            "injections": f"run_id IN ({marks})",
            "peaks": by_injection,
            "traces": by_injection,
            "results": by_injection,
            "calibrations": f"run_id IN ({marks})",
            "calibration_points": "calibration_id IN (SELECT calibration_id FROM calibrations "
            f"WHERE run_id IN ({marks}))",
            "flags": f"run_id IN ({marks})",
            "acknowledgements": f"flag_id IN (SELECT flag_id FROM flags WHERE run_id IN ({marks}))",
            "changes": f"run_id IN ({marks})",
        }[table]
        return f"SELECT * FROM {table} WHERE {where}", list(run_ids)

    def archive_runs(self, run_ids: Iterable[str], dest_dir: str | Path) -> list[Path]:
        """Every row of these runs, table by table, as Parquet: one folder per run.

        Each folder holds ``<table>.parquet`` and ``manifest.json`` (row counts);
        ``prune_runs`` deletes a run only when its manifest matches the database.
        """
        import os
        import shutil
        import uuid

        ids = list(dict.fromkeys(run_ids))
        known = {r[0] for r in self.reader().execute("SELECT run_id FROM runs").fetchall()}
        missing = [r for r in ids if r not in known]
        if missing:
            raise StoreError(f"no such run(s): {', '.join(missing)}")
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        out: list[Path] = []
        cur = self._con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            for run_id in ids:
                folder = dest_dir / self.archive_folder_name(run_id)
                tmp = dest_dir / f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp"
                tmp.mkdir()
                counts: dict[str, int] = {}
                for table in self.ARCHIVE_TABLES:
                    sql, params = self._run_rows(table, [run_id])
                    row = cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()
                    counts[table] = int(row[0]) if row else 0
                    target = self._sql_string(str(tmp / f"{table}.parquet"))
                    cur.execute(f"COPY ({sql}) TO {target} (FORMAT parquet)", params)
                manifest = {"run_id": run_id, "archived_at": _now().isoformat(), "rows": counts}
                (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), "utf-8")
                if folder.exists():
                    old = dest_dir / f".{folder.name}.{uuid.uuid4().hex[:8]}.old"
                    os.replace(folder, old)
                    os.replace(tmp, folder)
                    shutil.rmtree(old)
                else:
                    os.replace(tmp, folder)
                out.append(folder)
            cur.execute("COMMIT")
        except duckdb.Error as exc:
            raise StoreError(f"archive to {dest_dir} failed: {exc}") from exc
        finally:
            cur.close()
        return out

    def prune_runs(self, run_ids: Iterable[str], archive_dir: str | Path) -> dict[str, int]:
        """Delete these runs' rows in one transaction, only if each is archived in full.

        The archive is checked on disk (manifest row counts equal the database's
        now), so a run that gained rows after it was archived is not lost.
        Returns rows deleted per table.
        """
        ids = list(dict.fromkeys(run_ids))
        archive_dir = Path(archive_dir)
        problems: list[str] = []
        for run_id in ids:
            manifest_path = archive_dir / self.archive_folder_name(run_id) / "manifest.json"
            try:
                manifest = json.loads(manifest_path.read_text("utf-8"))
            except (OSError, ValueError):
                problems.append(f"{run_id}: not archived in {archive_dir} (archive it first)")
                continue
            for table in self.ARCHIVE_TABLES:
                sql, params = self._run_rows(table, [run_id])
                row = self.reader().execute(f"SELECT count(*) FROM ({sql})", params).fetchone()
                have = int(row[0]) if row else 0
                if manifest.get("rows", {}).get(table) != have:
                    problems.append(
                        f"{run_id}: the archive holds {manifest.get('rows', {}).get(table)} "
                        f"{table} rows, the database {have} (archive it again)"
                    )
                    break
                if not (manifest_path.parent / f"{table}.parquet").is_file():
                    problems.append(f"{run_id}: {table}.parquet missing from the archive")
                    break
        if problems:
            raise StoreError("refusing to prune: " + "; ".join(problems))
        deleted: dict[str, int] = {}
        with self._tx() as con:
            # children before parents: the sub-selects still see their keys
            for table in reversed(self.ARCHIVE_TABLES):
                sql, params = self._run_rows(table, ids)
                where = sql.split(" WHERE ", 1)[1]
                row = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()
                deleted[table] = int(row[0]) if row else 0
                con.execute(f"DELETE FROM {table} WHERE {where}", params)
            _change(con, None, "pruned", None)
        return deleted

    def save_open_copy(self, dest: Path) -> Path:
        """Write what this connection holds to ``dest`` (may be ``path`` itself, once deleted).

        The rescue of a database file deleted or replaced while open: the open
        connection still reads the old file, so nothing written to it is lost.
        """
        return self._copy_open_database(
            dest, "rescue", failed=f"could not save the open database to {dest}"
        )

    def _copy_open_database(self, dest: Path, purpose: str, *, failed: str) -> Path:
        """COPY FROM DATABASE into a temporary file beside ``dest``, then rename it.

        A half-written copy never carries ``dest``'s name: a backup that looks good
        but is not, or a rescued file cut short, would be worse than none.
        """
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
        alias = f"asnmon_{purpose}_{uuid.uuid4().hex[:8]}"
        cur = self._con.cursor()
        try:
            source = cur.execute("SELECT current_database()").fetchone()
            if source is None:
                raise StoreError("the database did not name itself")
            cur.execute(f"ATTACH {self._sql_string(str(tmp))} AS {alias} (READ_WRITE)")
            try:
                cur.execute("BEGIN TRANSACTION")
                cur.execute(f'COPY FROM DATABASE "{source[0]}" TO {alias}')
                cur.execute("COMMIT")
            finally:
                cur.execute(f"DETACH {alias}")
            os.replace(tmp, dest)
        except duckdb.Error as exc:
            raise StoreError(f"{failed}: {exc}") from exc
        finally:
            cur.close()
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
        return dest
