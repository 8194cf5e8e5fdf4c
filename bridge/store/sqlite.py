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

Single statements (reads, mostly) ride the same hops (:class:`LoopConn`), their rows fetched whole,
and so do bodies of reads (:meth:`SqliteDatabase.read`: what answering a message needs, read together
on one snapshot that takes no write lock).

aiosqlite offers no public call for "run this function on your connection, in your thread", so this
module uses its internals (``_execute``, ``_tx``, ``_conn``, ``_thread``); the dependency is pinned to
the minor version they were read from, and the tests exercise each of them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from contextlib import asynccontextmanager
from functools import partial
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

    __slots__ = ("_send",)

    def __init__(self, send: Callable[[], Awaitable[Done]]) -> None:
        self._send = send

    def __await__(self) -> Generator[Any, None, Done]:
        return self._send().__await__()

    async def __aenter__(self) -> Done:
        return await self._send()

    async def __aexit__(self, *exc: object) -> None:
        return None


class LoopConn:
    """Single statements from the event loop: one hop to the database thread each, rows fetched whole."""

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Hop:
        return _Hop(lambda: self._db.statement(sql, parameters))


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
Body = Callable[[Connection], Awaitable[Any]]


class Reads:
    """A body of reads (:meth:`SqliteDatabase.read`): run beside the single statements, on a snapshot."""

    __slots__ = ("body",)

    def __init__(self, body: Body) -> None:
        self.body = body


Op = tuple[str, Sequence[Any]] | Reads | Body  # a single statement (sql, parameters), reads, or a transaction


def _read(raw: sqlite3.Connection, body: Body) -> Any:
    """A deferred transaction that only reads: one snapshot of the database (WAL), no write lock taken,
    so it never waits for another process's writer."""
    raw.execute("BEGIN")
    try:
        return _drive(cast(Coroutine[Any, Any, Any], body(ThreadConn(raw))))
    finally:
        raw.execute("ROLLBACK")  # nothing to keep: ends the read snapshot


def _hop(raw: sqlite3.Connection, ops: list[Op]) -> list[Outcome]:
    """In the database thread: everything that waited, in one go. Single statements first, each on
    its own (they were all sent before any of these transactions was committed, so none waits for
    one); then the transactions, group-committed: one ``BEGIN … COMMIT``, a savepoint for each."""
    outcomes: dict[int, Outcome] = {}
    bodies: list[tuple[int, Body]] = []
    for n, op in enumerate(ops):
        if isinstance(op, tuple | Reads):
            try:
                outcomes[n] = (True, _run(raw, *op) if isinstance(op, tuple) else _read(raw, op.body))
            except Exception as exc:
                outcomes[n] = (False, exc)
        else:
            bodies.append((n, op))
    if bodies:
        try:
            for n, outcome in zip((n for n, _ in bodies), _commit_batch(raw, [b for _, b in bodies]), strict=True):
                outcomes[n] = outcome
        except Exception as exc:  # the group as a whole (a lock never freed, a full disk): none committed
            for n, _ in bodies:
                outcomes[n] = (False, exc)
    return [outcomes[n] for n in range(len(ops))]


def _commit_batch(raw: sqlite3.Connection, bodies: list[Body]) -> list[Outcome]:
    """One transaction for the batch, one savepoint per body (a lone body needs none)."""
    conn = ThreadConn(raw)
    outcomes: list[Outcome] = []
    single = len(bodies) == 1
    raw.execute("BEGIN IMMEDIATE")
    try:
        for body in bodies:
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
    """One aiosqlite connection (WAL mode) behind the store.

    Statements and transactions wait in :attr:`_waiting`; while one hop is in the database thread,
    whatever arrives waits for the next, and then goes in one hop (see :func:`_hop`). The hop is
    handed to aiosqlite's own queue with a future whose callback starts the next one, so no task is
    created per hop and a caller that gives up (cancelled) never strands the others.
    """

    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, path: str, aio: aiosqlite.Connection) -> None:
        self.path = path
        self._aio = aio
        self.conn = LoopConn(self)
        self._waiting: list[tuple[Op, asyncio.Future[Any]]] = []
        self._in_flight = False
        self._idle = asyncio.Event()  # no hop in the thread
        self._idle.set()
        self._exclusive = asyncio.Lock()
        self._held = False  # a spread-out transaction() is open: hops wait for its end
        self._closed = False
        self.hops = 0  # thread hand-overs so far, and transactions committed (tests, benchmarks)
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
        """Run ``fn(sqlite3_connection, *args)`` in the database thread, on its own: one hop."""
        self.hops += 1
        run = cast(Callable[..., Awaitable[T]], self._aio._execute)  # aiosqlite's own way into its thread
        return await run(fn, self._aio._conn, *args)

    def statement(self, sql: str, parameters: Sequence[Any]) -> asyncio.Future[Done]:
        return self._submit((sql, parameters))

    async def atomic(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        return cast(T, await self._submit(body))

    async def read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        return cast(T, await self._submit(Reads(body)))

    def _submit(self, op: Op) -> asyncio.Future[Any]:
        if self._closed:
            raise RuntimeError(f"the store {self.path} is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((op, future))
        if not self._in_flight:
            self._launch()
        return future

    def _launch(self) -> None:
        """Send what waits in one hop: single statements always, transactions unless a spread-out
        :meth:`transaction` is open (they wait for its end)."""
        batch: list[tuple[Op, asyncio.Future[Any]]] = []
        later: list[tuple[Op, asyncio.Future[Any]]] = []
        for op, future in self._waiting:
            if future.cancelled():
                continue
            if len(batch) >= MAX_BATCH or (self._held and not isinstance(op, tuple)):
                later.append((op, future))
            else:
                batch.append((op, future))
        self._waiting = later
        if not batch:
            return
        self._in_flight = True
        self._idle.clear()
        self.hops += 1
        landed: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        landed.add_done_callback(lambda done: self._landed(batch, done))
        # aiosqlite's queue, with our future: its thread sets it through call_soon_threadsafe.
        self._aio._tx.put_nowait((landed, partial(_hop, self._aio._conn, [op for op, _ in batch])))

    def _landed(self, batch: list[tuple[Op, asyncio.Future[Any]]], done: asyncio.Future[list[Outcome]]) -> None:
        self._in_flight = False
        self._idle.set()
        failure = done.exception() if not done.cancelled() else asyncio.CancelledError()
        outcomes: list[Outcome] = [(False, failure)] * len(batch) if failure else done.result()
        for (op, future), (ok, value) in zip(batch, outcomes, strict=True):
            if ok and not isinstance(op, tuple | Reads):
                self.committed += 1
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if self._waiting:
            self._launch()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._exclusive:
            self._held = True
            try:
                await self._idle.wait()  # no group commit in the thread
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    await self.conn.execute("ROLLBACK")
                    raise
                await self.conn.execute("COMMIT")
            finally:
                self._held = False
                if self._waiting and not self._in_flight:
                    self._launch()

    async def checkpoint(self) -> None:
        """Copy the WAL back into the database file on a connection of its own, in a worker thread
        (it fsyncs). PASSIVE: never waits for, nor blocks, the writer."""
        if self.path != ":memory:":
            await asyncio.to_thread(_checkpoint, self.path)

    async def close(self) -> None:
        while self._waiting or self._in_flight:
            await self._idle.wait()
            await asyncio.sleep(0)  # let the next hop (if any) start
        self._closed = True
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
