"""``bridge backup``: where the copy goes, and every way that can fail said in one plain sentence.

A backup recipe runs from cron and before every upgrade, so it must work the second time too: a
folder (or no path at all) gets a new timestamped file each run, an existing file is replaced only
with ``--overwrite``. Copies hold the whole conversation history, so they are readable by their
owner only.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from pathlib import Path

from bridge.config import Config, ConfigError
from bridge.store.files import create_private

DEFAULT_FOLDER = "backups"  # beside the database: the one place the service user may surely write


def default_folder(config: Config) -> Path:
    return Path(config.db_path).parent / DEFAULT_FOLDER


def resolve_target(config: Config, given: str | None, now: dt.datetime | None = None) -> Path:
    """The file to write: ``given`` itself, or a timestamped name in a folder (``given`` when it is
    one or ends with ``/``; the ``backups`` folder beside the database when nothing is given)."""
    folder: Path | None
    if given is None:
        folder = default_folder(config)
    elif given.endswith(("/", os.sep)) or Path(given).is_dir():
        folder = Path(given)
    else:
        return Path(given)
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    name = f"{Path(config.db_path).stem}-{stamp}"
    target = folder / f"{name}.db"
    n = 2
    while target.exists():  # two backups in one second
        target = folder / f"{name}-{n}.db"
        n += 1
    return target


def _fail(target: Path, what: str) -> ConfigError:
    return ConfigError(str(target), [what])


def _prepare(target: Path, overwrite: bool) -> None:
    folder = target.parent
    if target.is_dir():
        raise _fail(target, "is a folder: add a file name, or end the path with / for a timestamped name")
    if target.exists() and not overwrite:
        raise _fail(target, "the backup file already exists: choose a new name, give a folder (a timestamped "
                            "name is made in it), or add --overwrite")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise _fail(target, f"cannot create the folder {folder}: a file has that name") from None
    except NotADirectoryError:
        raise _fail(target, f"cannot create the folder {folder}: part of the path is a file") from None
    except PermissionError:
        raise _fail(target, f"cannot create the folder {folder}: no permission (create it as root and give "
                            "it to the user that runs the bridge, or back up into a folder that user owns)") from None
    except OSError as exc:
        raise _fail(target, f"cannot create the folder {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _fail(target, f"no permission to write in {folder}")
    if target.exists():  # --overwrite: start from an empty file, never from a stale database's pages
        try:
            target.unlink()
        except OSError as exc:
            raise _fail(target, f"cannot replace the old backup ({exc.strerror})") from None


def backup_to(config: Config, given: str | None, *, overwrite: bool = False) -> tuple[Path, int]:
    """Copy the database with SQLite's online backup API (a consistent snapshot, safe while
    ``bridge run`` writes); returns the file written and the pages copied."""
    if config.storage.is_postgres:
        raise ConfigError(config.source, ["storage.url: bridge backup copies SQLite files; back up PostgreSQL "
                                          "with pg_dump (see docs/scaling-postgresql.md)"])
    source = Path(config.db_path)
    if config.db_path == ":memory:" or not source.exists():
        raise ConfigError(config.source, [f"storage.url: there is no database at {source} to back up yet"])
    target = resolve_target(config, given)
    _prepare(target, overwrite)
    try:
        create_private(target)
    except OSError as exc:
        raise _fail(target, f"cannot create the backup file ({exc.strerror})") from None
    pages = 0

    def progress(_status: int, _remaining: int, total: int) -> None:
        nonlocal pages
        pages = total

    try:
        src = sqlite3.connect(source)
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise ConfigError(config.source, [f"storage.url: cannot read the database {source} ({exc})"]) from None
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=256, progress=progress)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise _fail(target, f"the backup failed ({exc})") from None
    finally:
        src.close()
    return target, pages
