"""The store's part for 👍/👎: one row per person per answer, a second click replacing the first.

Mixed into :class:`bridge.store.store.Store`. A click names the answer by the event id of the
message it answers (the reply's key, which the platform carried in its button or reaction), so a
click on something the store never answered finds nothing and changes nothing. The persona is the
one that answered (the usage row), so the report stays right after a ``/persona`` switch. Like
usage rows, ratings are not tied to messages by a foreign key: ``/reset`` forgets a conversation,
not what people thought of its answers.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from bridge.store.backend import Connection

FEEDBACK_MIGRATION = """
    CREATE TABLE feedback (
        message_id INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        platform TEXT NOT NULL,
        persona TEXT NOT NULL,
        value INTEGER NOT NULL CHECK (value IN (-1, 1)),
        created_at REAL NOT NULL,
        PRIMARY KEY (message_id, user_id)
    );
    CREATE INDEX feedback_by_time ON feedback(created_at)
"""


@dataclass(frozen=True, slots=True)
class FeedbackLine:
    persona: str
    up: int
    down: int


class FeedbackQueries:
    """Needs the store's ``_db`` and ``_tx`` (see :class:`bridge.store.store.Store`)."""

    _db: Connection

    def _tx(self) -> AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def record_feedback(self, event_id: str, *, platform: str, user_id: str, value: int) -> str | None:
        """Record (or change) one person's rating of one answer; the persona rated, or None when the
        store answered no such message (nothing is recorded)."""
        if value not in (-1, 1):
            raise ValueError("a rating is +1 or -1")
        async with self._tx() as db:
            async with db.execute(
                    "SELECT m.id, COALESCE((SELECT u.persona FROM usage u WHERE u.message_id = m.id), s.persona) "
                    "FROM messages m JOIN sessions s ON s.id = m.session_id "
                    "WHERE m.event_id = ? AND m.kind = 'chat'", (event_id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            message_id, persona = int(row[0]), str(row[1])
            await db.execute(
                "INSERT INTO feedback (message_id, user_id, platform, persona, value, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id, user_id) "
                "DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
                (message_id, user_id, platform, persona, value, time.time()))
            return persona

    async def feedback_report(self, since: float) -> list[FeedbackLine]:
        """👍 and 👎 per persona, for ratings given (or last changed) since a time."""
        async with self._db.execute(
                "SELECT persona, SUM(CASE WHEN value > 0 THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN value < 0 THEN 1 ELSE 0 END) FROM feedback WHERE created_at >= ? "
                "GROUP BY persona ORDER BY persona", (since,)) as cur:
            rows = await cur.fetchall()
        return [FeedbackLine(str(r[0]), int(r[1]), int(r[2])) for r in rows]
