"""A store that fails while answering (a full disk, a write refused): the message is retried in its place,
the platform is not blamed, the user is told when it cannot be done, and readiness says so.

Faults are real SQLite errors, injected from outside the bridge as an operator's tool would: a trigger
written into the database file by another connection refuses some writes until it is dropped.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.config import Config
from bridge.conversation.responder import STORE_FAILED
from platforms.slack import PLACEHOLDER
from tests.fakes import slack_server as slack
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.platform import FakePlatform
from tests.fakes.slack_server import FakeSlack
from tests.waiting import until, until_async

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 5}
server: {port: 0}
platforms:
  github: {token: ghp_abcdef, webhook_secret: s3cr3t-value}
channels:
  - {platform: github, where: "*", trigger: always}
"""


def refuse(db: Path, name: str, when: str, *, table: str = "replies", on: str = "INSERT") -> None:
    """Every ``on`` on ``table`` matching ``when`` fails, as a full disk would, until :func:`allow`."""
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TRIGGER {name} BEFORE {on} ON {table} WHEN {when} "
                     "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")


def allow(db: Path, name: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(f"DROP TRIGGER {name}")


def retried(caplog: pytest.LogCaptureFixture) -> bool:
    """The refused write happened (the bridge logged a warning about it)."""
    return any(r.levelno >= logging.WARNING and r.name.startswith("bridge") for r in caplog.records)


async def test_a_store_error_retries_the_message_in_its_place(
        make_config: Callable[..., Config], fake_llm: FakeOpenAI, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    platform = FakePlatform()
    bridge = Bridge(make_config(YAML, LLM_URL=fake_llm.url), platforms={"github": platform})
    await bridge.start()
    db = tmp_path / "bridge.db"
    try:
        refuse(db, "full", "(SELECT content FROM messages WHERE id = NEW.message_id) = 'first'")
        await platform.say("first", event="e1")
        await platform.say("second", event="e2")
        await until(lambda: retried(caplog))
        allow(db, "full")
        first, second = await platform.reply(), await platform.reply()
        assert (first.text, second.text) == ("You said: first", "You said: second"), "in order, nothing skipped"
        history = fake_llm.requests[-1]["messages"]
        assert [m["content"] for m in history[1:]] == ["first", "You said: first", "second"]
    finally:
        await bridge.stop()


async def test_a_store_that_keeps_failing_is_told_and_the_session_goes_on(
        make_config: Callable[..., Config], fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    platform = FakePlatform()
    bridge = Bridge(make_config(YAML, LLM_URL=fake_llm.url), platforms={"github": platform})
    await bridge.start()
    assert bridge.responder is not None
    bridge.responder.store_retry_s = 1.0
    try:
        refuse(tmp_path / "bridge.db", "full", "(SELECT content FROM messages WHERE id = NEW.message_id) = 'first'")
        await platform.say("first", event="e1")
        await platform.say("second", event="e2")
        notice, answer = await platform.reply(), await platform.reply()
        assert (notice.text, answer.text) == (STORE_FAILED, "You said: second")

        async def settled() -> bool:
            assert bridge.store is not None
            [summary] = await bridge.store.sessions()
            return [m.status for m in await bridge.store.messages(summary.session.id)] == ["failed", "answered"]

        await until_async(settled)
    finally:
        await bridge.stop()


SLACK_YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 5}
server: {port: 0}
platforms:
  slack: {bot_token: "${BOT}", app_token: "${APP}", api_url: "${API}", edit_interval_s: 0.05,
          streaming: "${STREAMING}"}
channels:
  - {platform: slack, where: "*", trigger: mention}
"""


@pytest.mark.parametrize("streaming", ["edit", "native"])
async def test_a_store_failure_while_posting_is_not_blamed_on_slack(
        make_config: Callable[..., Config], fake_llm: FakeOpenAI, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, streaming: str) -> None:
    caplog.set_level(logging.WARNING)
    fake = await FakeSlack().start()
    fake.add_user("U0ALICE", "alice")
    bridge = Bridge(make_config(SLACK_YAML, LLM_URL=fake_llm.url, BOT=slack.BOT_TOKEN, APP=slack.APP_TOKEN,
                                API=fake.url, STREAMING=streaming))
    await bridge.start()
    db = tmp_path / "bridge.db"
    try:
        refuse(db, "full", "1", on="UPDATE OF platform_ids")  # the first post is made, its id not recorded
        mention = slack.app_mention(f"<@{slack.BOT_USER}> hello", user="U0ALICE", channel="C0GENERAL")
        await fake.push(slack.event_callback(mention))
        await until(lambda: retried(caplog))
        assert len(fake.replies("C0GENERAL", mention["ts"])) == 1
        if streaming == "edit":
            assert [p.text for p in fake.replies("C0GENERAL", mention["ts"])] == [PLACEHOLDER]
        allow(db, "full")
        await fake.wait_reply("C0GENERAL", mention["ts"], "You said: hello")
        assert bridge.store is not None

        async def answered() -> bool:
            assert bridge.store is not None
            [summary] = await bridge.store.sessions()
            return [m.status for m in await bridge.store.messages(summary.session.id)] == ["answered"]

        await until_async(answered)
        assert [p.text for p in fake.replies("C0GENERAL", mention["ts"])] == ["You said: hello"], \
            "the first post became the answer; no 'Slack kept refusing' notice"
        assert not any(r.getMessage().startswith("sending to") for r in caplog.records), "Slack is not blamed"
    finally:
        await bridge.stop()
        await fake.stop()


async def get(bridge: Bridge, path: str) -> tuple[int, dict[str, Any]]:
    assert bridge.server is not None
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{bridge.server.port}{path}") as r:
        return r.status, await r.json()


async def test_readiness_follows_the_stores_writes(make_config: Callable[..., Config], fake_llm: FakeOpenAI,
                                                   tmp_path: Path) -> None:
    platform = FakePlatform()
    bridge = Bridge(make_config(YAML, LLM_URL=fake_llm.url), platforms={"github": platform},
                    llm_probe_interval_s=0.1)
    bridge.store_probe_interval_s = 0.1
    await bridge.start()
    db = tmp_path / "bridge.db"
    try:
        async def ready() -> bool:
            return (await get(bridge, "/readyz"))[0] == 200

        await until_async(ready)
        refuse(db, "full", "1", table="events")  # every new message (and the probe) fails to be stored
        refuse(db, "full_update", "1", table="events", on="UPDATE")

        async def store_down() -> list[str]:
            status, body = await get(bridge, "/readyz")
            return [r for r in body["reasons"] if r.startswith("store:")] if status == 503 else []

        [reason] = await until_async(store_down)
        assert "failed" in reason
        status, health = await get(bridge, "/healthz")
        assert status == 200, "alive: a restart would not free the disk"
        assert health["store"]["ok"] is False
        assert health["status"] == "degraded"
        allow(db, "full")
        allow(db, "full_update")
        await until_async(ready)  # the probe writes again: ready without waiting for a message
    finally:
        await bridge.stop()
