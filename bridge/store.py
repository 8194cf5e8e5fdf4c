"""The SQLite store: sessions, the threads bound to them, their messages, and seen events.

Everything a restart must not forget lives here (STYLE.md, lesson 4): which thread belongs to
which session, the history, and which messages still wait for an answer. Only the core uses it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import aiosqlite

from bridge.types import Author, ThreadRef

# Numbered migrations (mautrix's upgrade table): index + 1 is the schema version they produce.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        persona TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE threads (
        thread_key TEXT PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        thread TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        kind TEXT NOT NULL DEFAULT 'chat' CHECK (kind IN ('chat', 'command')),
        author_id TEXT NOT NULL DEFAULT '',
        author_name TEXT NOT NULL DEFAULT '',
        thread TEXT,
        event_id TEXT,
        content TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'answered', 'failed', 'done')),
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_by_session ON messages(session_id, id);
    CREATE INDEX messages_pending ON messages(status) WHERE status = 'pending';
    CREATE TABLE events (
        event_id TEXT PRIMARY KEY,
        seen_at REAL NOT NULL
    );
    """,
]

Status = Literal["pending", "answered", "failed", "done"]


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    key: str
    persona: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    session_id: int
    role: Literal["user", "assistant"]
    kind: Literal["chat", "command"]
    author: Author
    thread: ThreadRef | None
    content: str
    status: Status
    created_at: float


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session: Session
    messages: int
    threads: list[str]


_MSG_COLUMNS = "id, session_id, role, kind, author_id, author_name, thread, content, status, created_at"


def _message(row: aiosqlite.Row | tuple[object, ...]) -> Message:
    (id_, sid, role, kind, aid, aname, thread, content, status, created) = tuple(row)
    return Message(
        id=int(id_),
        session_id=int(sid),
        role=role,
        kind=kind,
        author=Author(str(aid), str(aname)),
        thread=ThreadRef.from_json(json.loads(str(thread))) if thread else None,
        content=str(content),
        status=status,
        created_at=float(created),
    )


def _session(row: aiosqlite.Row | tuple[object, ...]) -> Session:
    id_, key, persona, created, updated = tuple(row)
    return Session(int(id_), str(key), str(persona), float(created), float(updated))


