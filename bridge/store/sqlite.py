"""SQLite on the event loop: the ``sqlite3`` module called directly, behind aiosqlite's call shapes.

The bridge's transactions are a handful of indexed statements (~25 µs together in WAL mode with
``synchronous=NORMAL``, which writes no fsync per commit). Sending each statement to a worker
thread (aiosqlite) cost ~260 µs per transaction on an idle machine, and under load far more: every
hop is two GIL hand-overs, and the event loop queued behind the database thread (measured with
``python -m bench.bench_load``, see the README's benchmarks). So statements run inline, and the one
slow thing SQLite does — a WAL checkpoint, which fsyncs — is taken off the loop: automatic
checkpoints are off on this connection, and :func:`checkpoint` runs on a second connection in a
thread, on a timer.

The API mirrors the subset of aiosqlite the store uses (``await db.execute(...)``, ``async with
db.execute(...) as cur``, ``await cur.fetchone()``), so store code reads the same either way.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Generator, Iterable
from types import TracebackType
from typing import Any

Row = tuple[Any, ...]


class Cursor:
    """A finished statement: its rows, ``rowcount`` and ``lastrowid``."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid

    async def fetchone(self) -> Row | None:
        row: Row | None = self._cursor.fetchone()
        return row

    async def fetchall(self) -> list[Row]:
        return list(self._cursor.fetchall())


class _Statement:
    """What ``execute`` returns: awaitable (a :class:`Cursor`) and an async context manager."""

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor

    def __await__(self) -> Generator[Any, None, Cursor]:
        return self._done().__await__()

    async def _done(self) -> Cursor:
        return self._cursor

    async def __aenter__(self) -> Cursor:
        return self._cursor

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None


class Connection:
    """One ``sqlite3`` connection in autocommit mode; transactions are begun explicitly."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> _Statement:
        return _Statement(Cursor(self._conn.execute(sql, tuple(params))))

    async def close(self) -> None:
        self._conn.close()

    @property
    def raw(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection itself (backups)."""
        return self._conn


async def connect(path: str) -> Connection:
    conn = Connection(path)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA busy_timeout=5000")
    if path != ":memory:":
        await conn.execute("PRAGMA wal_autocheckpoint=0")  # see checkpoint()
    return conn


def _checkpoint(path: str) -> None:
    conn = sqlite3.connect(path, timeout=5)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()


async def checkpoint(path: str) -> None:
    """Copy the WAL back into the database file, off the event loop (it fsyncs). PASSIVE: never
    waits for, nor blocks, the loop's writes."""
    if path != ":memory:":
        await asyncio.to_thread(_checkpoint, path)
