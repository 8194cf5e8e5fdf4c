"""Budgets that cannot be walked past: every attempt at an answer is paid for (cut, failed or retried),
limits are checked when an answer really starts, an answer slot is held only while the model writes,
and a crash right after an answer is saved cannot lose what it cost.

Through the core with the queue-based fake platform and the loopback OpenAI-compatible server, which
reports 10 prompt + 5 completion tokens for every streamed answer it finishes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.config import Config, LLMConfig
from bridge.conversation.answering import Budgets
from bridge.llm.client import LLMClient
from bridge.llm.tokens import PER_MESSAGE, REPLY_PRIMING, count_tokens
from bridge.metrics import Metrics
from bridge.store import store as store_module
from bridge.store.store import MIGRATIONS, Store
from bridge.store.usage import USAGE_DAYS_MIGRATION, Connection, Totals, UsageRow
from bridge.types import Author, ThreadRef
from tests.conftest import new_database
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.platform import FakePlatform, Sent
from tests.waiting import until, until_async

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm:
  base_url: ${LLM_URL}
  model: fake
  max_retries: ${RETRIES:-0}
  timeout_s: 5
  answer_timeout_s: ${ANSWER_TIMEOUT:-30}
  max_concurrent: ${SLOTS:-64}
server: {port: 0}
platforms:
  slack: {bot_token: xoxb-test-token, app_token: xapp-test-token}
channels:
  - {platform: slack, where: "*", trigger: always}
limits: {user_tokens_per_day: "${USER_TOKENS:-1000000}", total_tokens_per_day: "${TOTAL:-1000000}"}
"""


def own_count(request: dict[str, Any]) -> int:
    """The bridge's own count of a request, as the fake server received it."""
    return REPLY_PRIMING + sum(PER_MESSAGE + count_tokens(m["content"], "fake") for m in request["messages"])


@pytest.fixture
async def start(make_config: Callable[..., Config], fake_llm: FakeOpenAI) -> AsyncIterator[Callable[..., Any]]:
    bridges: list[Bridge] = []

    async def run(**env: str) -> tuple[Bridge, FakePlatform]:
        platform = FakePlatform("slack")
        bridge = Bridge(make_config(YAML, LLM_URL=fake_llm.url, **env), platforms={"slack": platform})
        bridges.append(bridge)
        await bridge.start()
        return bridge, platform

    yield run
    for b in bridges:
        await b.stop()


async def ask(platform: FakePlatform, text: str, *, thread: str = "1", user: str = "U0ALICE") -> Sent:
    await platform.say(text, author=user, channel="C0GENERAL", thread=thread, event=f"{thread}:{text}")
    return await platform.reply()


def store_of(bridge: Bridge) -> Store:
    assert bridge.store is not None
    return bridge.store


