"""The core end to end with a queue-based fake platform and a loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bridge.app import Bridge
from bridge.config import Config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.platform import FakePlatform

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm:
  base_url: ${LLM_URL}
  model: fake
  max_retries: 1
  timeout_s: 5
  stream: ${STREAM:-true}
server: {port: 0}
platforms:
  github: {token: ghp_abcdef, webhook_secret: s3cr3t-value}
channels:
  - {platform: github, where: "octo-org/shared-*", persona: collaborator, trigger: always, share: team}
  - {platform: github, where: "octo-org/quiet", trigger: mention}
  - {platform: github, where: "octo-org/*", persona: rust-tutor, trigger: always}
"""


@pytest.fixture
async def bridge(fake_llm: FakeOpenAI,
                 make_config: Callable[..., Config]) -> AsyncIterator[tuple[Bridge, FakePlatform]]:
    platform = FakePlatform("github")
    b = Bridge(make_config(YAML, LLM_URL=fake_llm.url), platforms={"github": platform})
    await b.start()
    yield b, platform
    await b.stop()


async def test_answers_with_persona_and_history(bridge: tuple[Bridge, FakePlatform], fake_llm: FakeOpenAI) -> None:
    _, gh = bridge
    fake_llm.chunk_delay = 0.01  # a model that takes its time: the reply is seen growing
    assert await gh.say("What is ownership?")
    first = await gh.reply()
    assert first.text == "You said: What is ownership?"
    assert len(first.snapshots) > 1, "streamed in several snapshots"
    assert await gh.say("And borrowing?")
    await gh.reply()
    sent = fake_llm.requests[-1]["messages"]
    assert sent[0]["role"] == "system"
    assert "Rust tutor" in sent[0]["content"]
    assert [m["content"] for m in sent[1:]] == ["What is ownership?", "You said: What is ownership?", "And borrowing?"]


async def test_same_event_twice_is_answered_once(bridge: tuple[Bridge, FakePlatform], fake_llm: FakeOpenAI) -> None:
    _, gh = bridge
    assert await gh.say("hello", event="e1")
    assert not await gh.say("hello", event="e1")
    await gh.reply()
    await asyncio.sleep(0.2)
    assert gh.sent.empty()
    assert len(fake_llm.requests) == 1


async def test_reset_forgets_history(bridge: tuple[Bridge, FakePlatform], fake_llm: FakeOpenAI) -> None:
    _, gh = bridge
    await gh.say("remember 42")
    await gh.reply()
    await gh.say("/reset")
    assert "forgotten" in (await gh.reply()).text
    await gh.say("what number?")
    await gh.reply()
    assert [m["content"] for m in fake_llm.requests[-1]["messages"][1:]] == ["what number?"]


async def test_llm_failure_is_explained_and_history_kept(bridge: tuple[Bridge, FakePlatform],
                                                         fake_llm: FakeOpenAI) -> None:
    _, gh = bridge
    fake_llm.fail_next(500, "internal boom with sk-secret", times=2)
    await gh.say("question one")
    text = (await gh.reply()).text
    assert "internal error" in text
    assert "sk-secret" not in text
    assert "Traceback" not in text
    await gh.say("question two")
    await gh.reply()
    assert [m["content"] for m in fake_llm.requests[-1]["messages"][1:]] == ["question one", "question two"]


async def test_shared_sessions_and_speaker_names(bridge: tuple[Bridge, FakePlatform], fake_llm: FakeOpenAI) -> None:
    _, gh = bridge
    await gh.say("hi from a", channel="octo-org/shared-a", thread="1", author="ann")
    await gh.reply()
    await gh.say("hi from b", channel="octo-org/shared-b", thread="9", author="bob")
    reply = await gh.reply()
    assert reply.thread.channel == "octo-org/shared-b"
    contents = [m["content"] for m in fake_llm.requests[-1]["messages"][1:]]
    assert contents[0] == "ann (GitHub): hi from a"
    assert contents[-1] == "bob (GitHub): hi from b"


async def test_mention_trigger_and_bots(bridge: tuple[Bridge, FakePlatform]) -> None:
    _, gh = bridge
    assert not await gh.say("talking among ourselves", channel="octo-org/quiet")
    assert not await gh.say("I am a bot", is_bot=True)
    assert not await gh.say("elsewhere", channel="other-org/repo")
    assert await gh.say("@bot help me", channel="octo-org/quiet", mentioned=True)
    await gh.reply()


async def test_direct_messages_never_join_a_shared_session(bridge: tuple[Bridge, FakePlatform],
                                                           fake_llm: FakeOpenAI) -> None:
    _, gh = bridge
    await gh.say("team talk", channel="octo-org/shared-a", author="ann")
    await gh.reply()
    await gh.say("my private question", channel="octo-org/shared-dm", thread="dm-bob", author="bob", direct=True)
    await gh.reply()
    assert [m["content"] for m in fake_llm.requests[-1]["messages"][1:]] == ["bob: my private question"]
