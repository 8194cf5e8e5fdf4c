"""SQLite through aiosqlite: every SQLite call runs in the connection's own thread, never on the event loop.

Why not ``sqlite3`` on the loop (it is ~10x cheaper per statement): SQLite can stop its caller. A
busy wait on a write lock held by another process, an fsync on a slow disk, a checkpoint — any of
them froze every webhook, ``/healthz`` and gateway heartbeat for seconds. In aiosqlite's thread they
only delay the store.

What keeps it fast:

- **one hop per transaction.** :meth:`SqliteDatabase.atomic` sends the whole transaction body to the
  thread, where it runs against :class:`ThreadConn`, whose statements complete at once: the body is
  an ``async def`` (the same code runs on PostgreSQL) that never really suspends, so it is driven
  to its end in one step. A transaction costs one thread hand-over, not one per statement.
- **group commit.** Transactions that arrive while a commit is in progress wait, and go together in
  the next hop: one ``BEGIN … COMMIT`` (each body under its own savepoint, so one body's error undoes
  only its own writes). Under load, hops and commits grow slower than the messages.
- **checkpoints on a second connection**, in a worker thread, on a timer (:meth:`checkpoint`), so the
  writer never pauses to copy the write-ahead log back (automatic checkpoints are off).

Single statements (reads, mostly) are one hop each through :class:`LoopConn`, fetched whole.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar, cast

import aiosqlite

from bridge.store.backend import Connection, Row

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000  # waiting for another process's write lock: in the database thread, not the loop
MAX_BATCH = 256  # transactions committed together at most (bounds one hop's time in the thread)


class Done:
    """A statement already run: its rows, ``rowcount`` and ``lastrowid``. Awaitable, or an async
    context manager, like aiosqlite's cursors, so the store's code reads the same on every backend."""

    __slots__ = ("lastrowid", "rowcount", "rows")

    def __init__(self, rows: list[Row], rowcount: int, lastrowid: int | None) -> None:
        self.rows, self.rowcount, self.lastrowid = rows, rowcount, lastrowid

    def __await__(self) -> Generator[Any, None, Done]:
        return self
        yield  # a generator that never suspends: awaiting it inside the database thread is safe

    async def __aenter__(self) -> Done:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def fetchone(self) -> Row | None:
        return self.rows[0] if self.rows else None

    async def fetchall(self) -> list[Row]:
        return self.rows


def _run(raw: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> Done:
    cursor = raw.execute(sql, tuple(parameters))
    rows = cursor.fetchall()  # before rowcount: an INSERT … RETURNING counts its rows as they are fetched
    return Done(rows, cursor.rowcount, cursor.lastrowid)


class ThreadConn:
    """The connection a transaction body gets inside the database thread: each statement runs at once."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Done:
        return _run(self._raw, sql, parameters)


class _Hop:
    """A statement sent to the database thread when awaited (or entered)."""

    __slots__ = ("_db", "_parameters", "_sql")

    def __init__(self, db: SqliteDatabase, sql: str, parameters: Sequence[Any]) -> None:
        self._db, self._sql, self._parameters = db, sql, parameters

    def __await__(self) -> Generator[Any, None, Done]:
        return self._db.call(_run, self._sql, self._parameters).__await__()

    async def __aenter__(self) -> Done:
        return await self._db.call(_run, self._sql, self._parameters)

    async def __aexit__(self, *exc: object) -> None:
        return None


class LoopConn:
    """Single statements from the event loop: one hop to the database thread each, rows fetched whole."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Hop:
        return _Hop(self._db, sql, parameters)


class BodyAwaitedElsewhere(RuntimeError):
    """A transaction body awaited something other than its connection (it would stall the database)."""


def _drive(body: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, here and now (see the module docstring)."""
    try:
        body.send(None)
    except StopIteration as stop:
        return cast(T, stop.value)
    body.close()
    raise BodyAwaitedElsewhere("a store transaction awaited something other than its own statements")