async def test_an_answer_cut_by_the_deadline_is_paid_for(start: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = lambda _: "word " * 400  # "write 10,000 words", from a slow model
    fake_llm.chunk_delay = 0.2
    bridge, platform = await start(ANSWER_TIMEOUT="1", USER_TOKENS="30")
    assert "took too long" in (await ask(platform, "write 10,000 words")).text
    totals = await store_of(bridge).usage_totals(0)
    assert totals.messages == 1
    assert totals.prompt_tokens == own_count(fake_llm.requests[0]), "the prompt the model read"
    assert totals.completion_tokens > 0, "and what it wrote before the cut"
    refused = (await ask(platform, "write 10,000 words again")).text
    assert "user_tokens_per_day" in refused
    assert len(fake_llm.requests) == 1, "the second one never reached the model"


async def test_every_attempt_of_a_retried_answer_is_paid_for(start: Callable[..., Any],
                                                             fake_llm: FakeOpenAI) -> None:
    fake_llm.cut_next(after_chunks=2)  # the first stream breaks after 16 characters; the retry completes
    bridge, platform = await start(RETRIES="2")
    assert (await ask(platform, "hello there")).text == "You said: hello there"
    assert len(fake_llm.requests) == 2
    totals = await store_of(bridge).usage_totals(0)
    assert totals.messages == 1, "one message, however many attempts"
    assert totals.prompt_tokens == own_count(fake_llm.requests[0]) + 10
    assert totals.completion_tokens == count_tokens("You said: hello there"[:16], "fake") + 5


@pytest.mark.parametrize(("status", "charged"), [(500, True), (429, False)])
async def test_a_failed_attempt_costs_its_prompt_unless_the_server_refused_it(
        start: Callable[..., Any], fake_llm: FakeOpenAI, status: int, charged: bool) -> None:
    fake_llm.fail_next(status, retry_after="0" if status == 429 else None)
    bridge, platform = await start(RETRIES="1")
    assert (await ask(platform, "hi")).text == "You said: hi"
    totals = await store_of(bridge).usage_totals(0)
    assert totals.prompt_tokens == 10 + (own_count(fake_llm.requests[0]) if charged else 0)
    assert totals.completion_tokens == 5


async def test_a_failed_answer_is_paid_for(start: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    fake_llm.cut_next(after_chunks=1)
    bridge, platform = await start()
    assert "⚠️" in (await ask(platform, "hi")).text
    totals = await store_of(bridge).usage_totals(0)
    assert (totals.messages, totals.prompt_tokens) == (1, own_count(fake_llm.requests[0]))


async def test_the_budget_is_checked_when_the_answer_starts(start: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    """``total_tokens_per_day`` worth one answer, one answer slot, six conversations: one answer."""
    fake_llm.hold = asyncio.Event()
    bridge, platform = await start(SLOTS="1", TOTAL="15")
    store = store_of(bridge)
    for n in range(6):
        await platform.say(f"question {n}", author=f"U{n}", channel="C0GENERAL", thread=str(n), event=f"q{n}")

    async def all_started() -> bool:
        ids = [m.id for s in await store.sessions() for m in await store.messages(s.session.id)]
        return len(ids) == 6 and all([await store.reply(i) is not None for i in ids])

    await until_async(all_started)  # each is past its start, waiting for the slot (or, before, past the check)
    await until(lambda: len(fake_llm.requests) == 1)
    fake_llm.hold.set()
    texts = [(await platform.reply()).text for _ in range(6)]
    assert sum(t.startswith("You said:") for t in texts) == 1, texts
    assert sum("total_tokens_per_day" in t for t in texts) == 5, texts
    assert len(fake_llm.requests) == 1
    assert (await store.usage_totals(0)).tokens == 15


async def test_a_slow_platform_does_not_hold_an_answer_slot(start: Callable[..., Any],
                                                           fake_llm: FakeOpenAI) -> None:
    """One slot; the first answer is written but its platform is stuck (a 429 storm): the next is still asked."""
    _, platform = await start(SLOTS="1")
    platform.hold = asyncio.Event()
    await platform.say("first", author="U1", channel="C0GENERAL", thread="1", event="first")
    await until(lambda: platform.read_all == 1)  # the model is done; delivery is stuck
    await platform.say("second", author="U2", channel="C0GENERAL", thread="2", event="second")
    await until(lambda: len(fake_llm.requests) == 2, timeout=5)
    await until(lambda: platform.read_all == 2)
    platform.hold.set()
    assert sorted([(await platform.reply()).text for _ in range(2)]) == ["You said: first", "You said: second"]


async def test_cancelling_the_first_answer_does_not_break_window_discovery(fake_llm: FakeOpenAI) -> None:
    fake_llm.props = {"default_generation_settings": {"n_ctx": 4096}}
    fake_llm.props_hold = asyncio.Event()
    llm = LLMClient(LLMConfig(base_url=fake_llm.url, model="fake", max_retries=0, timeout_s=5), Metrics())
    budgets = Budgets(8000)
    try:
        first = asyncio.create_task(budgets.discover(llm, "fake", 512))
        await until(lambda: fake_llm.props_requests == 1)
        first.cancel()  # that answer was stopped while it waited
        await asyncio.gather(first, return_exceptions=True)
        fake_llm.props_hold.set()
        await budgets.discover(llm, "fake", 512)  # every later answer for the model still gets its budget
        assert budgets.get("fake") == 4096 - 512
        assert fake_llm.props_requests == 1, "asked once"
    finally:
        await budgets.close()
        await llm.close()


def crash_after(store: Store, step: str) -> asyncio.Event:
    """The process dies right after ``step`` commits: every later write hangs, as a killed one never returns."""
    real_step = getattr(store, step)
    real_tx = store._tx
    hanging = asyncio.Event()

    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = await real_step(*args, **kwargs)
        hanging.set()
        return result

    @asynccontextmanager
    async def tx() -> AsyncIterator[Connection]:
        if hanging.is_set():
            await asyncio.Event().wait()
        async with real_tx() as db:
            yield db

    real_atomic = store._atomic

    async def atomic(body: Any) -> Any:
        if hanging.is_set():
            await asyncio.Event().wait()
        return await real_atomic(body)

    setattr(store, step, wrapped)
    store._tx = tx  # type: ignore[method-assign]
    store._atomic = atomic  # type: ignore[method-assign]
    return hanging


async def test_a_crash_right_after_the_answer_is_saved_keeps_its_usage(
        make_config: Callable[..., Config], fake_llm: FakeOpenAI) -> None:
    config = make_config(YAML, LLM_URL=fake_llm.url)
    first = Bridge(config, platforms={"slack": (p1 := FakePlatform("slack"))}, shutdown_grace_s=0)
    await first.start()
    try:
        crashed = crash_after(store_of(first), "save_final")
        await p1.say("hi", author="U0ALICE", channel="C0GENERAL", thread="1", event="hi")
        await asyncio.wait_for(crashed.wait(), 10)
    finally:
        await first.stop()
    second = Bridge(config, platforms={"slack": (p2 := FakePlatform("slack"))})
    await second.start()
    try:
        assert (await p2.reply()).text == "You said: hi", "recovered from the saved answer"
        assert len(fake_llm.requests) == 1
        totals = await store_of(second).usage_totals(0)
        assert (totals.messages, totals.tokens) == (1, 15)
    finally:
        await second.stop()


async def test_pruning_old_event_ids_reads_an_index(tmp_path: Path) -> None:
    store = await Store.open(str(tmp_path / "bridge.db"))
    await store.close()
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        plan = " ".join(str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN DELETE FROM events WHERE seen_at < ?",
                                                       (0,)))
        assert "USING" in plan, plan
        assert "INDEX" in plan, plan
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a SQLite file, or a fresh PostgreSQL database (its URL)."""
    if request.param == "sqlite":
        return str(tmp_path / "bridge.db")
    return await new_database(request.getfixturevalue("pg_cluster"))


async def open_store(where: str) -> Store:
    return await (Store.open_postgres(where) if where.startswith("postgres") else Store.open(where))


async def test_running_totals_add_every_attempt_and_count_a_message_once(database: str) -> None:
    store = await open_store(database)
    try:
        accepted = await store.accept(event_id="e1", session_key="slack:C1#1", persona="assistant",
                                      thread=ThreadRef("slack", "", "C1", "1"), author=Author("U1", "Ann"),
                                      content="hi")
        assert accepted is not None
        mid = accepted[1]
        row = UsageRow(mid, "slack", "C1", "slack:C1#1", "U1", "assistant", "fake", 40, 3)
        await store.record_usage(row)  # a cut attempt
        await store.save_final(mid, "answer", 5, UsageRow(mid, "slack", "C1", "slack:C1#1", "U1", "assistant",
                                                          "fake", 10, 5))
        now = time.time()
        today = now - now % 86400
        for scope in ("total", "user:slack:U1", "session:slack:C1#1", "channel:slack:C1"):
            assert await store.day_totals(today, scope) == Totals(1, 50, 8), scope
        assert await store.usage_totals(0) == Totals(1, 50, 8), "the rows agree with the totals"
        assert await store.day_totals(today, "user:slack:U2") == Totals()
    finally:
        await store.close()


async def test_the_migration_fills_the_running_totals_from_existing_usage(
        database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = MIGRATIONS[:MIGRATIONS.index(USAGE_DAYS_MIGRATION)]  # a database from before the totals
    monkeypatch.setattr(store_module, "MIGRATIONS", before)
    store = await open_store(database)
    now = time.time()
    try:
        async with store._tx() as db:
            for n, (user, prompt) in enumerate([("U1", 10), ("U1", 20), ("U2", 5)]):
                await db.execute(
                    "INSERT INTO usage (message_id, created_at, platform, channel, session_key, user_id, persona, "
                    "model, prompt_tokens, completion_tokens) VALUES (?, ?, 'slack', 'C1', ?, ?, 'a', 'm', ?, 1)",
                    (n, now - 86400 * (n == 2), f"s{n}", user, prompt))
    finally:
        await store.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    store = await open_store(database)
    try:
        today = now - now % 86400
        assert await store.day_totals(today, "total") == Totals(2, 30, 2)
        assert await store.day_totals(today, "user:slack:U1") == Totals(2, 30, 2)
        assert await store.day_totals(today, "channel:slack:C1") == Totals(2, 30, 2)
        assert await store.day_totals(today, "session:s1") == Totals(1, 20, 1)
        assert await store.day_totals(today - 86400, "user:slack:U2") == Totals(1, 5, 1)
    finally:
        await store.close()


async def test_old_event_ids_are_forgotten_a_batch_at_a_time(database: str) -> None:
    store = await open_store(database)
    try:
        for n in range(5):
            await store.accept(event_id=f"old{n}", session_key="k", persona="assistant",
                               thread=ThreadRef("slack", "", "C1", "1"), author=Author("U1", "Ann"), content="hi")
        cutoff = time.time() + 0.001
        await until(lambda: time.time() > cutoff)
        await store.accept(event_id="new", session_key="k", persona="assistant",
                           thread=ThreadRef("slack", "", "C1", "1"), author=Author("U1", "Ann"), content="hi")
        assert await store.forget_events_before(cutoff, batch=2) == 5
        assert await store.accept(event_id="new", session_key="k", persona="assistant",
                                  thread=ThreadRef("slack", "", "C1", "1"), author=Author("U1", "Ann"),
                                  content="hi") is None, "the recent id is still known"
        assert await store.accept(event_id="old0", session_key="k", persona="assistant",
                                  thread=ThreadRef("slack", "", "C1", "1"), author=Author("U1", "Ann"),
                                  content="hi") is not None, "an old one is forgotten"
    finally:
        await store.close()


async def test_an_answer_stopped_by_a_shutdown_is_paid_for(make_config: Callable[..., Config], fake_llm: FakeOpenAI,
                                                           tmp_path: Path) -> None:
    fake_llm.reply = lambda _: "word " * 400
    fake_llm.chunk_delay = 0.2
    bridge = Bridge(make_config(YAML, LLM_URL=fake_llm.url), platforms={"slack": (p := FakePlatform("slack"))},
                    shutdown_grace_s=0)
    await bridge.start()
    try:
        await p.say("write 10,000 words", author="U0ALICE", channel="C0GENERAL", thread="1", event="long")
        await until(lambda: len(fake_llm.requests) == 1)
    finally:
        await bridge.stop()  # the answer is cut half-way; the message stays pending for the next start
    store = await Store.open(str(tmp_path / "bridge.db"))
    try:
        totals = await store.usage_totals(0)
        assert (totals.messages, totals.prompt_tokens) == (1, own_count(fake_llm.requests[0]))
        assert [m.status for s in await store.sessions() for m in await store.messages(s.session.id)] == ["pending"]
    finally:
        await store.close()
