"""The store's part for budgets and the usage report: one ``usage`` row per message that reached the
model, running totals per UTC day and scope, and the refusal notices already given. Mixed into
:class:`bridge.store.store.Store` (same connection, same transactions); plain SQL that PostgreSQL
runs as well.

Usage rows are not tied to messages by a foreign key: ``/reset`` forgets a conversation, never
what it cost, so a budget cannot be escaped by resetting.

Budgets read the running totals (``usage_days``, one row per day and scope, written in the same
transaction as the usage row), so checking a limit costs one key lookup however busy the day was;
summing the day's rows instead grew with traffic (10 ms at 100k answers a day, on every message).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, TypeVar

from bridge.store.backend import Connection

DAY_S = 86400
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

# Version 5: running totals per UTC day for the budgets, filled from the rows already there, and an
# index for pruning old dedupe ids (a full scan of ``events`` otherwise). PostgreSQL rounds the cast, so a
# row from the last half second of a day may be filled into the next one (once, at the upgrade).
_DAY = "CAST(created_at AS BIGINT) / 86400"
USAGE_DAYS_MIGRATION = """
    CREATE INDEX events_by_time ON events(seen_at);
    CREATE TABLE usage_days (
        day INTEGER NOT NULL,
        scope TEXT NOT NULL,
        messages INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        PRIMARY KEY (day, scope)
    );
""" + "".join(
    f"""INSERT INTO usage_days (day, scope, messages, prompt_tokens, completion_tokens)
        SELECT {_DAY}, {key}, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM usage
        GROUP BY {_DAY}{columns};
    """ for key, columns in (("'total'", ""), ("'user:' || platform || ':' || user_id", ", platform, user_id"),
                             ("'session:' || session_key", ", session_key"),
                             ("'channel:' || platform || ':' || channel", ", platform, channel")))


def day_scopes(row: UsageRow) -> tuple[str, ...]:
    """The running totals one usage row adds to (the keys :func:`bridge.policy.budgets.budgets` reads)."""
    return ("total", user_scope(row.platform, row.user_id), session_scope(row.session_key),
            channel_scope(row.platform, row.channel))


def user_scope(platform: str, user_id: str) -> str:
    return f"user:{platform}:{user_id}"


def session_scope(session_key: str) -> str:
    return f"session:{session_key}"


def channel_scope(platform: str, channel: str) -> str:
    return f"channel:{platform}:{channel}"


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


@dataclass(frozen=True, slots=True)
class DayTotals:
    """Ask for one scope's running totals of the UTC day starting at ``day_start``."""

    day_start: float
    scope: str


@dataclass(frozen=True, slots=True)
class UserTotalsSince:
    """Ask for one person's usage rows since a time (the hourly message limit)."""

    since: float
    platform: str
    user_id: str


TotalsQuery = DayTotals | UserTotalsSince


async def _day_totals(db: Connection, day_start: float, scope: str) -> Totals:
    async with db.execute(
            "SELECT messages, prompt_tokens, completion_tokens FROM usage_days WHERE day = ? AND scope = ?",
            (int(day_start // DAY_S), scope)) as cur:
        row = await cur.fetchone()
    return Totals(*(int(v) for v in row)) if row else Totals()


async def _usage_totals(db: Connection, since: float, filters: dict[str, str | None]) -> Totals:
    where: list[str] = ["created_at >= ?"]
    args: list[float | str] = [since]
    for column, value in filters.items():
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    async with db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
            f"FROM usage WHERE {' AND '.join(where)}", args) as cur:
        row = await cur.fetchone()
    return Totals(*(int(v) for v in row)) if row else Totals()


class UsageQueries:
    """Needs the store's ``_db``, ``_atomic`` and ``_tx`` (see :class:`bridge.store.store.Store`)."""

    _db: Connection

    async def _read(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        raise NotImplementedError

    async def _atomic(self, body: Callable[[Connection], Awaitable[T]]) -> T:
        raise NotImplementedError

    def _tx(self) -> AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def _upsert_reply(self, db: Connection, message_id: int, now: float) -> None:
        raise NotImplementedError

    async def record_usage(self, row: UsageRow) -> None:
        """What one attempt at an answer cost, added to its message's row (one row per message)."""
        async def tx(db: Connection) -> None:
            await self._add_usage(db, row, time.time())
        await self._atomic(tx)

    async def _add_usage(self, db: Connection, row: UsageRow, now: float) -> None:
        """Add one attempt's cost, inside the caller's transaction: its row, and today's running totals."""
        async with db.execute("SELECT 1 FROM usage WHERE message_id = ?", (row.message_id,)) as cur:
            first = await cur.fetchone() is None  # a message counts once, however many attempts it took
        await db.execute(
            "INSERT INTO usage (message_id, created_at, platform, channel, session_key, user_id, persona, model, "
            "prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (message_id) DO UPDATE SET prompt_tokens = usage.prompt_tokens + excluded.prompt_tokens, "
            "completion_tokens = usage.completion_tokens + excluded.completion_tokens",
            (row.message_id, now, row.platform, row.channel, row.session_key, row.user_id, row.persona,
             row.model, row.prompt_tokens, row.completion_tokens))
        day = int(now // DAY_S)
        for scope in day_scopes(row):
            await db.execute(
                "INSERT INTO usage_days (day, scope, messages, prompt_tokens, completion_tokens) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, scope) DO UPDATE SET "
                "messages = usage_days.messages + excluded.messages, "
                "prompt_tokens = usage_days.prompt_tokens + excluded.prompt_tokens, "
                "completion_tokens = usage_days.completion_tokens + excluded.completion_tokens",
                (day, scope, int(first), row.prompt_tokens, row.completion_tokens))

    async def day_totals(self, day_start: float, scope: str) -> Totals:
        """One scope's running totals for the UTC day starting at ``day_start`` (one key lookup)."""
        return await _day_totals(self._db, day_start, scope)

    async def usage_totals(self, since: float, *, platform: str | None = None, user_id: str | None = None,
                           channel: str | None = None, session_key: str | None = None) -> Totals:
        """Messages and tokens since a time, for one user, channel or session (or everything)."""
        return await _usage_totals(self._db, since, {"platform": platform, "user_id": user_id, "channel": channel,
                                                     "session_key": session_key})

    async def totals(self, queries: list[TotalsQuery]) -> list[Totals]:
        """Several totals read together, in one trip to the store (every budget of one message)."""
        async def reads(db: Connection) -> list[Totals]:
            return [await _day_totals(db, q.day_start, q.scope) if isinstance(q, DayTotals)
                    else await _usage_totals(db, q.since, {"platform": q.platform, "user_id": q.user_id})
                    for q in queries]

        return await self._read(reads) if queries else []

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

    async def refuse_telling_once(self, message_id: int, thread_key: str, user_id: str, notice: str) -> bool:
        """Store ``notice`` as the reply to a refused message if this is the user's first refusal in
        the thread; True when it was. One transaction: a crash or a failed write cannot leave the
        user marked as told with no notice to deliver (they are then told at their next message)."""
        now = time.time()
        async with self._tx() as db:
            cur = await db.execute(
                "INSERT INTO refusal_notices (thread_key, user_id, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (thread_key, user_id) DO NOTHING", (thread_key, user_id, now))
            if cur.rowcount == 0:
                return False
            await self._upsert_reply(db, message_id, now)
            await db.execute("UPDATE replies SET final = 1, text = ?, updated_at = ? WHERE message_id = ?",
                             (notice, now, message_id))
            return True

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
