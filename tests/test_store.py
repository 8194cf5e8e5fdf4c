"""The store, on both backends: the same calls, the same answers, the same numbered migrations.

Every test runs on SQLite (in memory) and on a fresh PostgreSQL database (``postgres`` marker).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest

from bridge.store.sql import to_postgres
from bridge.store.store import MIGRATIONS, Store
from bridge.types import Author, ThreadRef
from tests import pgcluster

ANN = Author("U1", "Ann")


def thread(n: int = 1) -> ThreadRef:
    return ThreadRef("github", "octo", "octo/repo", str(n))


async def accept(store: Store, event: str, text: str = "hi", n: int = 1, kind: str = "chat") -> int:
    accepted = await store.accept(event_id=event, session_key=f"github:octo/repo#{n}", persona="assistant",
                                  thread=thread(n), author=ANN, content=text, kind=kind,  # type: ignore[arg-type]
                                  tokens=len(text))
    assert accepted is not None
    return accepted[1]


async def test_schema_is_at_the_last_migration(store: Store) -> None:
    assert await store.schema_version() == len(MIGRATIONS)


async def test_an_event_is_stored_once(store: Store) -> None:
    first = await accept(store, "github:1")
    again = await store.accept(event_id="github:1", session_key="github:octo/repo#1", persona="assistant",
                               thread=thread(), author=ANN, content="hi")
    assert again is None
    assert [m.id for m in await store.pending()] == [first]
    assert await store.has_thread(thread())
    assert not await store.has_thread(thread(2))


@pytest.mark.postgres
async def test_the_same_event_from_many_writers_is_stored_once(pg_url: str) -> None:
    """PostgreSQL only: three stores (replicas), each a pool of connections, so the eight inserts
    really run at once. SQLite's race (eight connections on one file, contending for its write lock)
    is in tests/test_store_sqlite.py; one SQLite store serialises its own writers by design."""
    stores = await asyncio.gather(*(Store.open_postgres(pg_url) for _ in range(3)))
    try:
        results = await asyncio.gather(*(stores[n % 3].accept(
            event_id="github:same", session_key="github:octo/repo#1", persona="assistant", thread=thread(),
            author=ANN, content="hi") for n in range(8)))
        assert sum(r is not None for r in results) == 1
        assert len(await stores[0].pending()) == 1
    finally:
        for s in stores:
            await s.close()


async def test_a_reply_is_recorded_as_it_is_delivered(store: Store) -> None:
    q1 = await accept(store, "github:1", "first question")
    first = await store.start_attempt(q1, {"github"})
    assert first is not None
    assert first.earlier == 0
    again = await store.start_attempt(q1, {"github"})
    assert again is not None
    assert again.earlier == 1
    await store.record_posted(q1, ["c1"])
    await store.save_final(q1, "first answer", 3)
    reply = await store.reply(q1)
    assert reply is not None
    assert (reply.state, reply.final, reply.text, reply.tokens, reply.platform_ids, reply.attempts) == (
        "delivering", True, "first answer", 3, ("c1",), 2)
    await store.delivered(q1)
    q2 = await accept(store, "github:2", "second question")
    history = await store.history((await store.message(q2)).session_id, q2, 10_000)  # type: ignore[union-attr]
    assert [(e.message.content, e.reply) for e in history] == [("first question", "first answer")]
    assert [m.id for m in await store.pending()] == [q2]
    message = await store.message(q1)
    assert message is not None
    assert message.status == "answered"
    assert message.thread == thread()


async def test_history_fits_the_budget_newest_first(store: Store) -> None:
    ids = [await accept(store, f"github:{i}", "x" * 10) for i in range(5)]
    for mid in ids[:-1]:
        await store.save_final(mid, "yy", 2)
        await store.delivered(mid)
    session = (await store.message(ids[0])).session_id  # type: ignore[union-attr]
    kept = await store.history(session, ids[-1], 25)
    assert [e.message.id for e in kept] == ids[2:4]


async def test_failed_and_refused(store: Store) -> None:
    mid = await accept(store, "github:1")
    await store.fail(mid, "llm: quota")
    other = await accept(store, "github:2")
    await store.mark(other, "refused")
    assert await store.pending() == []
    statuses = [m.status for m in await store.messages((await store.message(mid)).session_id)]  # type: ignore[union-attr]
    assert statuses == ["failed", "refused"]


async def test_a_reset_command_forgets_only_what_came_before(store: Store) -> None:
    before = await accept(store, "github:1", "old")
    await store.save_final(before, "old answer", 2)
    await store.delivered(before)
    reset = await accept(store, "github:2", "/reset", kind="command")
    after = await accept(store, "github:3", "new")
    await store.command_done(reset, "Done", reset=True, persona="rust-tutor")
    session = (await store.message(reset)).session_id  # type: ignore[union-attr]
    assert [m.id for m in await store.messages(session)] == [reset, after]
    assert (await store.session(session)).persona == "rust-tutor"  # type: ignore[union-attr]
    assert (await store.reply(reset)).text == "Done"  # type: ignore[union-attr]


async def test_sessions_listing_transcript_and_reset(store: Store) -> None:
    a = await accept(store, "github:1", "one", n=1)
    await accept(store, "github:2", "two", n=2)
    await store.save_final(a, "answer one", 2)
    await store.delivered(a)
    summaries = await store.sessions()
    assert sorted(s.session.key for s in summaries) == ["github:octo/repo#1", "github:octo/repo#2"]
    found = await store.find_session("github:octo/repo#1")
    assert found is not None
    assert await store.find_session(str(found.id)) == found
    assert [(e.message.content, e.reply) for e in await store.transcript(found.id)] == [("one", "answer one")]
    await store.set_persona(found.id, "legal-adviser")
    assert (await store.session(found.id)).persona == "legal-adviser"  # type: ignore[union-attr]
    assert await store.reset(found.id) == 1
    assert await store.transcript(found.id) == []


async def test_old_event_ids_are_forgotten(store: Store) -> None:
    await accept(store, "github:1")
    assert await store.forget_events_before(time.time() - 3600) == 0
    assert await store.forget_events_before(time.time() + 1) == 1


async def test_unicode_and_quotes_survive(store: Store) -> None:
    text = "l'été ? \"quoted\" — 🦀 $1 ?"
    mid = await accept(store, "github:1", text)
    assert (await store.message(mid)).content == text  # type: ignore[union-attr]


# -------------------------------------------------------------------------- migrations


V1_ROWS = [
    "INSERT INTO sessions (id, key, persona, created_at, updated_at) VALUES (1, 'github:o/r#1', 'assistant', 1, 2)",
    "INSERT INTO threads (thread_key, session_id, thread, created_at) VALUES "
    "('github:o/r#1', 1, '{\"platform\": \"github\", \"workspace\": \"o\", \"channel\": \"o/r\", "
    "\"thread\": \"1\"}', 1)",
    "INSERT INTO messages (id, session_id, role, kind, content, status, created_at) VALUES "
    "(1, 1, 'user', 'chat', 'q1', 'answered', 1)",
    "INSERT INTO messages (id, session_id, role, kind, content, status, created_at) VALUES "
    "(2, 1, 'user', 'chat', 'q2', 'pending', 1.5)",
    "INSERT INTO messages (id, session_id, role, kind, content, status, created_at) VALUES "
    "(3, 1, 'assistant', 'chat', 'a1', 'done', 1.2)",
]


async def _check_upgraded(store: Store) -> None:
    assert await store.schema_version() == len(MIGRATIONS)
    session = await store.find_session("github:o/r#1")
    assert session is not None
    assert [(e.message.content, e.reply) for e in await store.transcript(session.id)] == [("q1", "a1"), ("q2", None)]
    new = await store.accept(event_id="github:new", session_key="github:o/r#1", persona="assistant",
                             thread=ThreadRef.from_json(json.loads(V1_ROWS[1].split("'")[3])), author=ANN,
                             content="q3")
    assert new is not None
    assert new[1] > 2


async def test_a_version_one_sqlite_database_is_upgraded(tmp_path: object) -> None:
    path = f"{tmp_path}/v1.db"
    with sqlite3.connect(path) as db:
        db.executescript(str(MIGRATIONS[0]))
        for row in V1_ROWS:
            db.execute(row)
        db.execute("PRAGMA user_version = 1")
    store = await Store.open(path)
    try:
        await _check_upgraded(store)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_version_one_postgresql_database_is_upgraded(pg_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("CREATE TABLE bridge_schema (version INTEGER NOT NULL); "
                           "INSERT INTO bridge_schema VALUES (1)")
        for statement in str(MIGRATIONS[0]).split(";"):
            if statement.strip():
                await conn.execute(to_postgres(statement))
        for row in V1_ROWS:
            await conn.execute(row)
    finally:
        await conn.close()
    store = await Store.open_postgres(pg_url)
    try:
        await _check_upgraded(store)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(Store.open_postgres(pg_url) for _ in range(3)))
    try:
        assert {await s.schema_version() for s in stores} == {len(MIGRATIONS)}
    finally:
        for s in stores:
            await s.close()


# ------------------------------------------------------------------ errors never show the password


@pytest.mark.postgres
async def test_a_wrong_password_names_storage_url_not_the_password(pg_cluster: pgcluster.Cluster) -> None:
    from bridge.store.postgres import PgUnavailable

    url = pg_cluster.url().replace(pgcluster.PASSWORD, "not-the-password-xyz")
    with pytest.raises(PgUnavailable) as err:
        await Store.open_postgres(url)
    assert "storage.url" in str(err.value)
    assert "password" in str(err.value)
    assert "not-the-password-xyz" not in str(err.value)


async def test_a_refused_connection_names_storage_url_not_the_password() -> None:
    from bridge.store.postgres import PgUnavailable

    port = pgcluster.free_port()
    with pytest.raises(PgUnavailable) as err:
        await Store.open_postgres(f"postgresql://bridge:hunter2-secret@127.0.0.1:{port}/bridge")
    text = str(err.value)
    assert "hunter2-secret" not in text
    assert f"postgresql://bridge@127.0.0.1:{port}/bridge" in text
    assert "storage.url" in text


def test_the_sql_rewrites() -> None:
    assert to_postgres("SELECT a FROM t WHERE b = ? AND c = '?' AND d = ?") == (
        "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2")
    assert to_postgres("INSERT OR IGNORE INTO events (a) VALUES (?)") == (
        "INSERT INTO events (a) VALUES ($1) ON CONFLICT DO NOTHING")
    assert to_postgres("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, at REAL)") == (
        "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT, at DOUBLE PRECISION)")
    with pytest.raises(ValueError, match="PRAGMA"):
        to_postgres("PRAGMA user_version")


async def test_an_attempt_starts_only_for_a_message_still_to_answer(store: Store) -> None:
    """A replay of an answered message, or one whose platform is not running here, is not answered
    and counts no attempt; a pending one comes with its session and where it was asked."""
    q = await accept(store, "github:1", "a question")
    assert await store.start_attempt(q, {"slack"}) is None  # GitHub is not running here
    attempt = await store.start_attempt(q, {"github"})
    assert attempt is not None
    assert (attempt.earlier, attempt.reply.attempts, attempt.message.content) == (0, 1, "a question")
    assert attempt.session.key == "github:octo/repo#1"
    assert attempt.files == []
    assert attempt.context == ""
    await store.save_final(q, "an answer", 2)
    await store.delivered(q)
    assert await store.start_attempt(q, {"github"}) is None  # answered: a replay changes nothing
    reply = await store.reply(q)
    assert reply is not None
    assert reply.attempts == 1
    assert await store.start_attempt(10_000, {"github"}) is None  # forgotten by /reset
