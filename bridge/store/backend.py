"""What the store asks of a database, whichever it is: the interface SQLite and PostgreSQL both implement.

:class:`~bridge.store.store.Store` writes its SQL once and runs it through these calls, so it never
asks which backend it holds (only a few statements differ, and :mod:`bridge.store.sql` rewrites
them). A *connection* runs one statement (``await conn.execute(sql, params)``, or ``async with`` it
for ``fetchone``/``fetchall``); a *database* runs a whole transaction as one unit
(:meth:`Database.atomic`), hands out the connection for single statements, and owns its upkeep.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol, TypeVar

Row = tuple[Any, ...]
T = TypeVar("T")
Dialect = Literal["sqlite", "postgresql"]


class Cursor(Protocol):
    """A finished statement: its rows (already fetched), ``rowcount``, ``lastrowid``."""

    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> int | None: ...

    async def fetchone(self) -> Row | None: ...

    async def fetchall(self) -> list[Row]: ...


class Statement(Protocol):
    """What ``execute`` returns: awaited, the cursor; or an async context manager giving it."""

    def __await__(self) -> Generator[Any, None, Cursor]: ...

    async def __aenter__(self) -> Cursor: ...

    async def __aexit__(self, *exc: object) -> None: ...


class Connection(Protocol):
    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Statement: ...


class Database(Protocol):
    """One backend: single statements through :attr:`conn`, transactions through :meth:`atomic`."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def conn(self) -> Connection: ...

    async def atomic(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``body`` in one transaction: all of it commits, or none of it (its exception is raised).

        The body must only await its connection's statements: on SQLite it runs in the database's
        own thread, in one step, and may be committed together with others that arrived meanwhile.
        """
        ...

    async def read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a ``body`` of reads together: on SQLite one hop, on one snapshot that never waits for a
        writer; on PostgreSQL one pooled connection. The body obeys :meth:`atomic`'s rule; it must not write."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A transaction spread over several awaits (migrations): slower, for rare work."""
        ...

    async def checkpoint(self) -> None: ...

    async def close(self) -> None: ...


ID_CHUNK = 500  # ids per ``IN (...)`` list: well under SQLite's and PostgreSQL's parameter limits


async def rows_for_ids(conn: Connection, select: str, ids: Sequence[int], order: str) -> list[Row]:
    """``select`` (ending in ``WHERE col IN``) for many ids, a chunk at a time, each chunk ``ORDER BY order``."""
    rows: list[Row] = []
    for start in range(0, len(ids), ID_CHUNK):
        chunk = tuple(ids[start:start + ID_CHUNK])
        marks = ", ".join("?" for _ in chunk)
        async with conn.execute(f"{select} ({marks}) ORDER BY {order}", chunk) as cur:
            rows.extend(await cur.fetchall())
    return rows
