"""One process per SQLite file: ``bridge run`` and ``bridge migrate`` hold a lock file beside the database.

Two bridges on one file (a rolling update, an overlapping restart, a second container on the same
volume) would both answer every message: SQLite keeps the data consistent, not the conversation.
The lock is an exclusive ``flock`` on ``<database>.lock``, which holds the owner's pid so the second
process can say who has it. The kernel drops it when the process ends, however it ends (a SIGKILL
too), so there is never a stale lock to clean up; the file itself stays, empty of meaning.

Readers (``bridge backup``, ``usage``, ``sessions``) take no lock: SQLite lets them share the file.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO

from bridge.config import Config, ConfigError
from bridge.store.files import storage_problem


class StoreInUse(RuntimeError):
    """Another process holds the store; the message names the file and that process's pid."""


def lock_path(db_path: str) -> Path:
    return Path(f"{db_path}.lock")


class StoreLock:
    """Held from :meth:`acquire` until :meth:`release` or the process's end."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.path = lock_path(db_path)
        self._file: IO[str] | None = None

    def acquire(self) -> StoreLock:
        """Take the lock, or raise :class:`StoreInUse` at once (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip()
            file.close()
            who = f"pid {holder}" if holder.isdigit() else "a process that is still starting"
            raise StoreInUse(
                f"{self.db_path} is in use by another bridge ({who}, lock file {self.path}): one process per "
                "SQLite file, or both would answer every message. Stop that one first; `bridge backup`, "
                "`bridge usage` and `bridge sessions` work beside it.") from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold(config: Config) -> AbstractContextManager[object]:
    """The lock for ``config``'s store, to hold around a command that writes it (nothing for PostgreSQL,
    whose replicas share by design, or an in-memory store). A file that cannot be one is a ConfigError."""
    if config.storage.is_postgres or config.db_path == ":memory:":
        return nullcontext()
    problem = storage_problem(config)
    if problem is not None:
        raise ConfigError(config.source, [problem])
    return StoreLock(config.db_path)
