"""Slack delivery, exactly once and complete: real Bridges on one SQLite file, slack_sdk/slack-bolt
against the loopback Slack, which enforces rate limits and can storm. A "crash" is a Bridge stopped
while its reply is half delivered (see tests/crash.py); the restart is a new Bridge on the same file."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.slack.delivery import PLACEHOLDER, REPLY_EVENT
from tests.crash import answered, crash_on_record, settled
from tests.fakes import slack_server as slack
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.test_slack import ALICE, DM, GENERAL, MENTION, YAML, fake_slack
from tests.waiting import until

__all__ = ["fake_slack"]  # the fixture shared with tests/test_slack.py

DELIVERY_YAML = YAML.replace("edit_interval_s: 0.05",
                             "edit_interval_s: ${EDIT_INTERVAL:-0.05}\n    reply_deadline_s: ${DEADLINE:-120}")
assert DELIVERY_YAML != YAML

Start = Callable[..., Awaitable[Bridge]]


@pytest.fixture
async def start(fake_llm: FakeOpenAI, fake_slack: FakeSlack,
                make_config: Callable[..., Config]) -> AsyncIterator[Start]:
    """Start a Bridge (Socket Mode); every Bridge of a test shares one SQLite file."""
    bridges: list[Bridge] = []

    async def start_bridge(*, grace: float = 20.0, **env: Any) -> Bridge:
        base = {"LLM_URL": fake_llm.url, "SLACK_BOT_TOKEN": slack.BOT_TOKEN, "SLACK_API_URL": fake_slack.url,
                "SLACK_APP_TOKEN": slack.APP_TOKEN}
        bridge = Bridge(make_config(DELIVERY_YAML, **{**base, **env}), shutdown_grace_s=grace)
        bridges.append(bridge)
        await bridge.start()
        return bridge

    yield start_bridge
    for bridge in bridges:
        await bridge.stop()


def question(where: str) -> tuple[dict[str, Any], str | None]:
    """A message to answer and the thread its reply goes to (a DM is answered at its top level)."""
    if where == "dm":
        return slack.message("hello there", user=ALICE, channel=DM, channel_type="im"), None
    mention = slack.app_mention(f"{MENTION} hello there", user=ALICE, channel=GENERAL)
    return mention, str(mention["ts"])


async def test_placeholder_recorded_before_a_crash_is_edited_after_the_restart(
        start: Start, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    first = await start(grace=0.1)
    fake_llm.hold = asyncio.Event()
    mention, thread = question("thread")
    await fake_slack.push(slack.event_callback(mention))
    await until(lambda: fake_slack.replies(GENERAL, thread))
    assert first.store is not None
    store = first.store

    async def recorded() -> bool:
        summaries = await store.sessions()
        if not summaries:
            return False
        [msg] = await store.messages(summaries[0].session.id)
        reply = await store.reply(msg.id)
        return reply is not None and len(reply.platform_ids) == 1

    for _ in range(250):
        if await recorded():
            break
        await asyncio.sleep(0.02)
    await first.stop()
    fake_llm.hold.set()
    fake_llm.hold = None

    second = await start()
    await answered(second)
    [reply] = fake_slack.replies(GENERAL, thread)
    assert reply.versions[0] == PLACEHOLDER
    assert reply.text == "You said: hello there", "the placeholder was edited; nothing posted again"


@pytest.mark.parametrize("where", ["thread", "dm"])
async def test_message_posted_but_not_recorded_is_found_through_its_metadata(
        start: Start, fake_slack: FakeSlack, fake_llm: FakeOpenAI, where: str) -> None:
    first = await start(grace=0.1)
    hanging = crash_on_record(first)  # the placeholder is posted; the store never hears of it
    msg, thread = question(where)
    channel = str(msg["channel"])
    await fake_slack.push(slack.event_callback(msg))
    await until(hanging.is_set)
    await first.stop()
    [placeholder] = fake_slack.replies(channel, thread)
    assert placeholder.metadata is not None
    assert placeholder.metadata["event_type"] == REPLY_EVENT
    assert placeholder.metadata["event_payload"]["part"] == 0

    second = await start()
    await answered(second)
    [reply] = fake_slack.replies(channel, thread)
    assert reply.ts == placeholder.ts
    assert reply.text == "You said: hello there"
    lookup = "conversations.replies" if where == "thread" else "conversations.history"
    [call] = fake_slack.calls_to(lookup)
    assert call.args["include_all_metadata"] in ("1", "true", True)


async def test_update_storm_ends_with_the_complete_answer_in_few_calls(
        start: Start, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    await start()
    answer = "Under a storm of 429s the reply still ends complete, in one message. " * 6
    fake_llm.reply = lambda _: answer
    fake_llm.chunk_delay = 0.04  # ~2 s of streaming
    # Every edit refused for longer than a fixed 3 retries of Retry-After (1 s + jitter) could wait out.
    fake_slack.storm(7.0, methods=("chat.update",), share=1.0)
    mention, thread = question("thread")
    await fake_slack.push(slack.event_callback(mention))
    reply = await fake_slack.wait_reply(GENERAL, thread, answer, timeout=30)
    assert len(fake_slack.replies(GENERAL, thread)) == 1
    updates = fake_slack.calls_to("chat.update")
    refused = [c for c in updates if c.status == 429]
    assert refused, "the storm did refuse edits"
    assert len(updates) <= 15, f"{len(updates)} chat.update calls: Retry-After was not honoured"
    logging.getLogger(__name__).info("storm: %d chat.update calls (%d refused), %d versions shown",
                                     len(updates), len(refused), len(reply.versions))


async def test_refused_past_the_deadline_fails_and_the_thread_is_told_later(
        start: Start, fake_slack: FakeSlack, fake_llm: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bridge = await start(DEADLINE="1.5")
    fake_slack.storm(3.0, methods=("chat.postMessage", "chat.update"), share=1.0)
    mention, thread = question("thread")
    await fake_slack.push(slack.event_callback(mention))
    assert await settled(bridge, lambda now: now == ["failed"], timeout=10) == ["failed"]
    with sqlite3.connect(bridge.config.db_path) as db:  # the reason is for operators, not in the Store API
        assert db.execute("SELECT reason FROM messages").fetchall() == [("platform: SlackApiError",)]
    # Once Slack accepts messages again, the thread hears that its answer was lost, once.
    await until(lambda: any("could not post my answer" in p.text for p in fake_slack.replies(GENERAL, thread)),
                timeout=20)
    [notice] = fake_slack.replies(GENERAL, thread)
    assert "Slack kept refusing" in notice.text
    assert slack.BOT_TOKEN not in caplog.text
