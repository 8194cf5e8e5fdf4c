"""The store's part for relayed copies: one row per copy of a message (or of its answer) in another
place of a relay share. Mixed into :class:`bridge.store.store.Store` (same connection, same transactions).

The transactional outbox: a message's copies are written in the transaction that stores the
message, so a crash can lose neither; its answer's copies are written then too, ``held`` until
the answer is delivered in its own place (released in that transaction). A worker then posts each
place's copies one at a time, oldest first, under a lease (several replicas share the rows), and
records each platform id as soon as it has it. A copy tried before (``attempts``) may have been
posted without being recorded: the platform looks for it before posting again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from bridge.store.backend import Connection, rows_for_ids
from bridge.types import Author, ThreadRef

RELAYS_MIGRATION = """
    CREATE TABLE relays (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        session_id INTEGER NOT NULL,
        share TEXT NOT NULL,
        what TEXT NOT NULL CHECK (what IN ('message', 'answer', 'edit', 'delete')),
        copy_of INTEGER,
        place TEXT NOT NULL,
        target TEXT NOT NULL,
        avatar TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN ('held', 'pending', 'delivered', 'failed')),
        platform_ids TEXT NOT NULL DEFAULT '[]',
        attempts INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        ready_at REAL NOT NULL,
        claimed_by TEXT,
        lease_until REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX relays_due ON relays(state, place, ready_at, id);
    CREATE INDEX relays_by_message ON relays(message_id);
    CREATE TABLE relay_threads (
        share TEXT NOT NULL,
        place TEXT NOT NULL,
        thread TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (share, place)
    )
"""

What = Literal["message", "answer", "edit", "delete"]
RelayState = Literal["held", "pending", "delivered", "failed"]


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """Where one accepted message's copies go: the share, and each other place with where to post there.

    ``origin`` is the message's own place; ``answers`` says its answer will be copied too.
    """

    share: str
    origin: str
    targets: tuple[tuple[str, ThreadRef], ...]
    avatar: str = ""
    answers: bool = False


@dataclass(frozen=True, slots=True)
class Relay:
    """One copy to post, with what it shows: the message's (or answer's) text and who wrote it."""

    id: int
    message_id: int
    session_id: int
    share: str
    what: What
    place: str
    target: ThreadRef
    avatar: str
    state: RelayState
    platform_ids: tuple[str, ...]
    attempts: int
    ready_at: float
    author: Author
    origin: ThreadRef | None
    text: str
    persona: str
    copy_of: int | None = None  # an edit or deletion: the copy it changes


@dataclass(frozen=True, slots=True)
class CopyRecord:
    """A copy as ``bridge sessions show`` lists it under its message."""

    what: What
    place: str
    state: RelayState
    platform_ids: tuple[str, ...]


async def insert_relays(db: Connection, message_id: int, session_id: int, plan: RelayPlan | None,
                        origin_thread: ThreadRef, now: float) -> None:
    """Called inside :meth:`Store.accept`'s transaction: the copies are stored with their message."""
    if plan is None:
        return
    if origin_thread.platform == "slack":  # the share's thread in this channel: the first one a person used
        await db.execute("INSERT OR IGNORE INTO relay_threads (share, place, thread, created_at) VALUES (?, ?, ?, ?)",
                         (plan.share, plan.origin, origin_thread.thread, now))
    kinds: list[tuple[What, RelayState]] = [("message", "pending")]
    if plan.answers:
        kinds.append(("answer", "held"))
    for what, state in kinds:
        for place, target in plan.targets:
            await db.execute(
                "INSERT INTO relays (message_id, session_id, share, what, place, target, avatar, state, ready_at, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message_id, session_id, plan.share, what, place, json.dumps(target.to_json()), plan.avatar[:500],
                 state, now, now, now))


async def release_answers(db: Connection, message_id: int, now: float) -> None:
    """Called inside :meth:`Store.delivered`'s transaction: an answer in its own place goes to the others.

    Only a real answer: a refusal (a used-up budget) is for its author, not for every place."""
    await db.execute(
        "UPDATE relays SET state = 'pending', ready_at = ?, updated_at = ? WHERE message_id = ? AND what = 'answer' "
        "AND state = 'held' AND EXISTS (SELECT 1 FROM messages WHERE id = ? AND status = 'answered')",
        (now, now, message_id, message_id))


_RELAY_COLUMNS = ("r.id, r.message_id, r.session_id, r.share, r.what, r.place, r.target, r.avatar, r.state, "
                  "r.platform_ids, r.attempts, r.ready_at, m.author_id, m.author_name, m.thread, m.content, "
                  "rep.text, s.persona, r.copy_of")


def _relay(row: Sequence[Any]) -> Relay:
    (id_, mid, sid, share, what, place, target, avatar, state, ids, attempts, ready_at, aid, aname, thread,
     content, answer, persona, copy_of) = tuple(row)
    return Relay(int(id_), int(mid), int(sid), str(share), what, str(place), ThreadRef.from_json(json.loads(target)),
                 str(avatar), state, tuple(json.loads(ids)), int(attempts), float(ready_at),
                 Author(str(aid), str(aname)), ThreadRef.from_json(json.loads(thread)) if thread else None,
                 str(answer or "") if what == "answer" else str(content), str(persona),
                 int(copy_of) if copy_of is not None else None)


