"""Logging for a monitor that runs for months: a size-rotated file plus the console.

Why size rotation and not daily: a quiet instrument writes a few lines a day
and a failing share can write thousands an hour; a size cap bounds the disk
on a locked-down acquisition PC either way. The console handler stays, so a
service manager (systemd journal, the Windows task's redirected output)
keeps what it captures.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
_MARK = "_asnmon_handler"


def setup_logging(
    log_file: str | Path | None,
    level: str | int = "INFO",
    *,
    max_mb: float = 10.0,
    backups: int = 5,
    console: bool = True,
) -> logging.Logger:
    """Configure the ``asnmon`` logger; calling it again replaces the handlers it added."""
    logger = logging.getLogger("asnmon")
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    for handler in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(numeric)
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        path = Path(log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                path,
                maxBytes=max(1, int(max_mb * 1024 * 1024)),
                backupCount=max(0, backups),
                encoding="utf-8",
                delay=True,
            )
        )
    if console:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
    # Propagation stays on: a CLI process's root logger has no handlers (so nothing is
    # printed twice), and an embedding program or pytest's log capture still sees ours.
    return logger
