"""The store: the only module that runs SQL, and the only writer of the database.

DuckDB allows one read-write process per file and other processes cannot
read it meanwhile, so ``asnmon run`` is one process: the ingestion worker
writes through ``Store``; the dashboard's threads read through their own
cursors (``Store.reader()``). Every write is one transaction, so a kill at
any moment leaves either the whole injection or none of it.

Nothing is overwritten: a file that changes becomes a new injection version
(the old one is marked superseded), a new curve adds result rows (the old
ones stop being ``current``), and flags are deactivated, never deleted.
"""

from __future__ import annotations

from asnmon.store._sql import STORE_FAILURES, is_data_error, one_line
from asnmon.store.base import MEMORY_MB, StoreBase
from asnmon.store.edits import Edits
from asnmon.store.heartbeat import Heartbeat
from asnmon.store.operations import OWN_SUFFIXES, Operations, backup_refusal
from asnmon.store.queries import Queries
from asnmon.store.rows import QUANT_CODES, RunInfo, StoredEntry, StoredFile
from asnmon.store.schema import MIGRATIONS
from asnmon.store.writes import Writes

__all__ = [
    "MEMORY_MB",
    "MIGRATIONS",
    "OWN_SUFFIXES",
    "QUANT_CODES",
    "STORE_FAILURES",
    "RunInfo",
    "Store",
    "StoreBase",
    "StoredEntry",
    "StoredFile",
    "backup_refusal",
    "is_data_error",
    "one_line",
]


class Store(Edits, Writes, Queries, Operations, Heartbeat):
    """One DuckDB file. Writers call the ``write_*`` methods from one thread.

    Each responsibility is a mixin module of this package (``writes``,
    ``queries``, ``operations``; ``audit`` with ``users``: the review's trail, accounts,
    sign-off and lock); ``base`` owns the connection and ``schema``
    the migrations. A new part of the data model adds its own mixin here.
    """