Outcome = tuple[bool, Any]  # (succeeded, result or exception)


def _commit_batch(raw: sqlite3.Connection, bodies: list[Callable[[Connection], Awaitable[Any]]]) -> list[Outcome]:
    """In the database thread: one transaction for the batch, one savepoint per body."""
    conn = ThreadConn(raw)
    outcomes: list[Outcome] = []
    raw.execute("BEGIN IMMEDIATE")
    try:
        for body in bodies:
            single = len(bodies) == 1
            if not single:
                raw.execute("SAVEPOINT body")
            try:
                result = _drive(cast(Coroutine[Any, Any, Any], body(conn)))
            except Exception as exc:
                if single:
                    raise
                raw.execute("ROLLBACK TO body")
                raw.execute("RELEASE body")
                outcomes.append((False, exc))
            else:
                if not single:
                    raw.execute("RELEASE body")
                outcomes.append((True, result))
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return outcomes


class SqliteDatabase:
    """One aiosqlite connection (WAL mode) behind the store: transactions group-committed in its thread."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, path: str, aio: aiosqlite.Connection) -> None:
        self.path = path
        self._aio = aio
        self.conn = LoopConn(self)
        self._waiting: list[tuple[Callable[[Connection], Awaitable[Any]], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._exclusive = asyncio.Lock()  # a spread-out transaction() keeps batches out meanwhile
        self.hops = 0  # thread hand-overs so far, and transactions committed (bench: hops per message)
        self.committed = 0

    @classmethod
    async def connect(cls, path: str) -> SqliteDatabase:
        aio = aiosqlite.connect(path, isolation_level=None)  # autocommit: transactions are begun explicitly
        aio._thread.daemon = True  # a store left open must not keep the process alive at exit
        await aio
        db = cls(path, aio)
        await db.call(_setup, path != ":memory:")
        return db

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(sqlite3_connection, *args)`` in the database thread: one hop."""
        self.hops += 1
        run = cast(Callable[..., Awaitable[T]], self._aio._execute)  # aiosqlite's own way into its thread
        return await run(fn, self._aio._conn, *args)

    async def atomic(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((body, future))
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit(), name="sqlite-group-commit")
        return await future

    async def _commit(self) -> None:
        """Commit whatever waits, in batches, until nothing does (a commit in progress gathers the next)."""
        batch: list[tuple[Callable[[Connection], Awaitable[Any]], asyncio.Future[Any]]] = []
        try:
            while self._waiting:
                batch = [(b, f) for b, f in self._waiting[:MAX_BATCH] if not f.cancelled()]
                del self._waiting[:MAX_BATCH]
                if not batch:
                    continue
                try:
                    async with self._exclusive:
                        outcomes = await self.call(_commit_batch, [b for b, _ in batch])
                except Exception as exc:  # the batch as a whole (a lock never freed, a full disk)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.committed += len(batch)
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if not future.done():
                        if ok:
                            future.set_result(value)
                        else:
                            future.set_exception(value)
        finally:
            self._committer = None
            for _, future in [*batch, *self._waiting]:  # only when cancelled: nobody would answer them
                future.cancel()
            self._waiting.clear()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._exclusive:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    async def checkpoint(self) -> None:
        """Copy the WAL back into the database file on a connection of its own, in a worker thread
        (it fsyncs). PASSIVE: never waits for, nor blocks, the writer."""
        if self.path != ":memory:":
            await asyncio.to_thread(_checkpoint, self.path)

    async def close(self) -> None:
        while self._committer is not None:
            await asyncio.shield(self._committer)
        await self.checkpoint()
        await self._aio.close()


def _setup(raw: sqlite3.Connection, on_disk: bool) -> None:
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, consistent always
    raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if on_disk:
        raw.execute("PRAGMA wal_autocheckpoint=0")  # see checkpoint()


def _checkpoint(path: str) -> None:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()


async def connect(path: str) -> SqliteDatabase:
    return await SqliteDatabase.connect(path)
