"""SQLite through aiosqlite: nothing SQLite does stalls the event loop, and transactions are group-committed.

The loop is watched by a ticker task that measures how late each of its wake-ups is: a loop stalled
by a busy wait, an fsync or a checkpoint shows as lag.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bridge.app import Bridge
from bridge.config import Config
from bridge.policy.budgets import Scope, budgets
from bridge.policy.config import Limits
from bridge.store.backend import Connection
from bridge.store.sqlite import BodyAwaitedElsewhere, SqliteDatabase
from bridge.store.store import Store
from bridge.store.usage import UsageRow
from bridge.types import Author, ThreadRef
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.platform import FakePlatform, Sent
from tests.waiting import until_async

ANN = Author("U1", "Ann")
YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 20, stream: false}
server: {port: 0}
platforms:
  github: {token: ghp_abcdef, webhook_secret: s3cr3t-value}
channels:
  - {platform: github, where: "*", trigger: always}
"""


class LoopLag:
    """A task that wakes every ``tick`` seconds and keeps the worst lateness seen (the loop's stall)."""

    def __init__(self, tick: float = 0.005) -> None:
        self.tick = tick
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.tick)
            self.worst = max(self.worst, loop.time() - before - self.tick)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


class OutsideWriter:
    """Another connection to the same file (an operator's ``sqlite3`` shell) holding the write lock,
    driven from a thread so the test's own loop stays free."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    async def lock(self) -> None:
        await asyncio.to_thread(self.conn.execute, "BEGIN IMMEDIATE")

    async def release(self) -> None:
        await asyncio.to_thread(self.conn.execute, "COMMIT")
        await asyncio.to_thread(self.conn.close)


@pytest.fixture
async def bridge(fake_llm: FakeOpenAI,
                 make_config: Callable[..., Config]) -> AsyncIterator[tuple[Bridge, FakePlatform]]:
    platform = FakePlatform("github")
    b = Bridge(make_config(YAML, LLM_URL=fake_llm.url), platforms={"github": platform})
    await b.start()
    yield b, platform
    await b.stop()


async def test_a_write_lock_held_from_outside_never_stalls_the_loop(
        bridge: tuple[Bridge, FakePlatform], tmp_path: Path) -> None:
    b, gh = bridge
    assert await gh.say("before the lock", thread="0")  # the file exists, in WAL mode
    await gh.reply()
    outside = OutsideWriter(tmp_path / "bridge.db")
    await outside.lock()
    loop = asyncio.get_running_loop()
    with LoopLag() as lag:
        held_from = loop.time()
        says = [asyncio.create_task(gh.say(f"question {n}", thread=str(n))) for n in range(1, 11)]
        await asyncio.sleep(3)  # the hold itself: the lock is the fault being tested, not a wait for a result
        early = [s for s in says if s.done()]
        await outside.release()
        held = loop.time() - held_from
        stalled = lag.worst
        assert stalled < 0.05, f"the event loop stalled {stalled * 1000:.0f} ms while the lock was held"
        assert not early, "stored (or failed) while another connection held the write lock?"
        assert all(await asyncio.gather(*says))
        replies: list[Sent] = [await gh.reply(timeout=20) for _ in range(10)]
    assert held >= 3
    assert lag.worst < 0.05, f"the event loop stalled {lag.worst * 1000:.0f} ms"
    assert sorted(int(r.thread.thread) for r in replies) == list(range(1, 11))  # every message, once
    assert gh.sent.empty()
    store = b.store
    assert store is not None

    async def nothing_pending() -> bool:
        return await store.pending() == []

    await until_async(nothing_pending)  # the last replies' deliveries are recorded just after they are sent


async def test_transactions_arriving_during_a_commit_are_committed_together(tmp_path: Path) -> None:
    store = await Store.open(str(tmp_path / "b.db"))
    db = store._backend
    assert isinstance(db, SqliteDatabase)
    hops, committed = db.hops, db.committed
    accepted = await asyncio.gather(*(
        store.accept(event_id=f"e{n}", session_key=f"s{n}", persona="assistant",
                     thread=ThreadRef("github", "o", "o/r", str(n)), author=ANN, content="hi") for n in range(50)))
    assert all(a is not None for a in accepted)
    assert db.committed - committed == 50
    assert db.hops - hops < 10, f"{db.hops - hops} hops for 50 transactions: not grouped"
    assert len(await store.pending()) == 50
    await store.close()


async def test_one_failing_transaction_in_a_group_undoes_only_its_own_writes(tmp_path: Path) -> None:
    db = await SqliteDatabase.connect(str(tmp_path / "b.db"))
    await db.conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")

    def insert(n: int, fail: bool = False) -> Callable[[Connection], Awaitable[int]]:
        async def body(conn: Connection) -> int:
            await conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
            if fail:
                raise ValueError("no")
            return n
        return body

    results = await asyncio.gather(*(db.atomic(insert(n, fail=n == 3)) for n in range(6)), return_exceptions=True)
    assert [type(r).__name__ if isinstance(r, BaseException) else r for r in results] == [0, 1, 2, "ValueError", 4, 5]
    async with db.conn.execute("SELECT n FROM t ORDER BY n") as cur:
        assert [r[0] for r in await cur.fetchall()] == [0, 1, 2, 4, 5]
    await db.close()


async def test_a_transaction_that_awaits_anything_else_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    db = await SqliteDatabase.connect(str(tmp_path / "b.db"))
    await db.conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")

    async def body(conn: Connection) -> None:
        await conn.execute("INSERT INTO t (n) VALUES (1)")
        await asyncio.sleep(0)  # would hold the write lock across the event loop

    with pytest.raises(BodyAwaitedElsewhere):
        await db.atomic(body)
    async with db.conn.execute("SELECT COUNT(*) FROM t") as cur:
        assert await cur.fetchone() == (0,)
    await db.close()


async def test_the_same_event_from_connections_racing_for_the_write_lock_is_stored_once(tmp_path: Path) -> None:
    """Eight stores, eight connections, eight threads on one file: the write lock is really contended."""
    path = str(tmp_path / "b.db")
    await (await Store.open(path)).close()  # created and migrated once, before the race
    stores = await asyncio.gather(*(Store.open(path) for _ in range(8)))
    thread = ThreadRef("github", "o", "o/r", "1")
    results = await asyncio.gather(*(s.accept(event_id="github:same", session_key="s", persona="assistant",
                                              thread=thread, author=ANN, content="hi") for s in stores))
    assert sum(r is not None for r in results) == 1
    assert len(await stores[0].pending()) == 1
    for s in stores:
        await s.close()


async def test_a_message_answered_alone_makes_few_trips_to_the_store(bridge: tuple[Bridge, FakePlatform]) -> None:
    """Each trip to the database thread costs a message answered alone ~0.3 ms: what one answer
    needs is read in the hops that write (the attempt with its message, session and files; the
    history with its files), not one hop per part."""
    b, gh = bridge
    store = b.store
    assert store is not None
    db = store._backend
    assert isinstance(db, SqliteDatabase)

    polls = 0

    async def nothing_pending() -> bool:
        nonlocal polls
        polls += 1
        return await store.pending() == []

    assert await gh.say("warm up", thread="1")
    await gh.reply()
    await until_async(nothing_pending)
    before, polls = db.hops, 0
    assert await gh.say("a second question", thread="1")
    reply = await gh.reply()
    await until_async(nothing_pending)
    hops = db.hops - before - polls  # each poll of pending() is a hop of its own
    assert reply.text
    # Accept it; start the attempt; read the conversation; save the answer; mark it delivered (this
    # platform keeps no ids of what it posted: a real one adds that record). Twelve before.
    assert hops <= 5, f"{hops} trips to the store for one answer"


async def test_what_an_answer_reads_never_waits_for_another_writer(tmp_path: Path) -> None:
    """The conversation is read on a snapshot that takes no write lock: an operator's shell holding
    the lock delays writes, never the reading of history."""
    store = await Store.open(str(tmp_path / "b.db"))
    thread = ThreadRef("github", "o", "o/r", "1")
    accepted = await store.accept(event_id="e1", session_key="s1", persona="assistant", thread=thread,
                                  author=ANN, content="hi", tokens=1)
    assert accepted is not None
    session, first = accepted
    second = await store.accept(event_id="e2", session_key="s1", persona="assistant", thread=thread,
                                author=ANN, content="again", tokens=1)
    assert second is not None
    outside = OutsideWriter(tmp_path / "b.db")
    await outside.lock()
    try:
        history, files = await asyncio.wait_for(store.conversation(session.id, second[1], 1000), timeout=1)
    finally:
        await outside.release()
    assert [e.message.id for e in history] == [first]
    assert files == {}
    await store.close()


async def test_every_budget_of_a_message_is_checked_in_one_trip(tmp_path: Path) -> None:
    """With all five limits set, checking them before an answer reads the five totals together."""
    store = await Store.open(str(tmp_path / "b.db"))
    db = store._backend
    assert isinstance(db, SqliteDatabase)
    accepted = await store.accept(event_id="e1", session_key="s1", persona="assistant",
                                  thread=ThreadRef("github", "o", "o/r", "1"), author=ANN, content="hi")
    assert accepted is not None
    await store.record_usage(UsageRow(accepted[1], "github", "o/r", "s1", "U1", "assistant", "fake", 40, 2))
    limits = Limits(user_tokens_per_day=100, user_messages_per_hour=1, session_tokens_per_day=100,
                    channel_tokens_per_day=100, total_tokens_per_day=100)
    before = db.hops
    found = await budgets(store, limits, Scope("github", "U1", "o/r", "s1"), time.time())
    assert db.hops - before == 1
    assert [(b.key, b.used, b.exceeded) for b in found] == [
        ("user_messages_per_hour", 1, True), ("user_tokens_per_day", 42, False),
        ("session_tokens_per_day", 42, False), ("channel_tokens_per_day", 42, False),
        ("total_tokens_per_day", 42, False)]
    await store.close()
