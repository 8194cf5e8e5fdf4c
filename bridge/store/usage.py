"""The store's part for budgets and the usage report: one ``usage`` row per answered message, and the
refusal notices already given. Mixed into :class:`bridge.store.store.Store` (same connection, same
transactions); plain SQL that PostgreSQL runs as well.

Usage rows are not tied to messages by a foreign key: ``/reset`` forgets a conversation, never
what it cost, so a budget cannot be escaped by resetting.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, TypeVar

from bridge.store.backend import Connection

T = TypeVar("T")

USAGE_MIGRATION = """
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        message_id INTEGER UNIQUE,
        created_at REAL NOT NULL,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        session_key TEXT NOT NULL,
        user_id TEXT NOT NULL,
        persona TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL
    );
    CREATE INDEX usage_by_time ON usage(created_at);
    CREATE INDEX usage_by_user ON usage(platform, user_id, created_at);
    CREATE INDEX usage_by_session ON usage(session_key, created_at);
    CREATE INDEX usage_by_channel ON usage(platform, channel, created_at);
    CREATE TABLE refusal_notices (
        thread_key TEXT NOT NULL,
        user_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (thread_key, user_id)
    );
"""

GroupBy = Literal["user", "channel", "persona", "model", "day"]
_GROUP_SQL: dict[str, str] = {
    "user": "platform || ':' || user_id",
    "channel": "platform || ':' || channel",
    "persona": "persona",
    "model": "model",
    "day": "CAST(created_at AS INTEGER) / 86400",  # whole UTC days since 1970 (integer division)
}


@dataclass(frozen=True, slots=True)
class UsageRow:
    message_id: int
    platform: str
    channel: str
    session_key: str
    user_id: str
    persona: str
    model: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Totals:
    messages: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ReportLine:
    key: str
    model: str
    totals: Totals


class UsageQueries:
    """Needs the store's ``_db``, ``_atomic`` and ``_tx`` (see :class:`bridge.store.store.Store`)."""

    _db: Connection

    async def _atomic(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        raise NotImplementedError

    def _tx(self) -> AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def _upsert_reply(self, db: Connection, message_id: int, now: float) -> None:
        raise NotImplementedError

    async def record_usage(self, row: UsageRow) -> None:
        """What one answer cost; recorded once per message, whatever retries or restarts happen."""
        async def tx(db: Connection) -> None:
            await db.execute(
                "INSERT INTO usage (message_id, created_at, platform, channel, session_key, user_id, persona, model, "
                "prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (message_id) DO NOTHING",
                (row.message_id, time.time(), row.platform, row.channel, row.session_key, row.user_id, row.persona,
                 row.model, row.prompt_tokens, row.completion_tokens))
        await self._atomic(tx)

    async def usage_totals(self, since: float, *, platform: str | None = None, user_id: str | None = None,
                           channel: str | None = None, session_key: str | None = None) -> Totals:
        """Messages and tokens since a time, for one user, channel or session (or everything)."""
        where: list[str] = ["created_at >= ?"]
        args: list[float | str] = [since]
        for column, value in (("platform", platform), ("user_id", user_id), ("channel", channel),
                              ("session_key", session_key)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        async with self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
                f"FROM usage WHERE {' AND '.join(where)}", args) as cur:
            row = await cur.fetchone()
        return Totals(*(int(v) for v in row)) if row else Totals()

    async def usage_report(self, since: float, by: GroupBy) -> list[ReportLine]:
        """Totals per ``by`` key and model (the model prices the tokens)."""
        key = _GROUP_SQL[by]
        async with self._db.execute(
                f"SELECT {key}, model, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM usage "
                f"WHERE created_at >= ? GROUP BY {key}, model", (since,)) as cur:
            rows = await cur.fetchall()
        return [ReportLine(str(r[0]), str(r[1]), Totals(int(r[2]), int(r[3]), int(r[4]))) for r in rows]

    async def first_refusal(self, thread_key: str, user_id: str) -> bool:
        """True the first time a user is refused in a thread: only then are they told (once)."""
        async def tx(db: Connection) -> bool:
            cur = await db.execute(
                "INSERT INTO refusal_notices (thread_key, user_id, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (thread_key, user_id) DO NOTHING", (thread_key, user_id, time.time()))
            return cur.rowcount > 0
        return await self._atomic(tx)

    async def refuse(self, message_id: int, reason: str, notice: str | None) -> None:
        """Not answered (access, budget), with the sentence to deliver instead, if any, stored with it."""
        now = time.time()
        async def tx(db: Connection) -> None:
            await db.execute("UPDATE messages SET status = 'refused', reason = ? WHERE id = ?", (reason, message_id))
            if notice:
                await self._upsert_reply(db, message_id, now)
                await db.execute("UPDATE replies SET final = 1, text = ?, updated_at = ? WHERE message_id = ?",
                                 (notice, now, message_id))
        await self._atomic(tx)