class Store:
    """One aiosqlite connection in WAL mode; writes that belong together run in one transaction."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._write = asyncio.Lock()  # one connection: keep multi-statement transactions apart

    @classmethod
    async def open(cls, path: str) -> Store:
        db = await aiosqlite.connect(path, isolation_level=None)  # autocommit; we BEGIN explicitly
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db)
        await store._migrate()
        return store

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            raise RuntimeError(f"the database schema (version {current}) is newer than this bridge knows "
                               f"({len(MIGRATIONS)}): upgrade bridge")
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            async with self._tx():
                for statement in filter(str.strip, script.split(";")):
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {version}")

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    # ------------------------------------------------------------------------------- incoming

    async def accept(self, *, event_id: str, session_key: str, persona: str, thread: ThreadRef,
                     author: Author, content: str, kind: Literal["chat", "command"] = "chat",
                     ) -> tuple[Session, int] | None:
        """Record a new user message, atomically with its event id.

        Returns the session and the message id, or None when the event was seen before — so one
        message delivered twice is stored, and answered, once.
        """
        now = time.time()
        async with self._tx() as db:
            cur = await db.execute("INSERT OR IGNORE INTO events (event_id, seen_at) VALUES (?, ?)",
                                   (event_id, now))
            if cur.rowcount == 0:
                return None
            await db.execute(
                "INSERT INTO sessions (key, persona, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET updated_at = excluded.updated_at",
                (session_key, persona, now, now))
            async with db.execute("SELECT id, key, persona, created_at, updated_at FROM sessions WHERE key = ?",
                                  (session_key,)) as c:
                row = await c.fetchone()
            assert row is not None  # just inserted or updated, in this transaction
            session = _session(row)
            await db.execute(
                "INSERT OR IGNORE INTO threads (thread_key, session_id, thread, created_at) VALUES (?, ?, ?, ?)",
                (thread.key, session.id, json.dumps(thread.to_json()), now))
            cur = await db.execute(
                "INSERT INTO messages (session_id, role, kind, author_id, author_name, thread, event_id, "
                "content, status, created_at) VALUES (?, 'user', ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (session.id, kind, author.id, author.name, json.dumps(thread.to_json()), event_id,
                 content, now))
            assert cur.lastrowid is not None
            return session, cur.lastrowid

    async def has_thread(self, thread: ThreadRef) -> bool:
        """Whether this thread already belongs to a session (a Slack thread the bot is in)."""
        async with self._db.execute("SELECT 1 FROM threads WHERE thread_key = ?", (thread.key,)) as cur:
            return await cur.fetchone() is not None

    async def forget_events_before(self, cutoff: float) -> int:
        """Drop old dedupe ids; platforms redeliver within hours, not weeks."""
        async with self._tx() as db:
            cur = await db.execute("DELETE FROM events WHERE seen_at < ?", (cutoff,))
            return cur.rowcount

    # ------------------------------------------------------------------------------- answering

    async def history(self, session_id: int, upto_message_id: int, limit: int = 10_000) -> list[Message]:
        """The newest ``limit`` chat messages up to and including one message, oldest first."""
        async with self._db.execute(
            f"SELECT {_MSG_COLUMNS} FROM messages WHERE session_id = ? AND kind = 'chat' AND id <= ? "
            "ORDER BY id DESC LIMIT ?", (session_id, upto_message_id, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [_message(r) for r in reversed(list(rows))]

    async def message(self, message_id: int) -> Message | None:
        async with self._db.execute(f"SELECT {_MSG_COLUMNS} FROM messages WHERE id = ?", (message_id,)) as cur:
            row = await cur.fetchone()
        return _message(row) if row else None

    async def answer(self, message_id: int, session_id: int, reply: str) -> None:
        """Store the assistant's reply and mark the user message answered, together."""
        now = time.time()
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO messages (session_id, role, content, status, created_at) "
                "VALUES (?, 'assistant', ?, 'done', ?)", (session_id, reply, now))
            await db.execute("UPDATE messages SET status = 'answered' WHERE id = ?", (message_id,))
            await db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, session_id))

    async def mark(self, message_id: int, status: Status) -> None:
        async with self._tx() as db:
            await db.execute("UPDATE messages SET status = ? WHERE id = ?", (status, message_id))

    async def pending(self) -> list[Message]:
        """User messages stored but never answered (a crash, a stop mid-reply), oldest first."""
        async with self._db.execute(
            f"SELECT {_MSG_COLUMNS} FROM messages WHERE status = 'pending' ORDER BY id") as cur:
            return [_message(r) for r in await cur.fetchall()]

    # ------------------------------------------------------------------------------- sessions

    async def session(self, session_id: int) -> Session | None:
        async with self._db.execute("SELECT id, key, persona, created_at, updated_at FROM sessions WHERE id = ?",
                                    (session_id,)) as cur:
            row = await cur.fetchone()
        return _session(row) if row else None

    async def find_session(self, ref: str) -> Session | None:
        """A session by numeric id or by key."""
        by_id = ref.isdigit()
        where = "id = ?" if by_id else "key = ?"
        sql = f"SELECT id, key, persona, created_at, updated_at FROM sessions WHERE {where}"
        async with self._db.execute(sql, (int(ref) if by_id else ref,)) as cur:
            row = await cur.fetchone()
        return _session(row) if row else None

    async def set_persona(self, session_id: int, persona: str) -> None:
        async with self._tx() as db:
            await db.execute("UPDATE sessions SET persona = ?, updated_at = ? WHERE id = ?",
                             (persona, time.time(), session_id))

    async def reset(self, session_id: int, *, keep_message_id: int | None = None) -> int:
        """Forget a session's history (``/reset``); the thread stays bound to the session."""
        async with self._tx() as db:
            cur = await db.execute("DELETE FROM messages WHERE session_id = ? AND id != ?",
                                   (session_id, keep_message_id or -1))
            return cur.rowcount

    async def sessions(self) -> list[SessionSummary]:
        async with self._db.execute(
            "SELECT s.id, s.key, s.persona, s.created_at, s.updated_at, "
            "(SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id AND m.kind = 'chat') "
            "FROM sessions s ORDER BY s.updated_at DESC") as cur:
            rows = await cur.fetchall()
        out = []
        for row in rows:
            session = _session(tuple(row)[:5])
            async with self._db.execute("SELECT thread_key FROM threads WHERE session_id = ? ORDER BY created_at",
                                        (session.id,)) as cur:
                threads = [str(r[0]) for r in await cur.fetchall()]
            out.append(SessionSummary(session, int(row[5]), threads))
        return out

    async def messages(self, session_id: int) -> list[Message]:
        async with self._db.execute(f"SELECT {_MSG_COLUMNS} FROM messages WHERE session_id = ? ORDER BY id",
                                    (session_id,)) as cur:
            return [_message(r) for r in await cur.fetchall()]
