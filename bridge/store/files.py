"""The SQLite file behind ``storage.url``: its folder, opening it with a clear error, online backups.

A new user's ``sqlite:///data/bridge.db`` must not end in a traceback because ``data/`` does not
exist yet: the folder is created at open, and anything that still goes wrong (a file where the
folder should be, no permission) is a :class:`~bridge.config.ConfigError` naming ``storage.url``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from bridge.config import Config, ConfigError
from bridge.store.postgres import PgUnavailable
from bridge.store.store import Store

log = logging.getLogger(__name__)


def storage_problem(config: Config) -> str | None:
    """Why the database file could not be opened or created, found without creating anything."""
    if config.db_path == ":memory:" or config.storage.is_postgres:
        return None
    path = Path(config.db_path)
    if path.is_dir():
        return f"storage.url: {path} is a folder; name a file in it, e.g. sqlite:///{path / 'bridge.db'}"
    if path.exists():
        return None if os.access(path, os.R_OK | os.W_OK) else f"storage.url: {path} is not readable and writable"
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"storage.url: cannot create the folder {path.parent}: {existing} is a file"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"storage.url: cannot create {path}: no write permission in {existing}"
    return None


def folder_note(config: Config) -> str:
    """For ``bridge check``: say that a missing folder will be created."""
    if config.storage.is_postgres:
        return f" (PostgreSQL; replicas take over a dead one's sessions after {config.storage.lease_s:g} s)"
    if config.db_path != ":memory:" and not Path(config.db_path).parent.exists():
        return f" (the folder {Path(config.db_path).parent} will be created at start)"
    return ""


def create_private(path: Path) -> None:
    """Create ``path`` empty, readable by its owner only, unless it exists.

    Conversation history is private: SQLite gives its ``-wal`` and ``-shm`` files the mode of the
    database file, so a database created 0600 keeps all three away from other local users.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    os.chmod(path, 0o600)  # the process umask may have taken bits away, never added: this is exact


async def open_store(config: Config) -> Store:
    """Open (and migrate) the store, creating its folder; problems become a :class:`ConfigError`."""
    if config.storage.is_postgres:
        try:
            return await Store.open_postgres(config.storage.url)
        except (PgUnavailable, RuntimeError) as exc:  # messages name storage.url, never the password
            raise ConfigError(config.source, [str(exc) if isinstance(exc, PgUnavailable)
                                              else f"storage.url: {exc}"]) from None
    problem = storage_problem(config)
    if problem is not None:
        raise ConfigError(config.source, [problem])
    if config.db_path != ":memory:":
        folder = Path(config.db_path).parent
        if not folder.exists():
            try:
                folder.mkdir(parents=True)
            except OSError as exc:
                raise ConfigError(config.source, [f"storage.url: cannot create the folder {folder} "
                                                  f"({exc.strerror})"]) from None
            log.info("created the folder %s for the database", folder)
    try:
        if config.db_path != ":memory:":
            create_private(Path(config.db_path))
        return await Store.open(config.db_path)
    except OSError as exc:
        raise ConfigError(config.source, [f"storage.url: cannot create {config.db_path} ({exc.strerror})"]) from None
    except sqlite3.Error as exc:
        raise ConfigError(config.source, [f"storage.url: cannot open the database {config.db_path} ({exc})"]) from None
    except RuntimeError as exc:  # a schema newer than this bridge
        raise ConfigError(config.source, [f"storage.url: {exc}"]) from None
