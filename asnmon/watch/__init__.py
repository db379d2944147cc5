"""Watch stage: turn the folder an instrument writes into into settled file paths.

An event from the operating system says only that *something* happened to a
path: Windows reports "created" when writing starts, "closed" exists only on
Linux, and network shares (SMB/NFS) deliver no native events at all. So no
event type is trusted. Events only put a path on a queue; one settle thread
stats every pending path and hands it on (``WatchEvent`` kind ``"ready"``) once
its size and mtime have not moved for ``settle`` seconds *and* the document is
closed (``is_complete``). The ingestion worker dedupes by content hash, so
handing a path on twice is harmless; missing one is not.

Threads, all owned by one ``FolderWatcher``:

* watchdog's observer threads (native or polling): ``_EnqueueHandler`` only.
* ``asnmon-watch-settle``: owns the observer, the pending table, the folder
  health check, and is the only thread that calls ``on_event``.
* ``asnmon-watch-convert`` (only with converters): runs the vendor converter
  one file at a time, so a slow conversion never delays settling; it posts its
  results to the settle thread.

* ``asnmon-watch-check-N``: completeness checks (``support.CheckPool``),
  so one slow file never holds back the others.

Each of our threads catches unexpected errors at its boundary, logs them
(logger ``asnmon.watch``), records them in ``status().last_error``, emits an
``"error"`` event and keeps going. A folder that disappears (share dropped,
drive pulled) is ``"folder_lost"``; the watcher retries every ``retry_every``
seconds, and on ``"folder_back"`` restarts the observer and rescans.

Nothing blocks the pipeline and no event is trusted to arrive: a watched
folder given as a symlink is watched at its target (re-resolved when the link
moves); only regular files are ever opened (a FIFO or a device is skipped
with a ``"not_a_file"`` note); an inotify queue overflow (``"events_lost"``)
triggers a full rescan, and so does every ``rescan_every`` seconds. A rescan
is one batch: its files are handed on together, in acquisition order (the
file's own start time stamp, see ``asnmon.acquired``), not as they settle.

Modules, one responsibility each: ``events`` (the records), ``complete`` (is
the document closed?), ``scan`` (candidates, temporary names, signatures),
``settle`` (the pending table, abandoned files, rescans), ``folder`` (folder
health, the observer), ``watcher`` (threads, inbox, converter), ``support``
(check pool, inotify overflow).
"""

from asnmon.convert import ConverterSpec, run_converter
from asnmon.watch.complete import is_complete
from asnmon.watch.events import (
    DEFAULT_PATTERNS,
    EventKind,
    ObserverKind,
    WatchEvent,
    WatchState,
    WatchStatus,
)
from asnmon.watch.scan import scan_folder
from asnmon.watch.watcher import FolderWatcher

__all__ = [
    "DEFAULT_PATTERNS",
    "ConverterSpec",
    "EventKind",
    "FolderWatcher",
    "ObserverKind",
    "WatchEvent",
    "WatchState",
    "WatchStatus",
    "is_complete",
    "run_converter",
    "scan_folder",
]
