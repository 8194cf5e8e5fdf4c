"""The SQLite store: sessions, the threads bound to them, their messages, replies and seen events.

Everything a restart must not forget lives here, because a process can die at any line: which thread belongs
to which session, the history, which messages still wait for an answer, and — for every reply —
its text and the platform messages already posted for it, written as each is posted. Only the
core uses it.

The conversation order is the order of the *user* messages; each reply is tied to the message it
answers (``replies.message_id``), so a question that arrived while another was being answered can
never be placed before that answer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from bridge.store import fencing
from bridge.store.attachments import ATTACHMENTS_MIGRATION, AttachmentQueries, StoredFile, files_of, insert_files
from bridge.store.backend import Connection, Database, Dialect
from bridge.store.feedback import FEEDBACK_MIGRATION, FeedbackQueries
from bridge.store.health import WriteHealth
from bridge.store.postgres import PgConn, PgDatabase
from bridge.store.relays import RELAYS_MIGRATION, RelayPlan, RelayQueries, insert_relays, release_answers
from bridge.store.sql import statements
from bridge.store.sqlite import SqliteDatabase
from bridge.store.usage import USAGE_DAYS_MIGRATION, USAGE_MIGRATION, UsageQueries, UsageRow
from bridge.types import Attachment, Author, ThreadRef

# Both backends implement one interface (bridge/store/backend.py); SQL is written once (bridge/store/sql.py).
Migration = str | Callable[[Connection], Awaitable[None]]
PRUNE_BATCH = 16  # dedupe ids deleted per transaction: ~0.2 ms each (bench/bench_budgets.py)
T = TypeVar("T")
MIGRATION_LOCK = 0x6272_6964_6765  # PostgreSQL advisory lock key: one replica migrates at a time


async def _link_replies(db: Connection) -> None:
    """Version 2: replies become rows of their own, tied to the message they answer.

    Version 1 stored answers as ``assistant`` rows in ``messages`` ordered by their own id, so a
    question that arrived during an answer was placed before it (``Q1 Q2 A1 A2``). Answers were
    produced in the order of the questions (one lane per session), so the n-th answer of a session
    answers its n-th answered chat question: pair them up that way.
    """
    await db.execute("""
        CREATE TABLE messages_v2 (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            kind TEXT NOT NULL DEFAULT 'chat' CHECK (kind IN ('chat', 'command')),
            author_id TEXT NOT NULL DEFAULT '',
            author_name TEXT NOT NULL DEFAULT '',
            thread TEXT,
            event_id TEXT,
            content TEXT NOT NULL,
            tokens INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL CHECK (status IN ('pending', 'answered', 'failed', 'refused')),
            reason TEXT,
            created_at REAL NOT NULL
        )""")
    await db.execute("""
        CREATE TABLE replies (
            message_id INTEGER PRIMARY KEY REFERENCES messages_v2(id) ON DELETE CASCADE,
            session_id INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('delivering', 'delivered', 'failed')),
            final INTEGER NOT NULL DEFAULT 0,
            text TEXT NOT NULL DEFAULT '',
            tokens INTEGER NOT NULL DEFAULT 0,
            platform_ids TEXT NOT NULL DEFAULT '[]',
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""")
    await db.execute("""
        INSERT INTO messages_v2 (id, session_id, kind, author_id, author_name, thread, event_id, content,
                                 status, created_at)
        SELECT id, session_id, kind, author_id, author_name, thread, event_id, content,
               CASE status WHEN 'done' THEN 'answered' ELSE status END, created_at
        FROM messages WHERE role = 'user'""")
    async with db.execute("SELECT DISTINCT session_id FROM messages WHERE role = 'assistant'") as cur:
        sessions = [int(r[0]) for r in await cur.fetchall()]
    for sid in sessions:
        async with db.execute("SELECT id FROM messages WHERE session_id = ? AND role = 'user' AND kind = 'chat' "
                              "AND status = 'answered' ORDER BY id", (sid,)) as cur:
            questions = [int(r[0]) for r in await cur.fetchall()]
        async with db.execute("SELECT content, created_at FROM messages WHERE session_id = ? AND role = 'assistant' "
                              "ORDER BY id", (sid,)) as cur:
            answers = list(await cur.fetchall())
        for qid, (content, created) in zip(questions, answers, strict=False):
            await db.execute(
                "INSERT INTO replies (message_id, session_id, state, final, text, created_at, updated_at) "
                "VALUES (?, ?, 'delivered', 1, ?, ?, ?)", (qid, sid, content, created, created))
    await db.execute("DROP TABLE messages")
    await db.execute("ALTER TABLE messages_v2 RENAME TO messages")
    if isinstance(db, PgConn):  # rows were copied with their ids: the identity must continue after them
        await db.execute("SELECT setval(pg_get_serial_sequence('messages', 'id'), COALESCE(MAX(id), 0) + 1, false) "
                         "FROM messages")
    await db.execute("CREATE INDEX messages_by_session ON messages(session_id, id)")
    await db.execute("CREATE INDEX messages_pending ON messages(status) WHERE status = 'pending'")
    await db.execute("CREATE INDEX replies_by_session ON replies(session_id)")
    await db.execute("ALTER TABLE sessions ADD COLUMN persona_override TEXT")


# Numbered migrations (mautrix's upgrade table): index + 1 is the schema version they produce.
MIGRATIONS: list[Migration] = [
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
    _link_replies,
    USAGE_MIGRATION,  # 3: usage (one row per answered message), refusal_notices
    # Version 4: per-session leases, for several replicas on PostgreSQL (bridge/store/claims.py; unused on SQLite).
    """
    ALTER TABLE sessions ADD COLUMN claimed_by TEXT;
    ALTER TABLE sessions ADD COLUMN lease_until REAL;
    CREATE INDEX messages_pending_by_session ON messages(session_id, id) WHERE status = 'pending'
    """,
    ATTACHMENTS_MIGRATION,  # shared files and images, kept with their user turn (bridge/store/attachments.py)
    # Fencing: each claim bumps the session's lease generation; work under a lease checks it (bridge/store/fencing.py).
    "ALTER TABLE sessions ADD COLUMN lease_gen INTEGER NOT NULL DEFAULT 0",
    USAGE_DAYS_MIGRATION,  # running usage totals per day (budgets), events indexed by time (pruning)
    # feedback: one 👍/👎 per person per answer (bridge/store/feedback.py); sessions.context: what the
    # person is looking at beside the conversation (Slack's assistant pane), for the persona's {channel}.
    FEEDBACK_MIGRATION + ";\n    ALTER TABLE sessions ADD COLUMN context TEXT",
    # Tools: the calls and results of an answer (JSON, bridge/conversation/tooluse.py), and what they cost
    # in a later prompt, so history keeps them within the context budget.
    """
    ALTER TABLE replies ADD COLUMN tool_log TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE replies ADD COLUMN tool_tokens INTEGER NOT NULL DEFAULT 0
    """,
    RELAYS_MIGRATION,  # relayed copies, an outbox like replies (bridge/store/relays.py)
]

Status = Literal["pending", "answered", "failed", "refused"]
ReplyState = Literal["delivering", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    key: str
    persona: str  # in force: a /persona choice, else the channel rule's
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Message:
    """A user message (or command), in the order the session received them."""

    id: int
    session_id: int
    kind: Literal["chat", "command"]
    author: Author
    thread: ThreadRef | None
    event_id: str
    content: str
    tokens: int
    status: Status
    created_at: float
    role: Literal["user"] = "user"


@dataclass(frozen=True, slots=True)
class Reply:
    """The delivery record of the answer to one message, written as delivery goes, so a restart resumes it.

    ``final`` says ``text`` is the whole answer (the LLM finished, or a command's confirmation):
    recovery then delivers it without asking again. ``platform_ids`` are the platform messages
    already posted for it, in order, so recovery edits them instead of posting new ones.
    """

    message_id: int
    state: ReplyState
    final: bool
    text: str
    tokens: int
    platform_ids: tuple[str, ...]
    attempts: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """What answering a message starts from, read in the transaction that counts the attempt: one
    hop to the store instead of one per part."""

    message: Message
    session: Session
    context: str  # what the person looks at beside the conversation ("" when none)
    earlier: int  # attempts before this one: more than 0 after a restart or a retry
    reply: Reply  # the delivery record so far (this attempt counted)
    files: list[StoredFile]  # the message's files, as stored now


@dataclass(frozen=True, slots=True)
class Exchange:
    """One turn of history: a user message and the reply it got (None: failed, or not yet)."""

    message: Message
    reply: str | None
    reply_tokens: int
    tool_log: str = "[]"  # the tools the answer used (JSON list of calls with their results)


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session: Session
    messages: int
    threads: list[str]


_MSG_COLUMNS = "id, session_id, kind, author_id, author_name, thread, event_id, content, tokens, status, created_at"
_SESSION_COLUMNS = "id, key, COALESCE(persona_override, persona), created_at, updated_at"
_HISTORY_PAGE = 64
_KNOWN_THREADS = 100_000  # thread keys has_thread remembers (a few MB at most)


def _message(row: Sequence[Any]) -> Message:
    (id_, sid, kind, aid, aname, thread, event_id, content, tokens, status, created) = tuple(row)[:11]
    return Message(
        id=int(id_),
        session_id=int(sid),
        kind=kind,
        author=Author(str(aid), str(aname)),
        thread=ThreadRef.from_json(json.loads(str(thread))) if thread else None,
        event_id=str(event_id or ""),
        content=str(content),
        tokens=int(tokens or 0),
        status=status,
        created_at=float(created),
    )


def _session(row: Sequence[Any]) -> Session:
    id_, key, persona, created, updated = tuple(row)
    return Session(int(id_), str(key), str(persona), float(created), float(updated))


async def _history(db: Connection, session_id: int, before_message_id: int, max_tokens: int,
                   per_turn: int) -> list[Exchange]:
    """The body of :meth:`Store.history` (any connection: a body of reads, or a transaction)."""
    out: list[Exchange] = []
    used = 0
    upto = before_message_id
    while True:
        async with db.execute(
            f"SELECT m.{_MSG_COLUMNS.replace(', ', ', m.')}, r.text, r.tokens, r.tool_log, r.tool_tokens "
            "FROM messages m LEFT JOIN replies r ON r.message_id = m.id AND r.state = 'delivered' "
            "WHERE m.session_id = ? AND m.id < ? AND m.kind = 'chat' AND m.status != 'refused' "
            "ORDER BY m.id DESC LIMIT ?", (session_id, upto, _HISTORY_PAGE),
        ) as cur:
            rows = list(await cur.fetchall())
        for row in rows:
            msg = _message(row)
            reply, reply_tokens = row[11], int(row[12] or 0)
            tool_log = str(row[13]) if reply is not None and row[13] else "[]"
            cost = msg.tokens + per_turn + (reply_tokens + per_turn + int(row[14] or 0) if reply is not None else 0)
            if used + cost > max_tokens:
                return out[::-1]
            used += cost
            out.append(Exchange(msg, None if reply is None else str(reply), reply_tokens, tool_log))
        if len(rows) < _HISTORY_PAGE:
            return out[::-1]
        upto = int(rows[-1][0])


async def _reply(db: Connection, message_id: int) -> Reply | None:
    async with db.execute(
        "SELECT message_id, state, final, text, tokens, platform_ids, attempts FROM replies WHERE message_id = ?",
        (message_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    mid, state, final, text, tokens, ids, attempts = tuple(row)
    return Reply(int(mid), state, bool(final), str(text), int(tokens), tuple(json.loads(ids)), int(attempts))


class Store(UsageQueries, AttachmentQueries, FeedbackQueries, RelayQueries):
    """SQLite (aiosqlite, in WAL mode: :mod:`bridge.store.sqlite`) or PostgreSQL (a pool,
    :mod:`bridge.store.postgres`), both behind :class:`~bridge.store.backend.Database`; writes that
    belong together run in one transaction (:meth:`_atomic`)."""

    def __init__(self, backend: Database) -> None:
        self._backend = backend
        self._db: Connection = backend.conn  # single statements
        self.pg = backend if isinstance(backend, PgDatabase) else None  # set: several replicas may share it
        self.dialect: Dialect = backend.dialect
        self._threads: set[str] = set()  # threads known to belong to a session (never unbound): has_thread
        self.writes = WriteHealth()  # the last write's outcome, for readiness

    @classmethod
    async def open(cls, path: str) -> Store:
        db = await SqliteDatabase.connect(path)
        store = cls(db)
        try:
            await store._migrate()
            await db.conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            await db.close()
            raise
        return store

    @classmethod
    async def open_postgres(cls, url: str) -> Store:
        """Connect (a :class:`~bridge.store.postgres.PgUnavailable` names storage.url without the password), migrate."""
        pg = await PgDatabase.connect(url)
        store = cls(pg)
        try:
            await store._migrate()
        except BaseException:
            await pg.close()
            raise
        return store

    async def close(self) -> None:
        await self._backend.close()

    async def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database file, off the event loop (call it on a timer).
        PostgreSQL does its own."""
        await self._backend.checkpoint()

    async def schema_version(self) -> int:
        if self.pg is not None:
            await self._db.execute("CREATE TABLE IF NOT EXISTS bridge_schema (version INTEGER NOT NULL)")
            async with self._db.execute("SELECT MAX(version) FROM bridge_schema") as cur:
                row = await cur.fetchone()
            return int(row[0]) if row and row[0] is not None else 0
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        """Run the missing migrations, each in its own transaction (foreign keys off: tables are rebuilt).

        The same numbered steps on both backends (SQL rewritten by :mod:`bridge.store.sql`); on PostgreSQL
        under an advisory lock, so replicas starting together migrate once.
        """
        if self.pg is None:
            await self._migrate_on(self._db, self._backend.transaction)
            return
        async with self.pg.locked(MIGRATION_LOCK) as raw:
            conn = PgConn(raw)

            @asynccontextmanager
            async def tx() -> AsyncIterator[Connection]:
                async with raw.transaction():
                    yield conn

            await self._migrate_on(conn, tx)

    async def _migrate_on(self, db: Connection, tx: Callable[[], AbstractAsyncContextManager[Connection]]) -> None:
        current = await self.schema_version()
        if current > len(MIGRATIONS):
            raise RuntimeError(f"the database schema (version {current}) is newer than this bridge knows "
                               f"({len(MIGRATIONS)}): upgrade bridge")
        for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
            async with tx():
                if isinstance(step, str):
                    for statement in statements(step):
                        await db.execute(statement)
                else:
                    await step(db)
                if isinstance(db, PgConn):
                    await db.execute("INSERT INTO bridge_schema (version) VALUES (?)", (version,))
                else:
                    await db.execute(f"PRAGMA user_version = {version}")

    async def _atomic(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``body`` as one transaction (on SQLite: one hop to the database thread, group-committed).
        The body may only await its connection's statements. Fenced and health-tracked like :meth:`_tx`."""
        async def fenced(db: Connection) -> T:
            if self.pg is not None:
                await fencing.check_in(db)  # work done under a lease writes only while it holds it
            return await body(db)

        with self._outcome():
            return await self._backend.atomic(fenced)

    @contextmanager
    def _outcome(self) -> Iterator[None]:
        """A write's outcome, kept for readiness (a lost lease is not the store's fault)."""
        try:
            yield
        except fencing.LeaseLost:
            raise
        except Exception as exc:
            self.writes.failed(exc)
            raise
        self.writes.ok()

    async def _read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a body of reads together: one hop on SQLite (see :meth:`Database.read`)."""
        return await self._backend.read(body)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Connection]:
        """A transaction over several awaits (each statement a hop on SQLite): prefer :meth:`_atomic`.
        Fenced and health-tracked like it."""
        with self._outcome():
            async with self._backend.transaction() as conn:
                if self.pg is not None:
                    await fencing.check_in(conn)  # work done under a lease writes only while it holds it
                yield conn

    async def probe_write(self) -> None:
        """One cheap real write (a dedupe row no platform event can have): does the store take writes?"""
        async def tx(db: Connection) -> None:
            await db.execute("INSERT INTO events (event_id, seen_at) VALUES ('bridge:write-probe', ?) "
                             "ON CONFLICT (event_id) DO UPDATE SET seen_at = excluded.seen_at", (time.time(),))
        await self._atomic(tx)

    # ------------------------------------------------------------------------------- incoming

    async def accept(self, *, event_id: str, session_key: str, persona: str, thread: ThreadRef,
                     author: Author, content: str, kind: Literal["chat", "command"] = "chat",
                     tokens: int = 0, refused: str | None = None,
                     attachments: Sequence[Attachment] = (), relay: RelayPlan | None = None,
                     heard: bool = False) -> tuple[Session, int] | None:
        """Record a new user message, atomically with its event id.

        Returns the session and the message id, or None when the event was seen before — so one
        message delivered twice is stored, and answered, once. ``persona`` is the channel rule's:
        it follows the config (a ``/persona`` choice still takes precedence). ``refused`` (the reason)
        stores a message that will not be answered: it does not bind the thread to the session.
        ``heard``: a message of a relay share nobody addressed to the bot: history, never answered.
        ``relay``: its copies in the share's other places, stored with it (bridge/store/relays.py).
        """
        now = time.time()
        async def tx(db: Connection) -> tuple[Session, int] | None:
            cur = await db.execute("INSERT OR IGNORE INTO events (event_id, seen_at) VALUES (?, ?)",
                                   (event_id, now))
            if cur.rowcount == 0:
                return None
            await db.execute(
                "INSERT INTO sessions (key, persona, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET updated_at = excluded.updated_at, persona = excluded.persona",
                (session_key, persona, now, now))
            async with db.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE key = ?", (session_key,)) as c:
                row = await c.fetchone()
            assert row is not None  # just inserted or updated, in this transaction
            session = _session(row)
            if refused is None:
                await db.execute(
                    "INSERT OR IGNORE INTO threads (thread_key, session_id, thread, created_at) VALUES (?, ?, ?, ?)",
                    (thread.key, session.id, json.dumps(thread.to_json()), now))
            async with db.execute(
                "INSERT INTO messages (session_id, kind, author_id, author_name, thread, event_id, content, "
                "tokens, status, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (session.id, kind, author.id, author.name, json.dumps(thread.to_json()), event_id, content,
                 tokens, "refused" if refused is not None else "answered" if heard else "pending",
                 refused if refused is not None else "heard" if heard else None, now)) as c:
                inserted = await c.fetchone()
            assert inserted is not None
            await insert_files(db, int(inserted[0]), attachments, now)
            await insert_relays(db, int(inserted[0]), session.id, relay, thread, now)
            if isinstance(db, PgConn) and refused is None and not heard:  # wakes idle replicas on commit (claims.py)
                await db.execute("SELECT pg_notify('bridge_pending', ?)", (str(session.id),))
            return session, int(inserted[0])

        stored = await self._atomic(tx)
        if stored is not None and refused is None:
            self._known_thread(thread.key)
        return stored

    def _known_thread(self, key: str) -> None:
        if len(self._threads) >= _KNOWN_THREADS:
            self._threads.clear()  # a cache: forgetting costs a query, never a wrong answer
        self._threads.add(key)

    async def has_thread(self, thread: ThreadRef) -> bool:
        """Whether this thread already belongs to a session (a Slack thread the bot is in). From memory
        once known: a thread is never unbound from its session, on either backend."""
        if thread.key in self._threads:
            return True
        async with self._db.execute("SELECT 1 FROM threads WHERE thread_key = ?", (thread.key,)) as cur:
            found = await cur.fetchone() is not None
        if found:
            self._known_thread(thread.key)
        return found

    async def forget_events_before(self, cutoff: float, batch: int = PRUNE_BATCH) -> int:
        """Drop old dedupe ids; platforms redeliver within hours, not weeks.

        Found through the ``seen_at`` index, and deleted a small batch per transaction with the loop
        let go between batches: an hour of ids at once held it ~150 ms (each id sits on its own page
        of the ``event_id`` index), and every webhook, heartbeat and answer with it.
        """
        async def tx(db: Connection) -> int:
            cur = await db.execute("DELETE FROM events WHERE event_id IN "
                                   "(SELECT event_id FROM events WHERE seen_at < ? LIMIT ?)", (cutoff, batch))
            return int(cur.rowcount)

        forgotten = 0
        while True:
            deleted = await self._atomic(tx)
            forgotten += deleted
            if deleted < batch:
                return forgotten
            await asyncio.sleep(0)

    # ------------------------------------------------------------------------------- answering

    async def history(self, session_id: int, before_message_id: int, max_tokens: int,
                      per_turn: int = 0) -> list[Exchange]:
        """The newest exchanges before one message whose tokens fit in ``max_tokens``, oldest first.

        Read newest first a page at a time, so the cost depends on the budget, not on the length of
        the session. Commands and refused messages are not conversation; a failed message is kept
        (the user's words still matter), without a reply.
        """
        return await self._read(lambda db: _history(db, session_id, before_message_id, max_tokens, per_turn))

    async def conversation(self, session_id: int, message_id: int, max_tokens: int,
                           per_turn: int = 0) -> tuple[list[Exchange], dict[int, list[StoredFile]]]:
        """:meth:`history` before ``message_id``, and the files of those turns and of ``message_id``:
        what a prompt is built from, read together (one hop)."""
        async def reads(db: Connection) -> tuple[list[Exchange], dict[int, list[StoredFile]]]:
            history = await _history(db, session_id, message_id, max_tokens, per_turn)
            return history, await files_of(db, [e.message.id for e in history] + [message_id])

        return await self._read(reads)

    async def message(self, message_id: int) -> Message | None:
        async with self._db.execute(f"SELECT {_MSG_COLUMNS} FROM messages WHERE id = ?", (message_id,)) as cur:
            row = await cur.fetchone()
        return _message(row) if row else None

    async def pending(self) -> list[Message]:
        """User messages stored but never answered (a crash, a stop mid-reply), and refusal notices
        not yet delivered, oldest first."""
        async with self._db.execute(
            f"SELECT {_MSG_COLUMNS} FROM messages WHERE status = 'pending' OR (status = 'refused' AND id IN "
            "(SELECT message_id FROM replies WHERE state = 'delivering' AND final = 1)) ORDER BY id") as cur:
            return [_message(r) for r in await cur.fetchall()]

    # ------------------------------------------------------------------------------- replies

    async def reply(self, message_id: int) -> Reply | None:
        return await _reply(self._db, message_id)

    async def _upsert_reply(self, db: Connection, message_id: int, now: float) -> None:
        await db.execute(
            "INSERT INTO replies (message_id, session_id, state, created_at, updated_at) "
            "SELECT id, session_id, 'delivering', ?, ? FROM messages WHERE id = ? "
            "ON CONFLICT(message_id) DO NOTHING", (now, now, message_id))

    async def start_attempt(self, message_id: int, platforms: Collection[str]) -> Attempt | None:
        """Count one more attempt at answering a message, and read what the answer starts from.

        None, counting nothing, when there is nothing to answer: the message is answered (a replay),
        forgotten by ``/reset``, refused with no notice left to deliver, or of a platform not in
        ``platforms`` (not running here).
        """
        now = time.time()
        async def tx(db: Connection) -> Attempt | None:
            async with db.execute(f"SELECT {_MSG_COLUMNS} FROM messages WHERE id = ?", (message_id,)) as cur:
                row = await cur.fetchone()
            msg = _message(row) if row else None
            if msg is None or msg.thread is None or msg.thread.platform not in platforms:
                return None
            if msg.status == "refused":  # answerable only while its notice waits to be delivered
                before = await _reply(db, message_id)
                if before is None or not before.final or before.state != "delivering":
                    return None
            elif msg.status != "pending":
                return None
            async with db.execute(f"SELECT {_SESSION_COLUMNS}, context FROM sessions WHERE id = ?",
                                  (msg.session_id,)) as cur:
                srow = await cur.fetchone()
            assert srow is not None  # a message's session goes only with it
            await self._upsert_reply(db, message_id, now)
            await db.execute("UPDATE replies SET attempts = attempts + 1, updated_at = ? WHERE message_id = ?",
                             (now, message_id))
            reply = await _reply(db, message_id)
            assert reply is not None  # just made
            files = (await files_of(db, [message_id])).get(message_id, [])
            return Attempt(msg, _session(tuple(srow)[:5]), str(srow[5] or ""), reply.attempts - 1, reply, files)

        return await self._atomic(tx)

    async def record_posted(self, message_id: int, platform_ids: list[str]) -> None:
        """The platform messages posted for a reply so far: written as soon as each is posted."""
        now = time.time()
        async def tx(db: Connection) -> None:
            await self._upsert_reply(db, message_id, now)
            await db.execute("UPDATE replies SET platform_ids = ?, updated_at = ? WHERE message_id = ?",
                             (json.dumps(platform_ids), now, message_id))
        await self._atomic(tx)

    async def save_final(self, message_id: int, text: str, tokens: int, usage: UsageRow | None = None) -> None:
        """The whole answer, before it is delivered: recovery delivers it without asking the LLM again.

        ``usage`` (what the answer cost) is written in the same transaction: recovery never asks again,
        so a crash between the two would lose it for good.
        """
        now = time.time()
        async def tx(db: Connection) -> None:
            await self._upsert_reply(db, message_id, now)
            await db.execute("UPDATE replies SET final = 1, text = ?, tokens = ?, updated_at = ? WHERE message_id = ?",
                             (text, tokens, now, message_id))
            if usage is not None:
                await self._add_usage(db, usage, now)
        await self._atomic(tx)

    async def save_tool_log(self, message_id: int, log: str, tokens: int) -> None:
        """The tools an answer used, kept with its reply (before the final text is saved)."""
        now = time.time()
        async def tx(db: Connection) -> None:
            await self._upsert_reply(db, message_id, now)
            await db.execute("UPDATE replies SET tool_log = ?, tool_tokens = ?, updated_at = ? WHERE message_id = ?",
                             (log, tokens, now, message_id))
        await self._atomic(tx)

    async def delivered(self, message_id: int) -> None:
        """The reply is on the platform: the message is answered, and its reply joins the history."""
        now = time.time()
        async def tx(db: Connection) -> None:
            await db.execute("UPDATE replies SET state = 'delivered', updated_at = ? WHERE message_id = ?",
                             (now, message_id))
            await db.execute("UPDATE messages SET status = 'answered' WHERE id = ? AND status != 'refused'",
                             (message_id,))
            await release_answers(db, message_id, now)
            await db.execute("UPDATE sessions SET updated_at = ? WHERE id = "
                             "(SELECT session_id FROM messages WHERE id = ?)", (now, message_id))
        await self._atomic(tx)

    async def fail(self, message_id: int, reason: str) -> None:
        """Give up on a message (the user was told, where the platform let us): it is not retried."""
        async def tx(db: Connection) -> None:
            await db.execute("UPDATE messages SET status = 'failed', reason = ? WHERE id = ? AND status != 'refused'",
                             (reason, message_id))
            await db.execute("UPDATE replies SET state = 'failed', updated_at = ? WHERE message_id = ?",
                             (time.time(), message_id))
        await self._atomic(tx)

    async def mark(self, message_id: int, status: Status) -> None:
        async def tx(db: Connection) -> None:
            await db.execute("UPDATE messages SET status = ? WHERE id = ?", (status, message_id))
        await self._atomic(tx)

    # ------------------------------------------------------------------------------- commands

    async def _confirm(self, db: Connection, message_id: int, text: str) -> None:
        now = time.time()
        await self._upsert_reply(db, message_id, now)
        await db.execute("UPDATE replies SET final = 1, text = ?, updated_at = ? WHERE message_id = ?",
                         (text, now, message_id))

    async def command_done(self, message_id: int, confirmation: str, *, reset: bool = False,
                           persona: str | None = None) -> None:
        """A command's effect and its confirmation, in one transaction: a restart never runs it again.

        ``reset`` forgets every message of the session *before* this one (never one after it);
        ``persona`` switches the session's persona from this point of the conversation on.
        """
        async def tx(db: Connection) -> None:
            async with db.execute("SELECT session_id FROM messages WHERE id = ?", (message_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return
            session_id = int(row[0])
            if reset:
                await db.execute("DELETE FROM replies WHERE session_id = ? AND message_id < ?",
                                 (session_id, message_id))
                await db.execute("DELETE FROM messages WHERE session_id = ? AND id < ?", (session_id, message_id))
            if persona is not None:
                await db.execute("UPDATE sessions SET persona_override = ?, updated_at = ? WHERE id = ?",
                                 (persona, time.time(), session_id))
            await self._confirm(db, message_id, confirmation)
        await self._atomic(tx)

    # ------------------------------------------------------------------------------- sessions

    async def session(self, session_id: int) -> Session | None:
        async with self._db.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)) as cur:
            row = await cur.fetchone()
        return _session(row) if row else None

    async def find_session(self, ref: str) -> Session | None:
        """A session by numeric id or by key."""
        by_id = ref.isdigit()
        where = "id = ?" if by_id else "key = ?"
        async with self._db.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {where}",
                                    (int(ref) if by_id else ref,)) as cur:
            row = await cur.fetchone()
        return _session(row) if row else None

    async def set_context(self, session_id: int, context: str) -> None:
        """Remember what the person looks at beside the conversation (a Slack channel id)."""
        async with self._tx() as db:
            await db.execute("UPDATE sessions SET context = ? WHERE id = ?", (context, session_id))

    async def context(self, session_id: int) -> str:
        """The last context :meth:`set_context` kept for a session ("" when none)."""
        async with self._db.execute("SELECT context FROM sessions WHERE id = ?", (session_id,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row and row[0] else ""

    async def set_persona(self, session_id: int, persona: str) -> None:
        async def tx(db: Connection) -> None:
            await db.execute("UPDATE sessions SET persona_override = ?, updated_at = ? WHERE id = ?",
                             (persona, time.time(), session_id))
        await self._atomic(tx)

    async def reset(self, session_id: int) -> int:
        """Forget a session's history (``bridge sessions reset``): every message that is not waiting
        for an answer, with its reply. Returns how many messages were forgotten."""
        async def tx(db: Connection) -> int:
            await db.execute("DELETE FROM replies WHERE session_id = ? AND message_id IN "
                             "(SELECT id FROM messages WHERE session_id = ? AND status != 'pending')",
                             (session_id, session_id))
            cur = await db.execute("DELETE FROM messages WHERE session_id = ? AND status != 'pending'", (session_id,))
            return cur.rowcount
        return await self._atomic(tx)

    async def sessions(self) -> list[SessionSummary]:
        async with self._db.execute(
            f"SELECT {_SESSION_COLUMNS}, (SELECT COUNT(*) FROM messages m WHERE m.session_id = sessions.id) "
            "FROM sessions ORDER BY updated_at DESC") as cur:
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

    async def transcript(self, session_id: int) -> list[Exchange]:
        """Every message of a session with its reply text, in conversation order (``sessions show``)."""
        async with self._db.execute(
            f"SELECT m.{_MSG_COLUMNS.replace(', ', ', m.')}, r.text, r.tokens, r.tool_log FROM messages m "
            "LEFT JOIN replies r ON r.message_id = m.id AND r.final = 1 "
            "WHERE m.session_id = ? ORDER BY m.id", (session_id,)) as cur:
            rows = await cur.fetchall()
        return [Exchange(_message(r), None if r[11] is None else str(r[11]), int(r[12] or 0), str(r[13] or "[]"))
                for r in rows]