class RelayQueries:
    """Needs the store's ``_db`` and ``_tx`` (see :class:`bridge.store.store.Store`)."""

    _db: Connection

    def _tx(self) -> AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def relay_places_due(self) -> list[str]:
        """Every place with copies waiting to be posted."""
        async with self._db.execute("SELECT DISTINCT place FROM relays WHERE state = 'pending'") as cur:
            return [str(r[0]) for r in await cur.fetchall()]

    async def claim_relay(self, place: str, owner: str, lease_s: float) -> Relay | None:
        """The oldest copy waiting for ``place``, leased to ``owner``; None when there is none, or when
        another worker holds it (one place is written by one worker at a time: that keeps the order)."""
        now = time.time()
        async with self._tx() as db:
            async with db.execute("SELECT id FROM relays WHERE state = 'pending' AND place = ? "
                                  "ORDER BY ready_at, id LIMIT 1", (place,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            cur2 = await db.execute(
                "UPDATE relays SET claimed_by = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE id = ? AND state = 'pending' AND (claimed_by IS NULL OR claimed_by = ? OR lease_until < ?)",
                (owner, now + lease_s, now, int(row[0]), owner, now))
            if not cur2.rowcount:
                return None
        relay = await self.relay(int(row[0]))
        return relay

    async def relay(self, relay_id: int) -> Relay | None:
        async with self._db.execute(
            f"SELECT {_RELAY_COLUMNS} FROM relays r JOIN messages m ON m.id = r.message_id "
            "JOIN sessions s ON s.id = r.session_id LEFT JOIN replies rep ON rep.message_id = r.message_id "
            "WHERE r.id = ?", (relay_id,)) as cur:
            row = await cur.fetchone()
        return _relay(row) if row else None

    async def relay_posted(self, relay_id: int, platform_ids: list[str]) -> None:
        """The platform messages of one copy, written as soon as each is posted."""
        async with self._tx() as db:
            await db.execute("UPDATE relays SET platform_ids = ?, updated_at = ? WHERE id = ?",
                             (json.dumps(platform_ids), time.time(), relay_id))

    async def relay_done(self, relay_id: int, state: Literal["delivered", "failed"], reason: str = "") -> None:
        async with self._tx() as db:
            await db.execute("UPDATE relays SET state = ?, reason = ?, claimed_by = NULL, lease_until = NULL, "
                             "updated_at = ? WHERE id = ?", (state, reason[:200], time.time(), relay_id))

    async def relay_release(self, relay_id: int, owner: str) -> None:
        """Give the lease back after a failed try, so the copy is tried again (here or by another replica)."""
        async with self._tx() as db:
            await db.execute("UPDATE relays SET claimed_by = NULL, lease_until = NULL WHERE id = ? AND claimed_by = ?",
                             (relay_id, owner))

    async def relay_change(self, event_id: str, text: str, *, deleted: bool) -> int:
        """A relayed message was edited (its text and history follow) or deleted: one change per copy,
        queued behind what is already waiting for each place. Returns how many were queued (0: not
        a relayed message, or the same text again, as a redelivered edit is)."""
        now = time.time()
        async with self._tx() as db:
            async with db.execute("SELECT id, content FROM messages WHERE event_id = ?", (event_id,)) as cur:
                row = await cur.fetchone()
            if row is None or (not deleted and str(row[1]) == text):
                return 0
            message_id = int(row[0])
            if not deleted:
                await db.execute("UPDATE messages SET content = ? WHERE id = ?", (text, message_id))
            cur2 = await db.execute(
                "INSERT INTO relays (message_id, session_id, share, what, copy_of, place, target, avatar, state, "
                "ready_at, created_at, updated_at) SELECT message_id, session_id, share, ?, id, place, target, avatar, "
                "'pending', ?, ?, ? FROM relays WHERE message_id = ? AND what = 'message'",
                ("delete" if deleted else "edit", now, now, now, message_id))
            return int(cur2.rowcount or 0)

    async def relay_forget_claims(self) -> None:
        """At start on SQLite (one process): leases of a process that died are void at once."""
        async with self._tx() as db:
            await db.execute("UPDATE relays SET claimed_by = NULL, lease_until = NULL WHERE claimed_by IS NOT NULL")

    async def relay_thread(self, share: str, place: str) -> str | None:
        """The thread a share's copies use in a Slack channel, once there is one."""
        async with self._db.execute("SELECT thread FROM relay_threads WHERE share = ? AND place = ?",
                                    (share, place)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_relay_thread(self, share: str, place: str, thread: str) -> str:
        """The first thread recorded for a share in a channel stays its thread; returns the one in force."""
        async with self._tx() as db:
            await db.execute("INSERT OR IGNORE INTO relay_threads (share, place, thread, created_at) "
                             "VALUES (?, ?, ?, ?)", (share, place, thread, time.time()))
            async with db.execute("SELECT thread FROM relay_threads WHERE share = ? AND place = ?",
                                  (share, place)) as cur:
                row = await cur.fetchone()
        return str(row[0]) if row else thread

    async def copies(self, message_ids: Sequence[int]) -> dict[int, list[CopyRecord]]:
        """The copies of these messages, by message id, in the order they were made."""
        out: dict[int, list[CopyRecord]] = {}
        for mid, what, place, state, pids in await rows_for_ids(
                self._db, "SELECT message_id, what, place, state, platform_ids FROM relays WHERE message_id IN",
                list(message_ids), "id"):
            out.setdefault(int(mid), []).append(CopyRecord(what, str(place), state, tuple(json.loads(pids))))
        return out
