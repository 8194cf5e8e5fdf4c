"""PostgreSQL behind the store: an asyncpg pool that speaks the store's (aiosqlite-shaped) calls.

Why asyncpg (README, "Running more than one"): it is asyncio-native, fast (binary protocol, a
prepared-statement cache per connection), and has first-class ``LISTEN``/``NOTIFY``
(``add_listener``) and plain session-level connections for advisory locks — the three things
several replicas need.

The store calls ``db.execute(sql, params)`` and either awaits the result or uses it as an async
context manager with ``fetchone``/``fetchall``/``rowcount``, as with aiosqlite. :class:`PgConn`
offers exactly that over one asyncpg connection (inside a transaction) or over the pool (a single
statement), with the SQL rewritten by :func:`bridge.store.sql.to_postgres`.

Nothing here ever shows the password: connection problems become a :class:`PgUnavailable` whose
message names ``storage.url`` without it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import asyncpg

from bridge.store.backend import Connection
from bridge.store.sql import statements, to_postgres

log = logging.getLogger(__name__)

Row = tuple[Any, ...]
# The store's transactions are a few statements sent back to back. One left idle this long belongs to
# a replica that froze (SIGSTOP, a paused VM) mid-transaction: the server ends it, so the session row
# it locked (bridge/store/fencing.py) does not keep the other replicas from taking the session over.
IDLE_IN_TRANSACTION_S = 10.0
T = TypeVar("T")
_STATUS_COUNT = re.compile(r"(\d+)\s*$")


class PgUnavailable(RuntimeError):
    """The database could not be reached or refused us; the message never contains the password."""


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user@host/db`` (for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}@{netloc}" if user else netloc).geturl()


def url_problem(url: str) -> str | None:
    """What is wrong with a PostgreSQL URL's shape (checked offline, in the config), without the password."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL: postgresql://USER:${PGPASSWORD}@HOST:PORT/DATABASE"
    if not parts.hostname:
        return "the URL names no host: postgresql://USER:${PGPASSWORD}@HOST:PORT/DATABASE"
    if not parts.path.strip("/"):
        return f"the URL names no database: add /DATABASE after {parts.hostname}{f':{port}' if port else ''}"
    return None


def _clean(text: str, url: str) -> str:
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


def describe_failure(exc: BaseException, url: str) -> str:
    """One plain sentence about a connection failure, naming ``storage.url`` and the fix, never the password."""
    where = redact(url)
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        why = "the server refused the user name or password"
        fix = "check the user and the password variable in storage.url"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        why = "the database does not exist"
        fix = "create it (createdb) or fix the database name in storage.url"
    elif isinstance(exc, OSError | asyncio.TimeoutError):
        why = "nothing answered at that address"
        fix = "check that PostgreSQL runs and storage.url's host and port"
    else:
        why = _clean(f"{type(exc).__name__}: {exc}", url).splitlines()[0][:200]
        fix = "check storage.url"
    return f"storage.url: cannot connect to PostgreSQL at {where} ({why}): {fix}"


class PgCursor:
    """The result of one statement: awaitable, or an async context manager, like aiosqlite's."""

    def __init__(self, run: Awaitable[tuple[list[Row], int]]) -> None:
        self._run = run
        self._rows: list[Row] = []
        self.rowcount = -1
        self.lastrowid: int | None = None  # use RETURNING: PostgreSQL has no last row id

    async def _go(self) -> PgCursor:
        self._rows, self.rowcount = await self._run
        return self

    def __await__(self) -> Generator[Any, None, PgCursor]:
        return self._go().__await__()

    async def __aenter__(self) -> PgCursor:
        return await self._go()

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[Row]:
        return self._rows


async def _run(conn: asyncpg.Connection | asyncpg.Pool, sql: str, params: Sequence[Any]) -> tuple[list[Row], int]:
    text = to_postgres(sql)
    head = text.lstrip()[:6].upper()
    if head in ("SELECT", "WITH") or " RETURNING " in text.upper():
        records = await conn.fetch(text, *params)
        return [tuple(r) for r in records], len(records)
    if not params and ";" in text.rstrip().rstrip(";"):  # a script: simple protocol, several statements
        status = await conn.execute(text)
    else:
        status = await conn.execute(text, *params)
    match = _STATUS_COUNT.search(status or "")
    return [], int(match.group(1)) if match else -1


class PgConn:
    """aiosqlite-shaped calls over one asyncpg connection or the pool."""

    dialect: Literal["postgresql"] = "postgresql"

    def __init__(self, target: asyncpg.Connection | asyncpg.Pool) -> None:
        self._target = target

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> PgCursor:
        return PgCursor(_run(self._target, sql, tuple(parameters)))

    async def executescript(self, script: str) -> None:
        for statement in statements(script):
            await self.execute(statement)


class PgDatabase:
    """The pool the store uses, plus dedicated connections for notifications and locks."""

    dialect: Literal["postgresql"] = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self.pool = pool
        self.url = url
        self.conn = PgConn(pool)

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 2, max_size: int = 10, timeout: float = 10.0,
                      idle_in_transaction_s: float = IDLE_IN_TRANSACTION_S) -> PgDatabase:
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, timeout=timeout, command_timeout=60,
                server_settings={"idle_in_transaction_session_timeout": str(int(idle_in_transaction_s * 1000))})
        except Exception as exc:
            raise PgUnavailable(describe_failure(exc, url)) from None
        assert pool is not None
        return cls(pool, url)

    async def dedicated(self, timeout: float = 10.0) -> asyncpg.Connection:
        """A connection of its own (LISTEN, a session-level advisory lock): not from the pool."""
        try:
            return await asyncpg.connect(self.url, timeout=timeout)
        except Exception as exc:
            raise PgUnavailable(describe_failure(exc, self.url)) from None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConn]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield PgConn(conn)

    async def atomic(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """One transaction on one pooled connection (see :class:`bridge.store.backend.Database`)."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await body(PgConn(conn))

    async def read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Reads on one pooled connection, without a transaction (no BEGIN/COMMIT round trips)."""
        async with self.pool.acquire() as conn:
            return await body(PgConn(conn))

    async def checkpoint(self) -> None:
        """PostgreSQL checkpoints on its own."""

    @asynccontextmanager
    async def locked(self, key: int) -> AsyncIterator[asyncpg.Connection]:
        """One connection holding a session-level advisory lock (migrations: one replica at a time)."""
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            try:
                yield conn
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)

    async def close(self) -> None:
        await self.pool.close()
