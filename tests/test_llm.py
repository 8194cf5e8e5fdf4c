"""The LLM path's failures as a user sees them, and the SDK's retries, against a loopback server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bridge.app import Bridge
from bridge.config import Config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.platform import FakePlatform

Starter = Callable[..., Awaitable[FakePlatform]]

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm:
  base_url: ${LLM_URL}
  api_key: sk-test-SECRET-key
  model: fake
  max_retries: ${RETRIES:-0}
  timeout_s: ${TIMEOUT:-5}
  answer_timeout_s: ${ANSWER_TIMEOUT:-30}
  stream: ${STREAM:-true}
server: {port: 0}
platforms:
  github: {token: ghp_abcdef, webhook_secret: s3cr3t-value}
channels:
  - {platform: github, where: "*", trigger: always}
"""


@pytest.fixture
async def start(fake_llm: FakeOpenAI, make_config: Callable[..., Config]) -> AsyncIterator[Starter]:
    bridges: list[Bridge] = []

    async def go(**env: str) -> FakePlatform:
        platform = FakePlatform("github")
        bridge = Bridge(make_config(YAML, LLM_URL=fake_llm.url, **env), platforms={"github": platform})
        await bridge.start()
        bridges.append(bridge)
        platform.bridge = bridge  # type: ignore[attr-defined]
        return platform

    yield go
    for b in bridges:
        await b.stop()


@pytest.mark.parametrize(("status", "code", "message", "expected"), [
    (429, "rate_limit_exceeded", "Rate limit reached", "too many requests right now"),
    (429, "insufficient_quota", "You exceeded your current quota", "usage quota is used up"),
    (400, "context_length_exceeded", "This model's maximum context length is 8192 tokens", "too long"),
    (401, "invalid_api_key", "Incorrect API key provided: sk-test-SECRET-key", "check llm.api_key"),
    (404, "model_not_found", "The model `fake` does not exist", "check llm.model"),
    (500, None, "Internal error", "internal error"),
    (503, None, "Overloaded", "internal error"),
    (418, None, "I'm a teapot", "Something went wrong"),
])
@pytest.mark.parametrize("stream", ["true", "false"])
async def test_failures_become_one_plain_sentence(start: Starter, fake_llm: FakeOpenAI, status: int,
                                                   code: str | None, message: str, expected: str,
                                                   stream: str, caplog: pytest.LogCaptureFixture) -> None:
    fake_llm.fail_next(status, message, code=code, times=4)  # context errors are retried with less history
    gh = await start(STREAM=stream)
    await gh.say("hello")
    reply = (await gh.reply()).text
    assert reply.startswith("⚠️ ")
    assert expected in reply
    assert message not in reply
    assert "SECRET" not in reply
    assert "SECRET" not in caplog.text


async def test_timeout_is_explained(start: Starter, fake_llm: FakeOpenAI) -> None:
    fake_llm.hold = asyncio.Event()
    gh = await start(TIMEOUT="0.5")
    await gh.say("are you there?")
    assert "took too long" in (await gh.reply()).text
    fake_llm.hold.set()


async def test_retry_after_is_honoured(start: Starter, fake_llm: FakeOpenAI) -> None:
    fake_llm.fail_next(429, "slow down", code="rate_limit_exceeded", retry_after="1")
    gh = await start(RETRIES="2")
    t0 = time.monotonic()
    await gh.say("hello")
    assert (await gh.reply()).text == "You said: hello"
    assert time.monotonic() - t0 >= 1.0
    assert len(fake_llm.requests) == 2


async def test_context_too_long_is_retried_with_less_history(start: Starter,
                                                              fake_llm: FakeOpenAI) -> None:
    gh = await start()
    for i in range(3):
        await gh.say(f"message {i}")
        await gh.reply()
    fake_llm.fail_next(400, "maximum context length exceeded", code="context_length_exceeded")
    await gh.say("one more")
    assert (await gh.reply()).text == "You said: one more"
    full, trimmed = fake_llm.requests[-2]["messages"], fake_llm.requests[-1]["messages"]
    assert len(trimmed) <= len(full)
    assert trimmed[-1]["content"] == "one more"


async def test_persona_commands(start: Starter, fake_llm: FakeOpenAI) -> None:
    gh = await start()
    await gh.say("/personas")
    listing = (await gh.reply()).text
    assert "`assistant` (current)" in listing
    assert "`legal-adviser`" in listing
    await gh.say("/persona nobody")
    assert "no persona called `nobody`" in (await gh.reply()).text
    await gh.say("/persona legal-adviser")
    assert "Switched to the `legal-adviser` persona" in (await gh.reply()).text
    await gh.say("Can I break my lease?")
    await gh.reply()
    assert "legal adviser" in fake_llm.requests[-1]["messages"][0]["content"]
    assert fake_llm.requests[-1]["temperature"] == 0.2  # the persona's settings apply
    assert fake_llm.requests[-1]["max_tokens"] == 800
    await gh.say("/help")
    assert "/reset" in (await gh.reply()).text


# ------------------------------------------------------------------ retries in one place (issue 8)


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


async def test_a_stream_broken_half_way_is_restarted_and_counted(start: Starter, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = lambda _req: "a long and careful answer, " * 4
    fake_llm.cut_next(after_chunks=3, times=2)  # the connection drops mid-answer, twice
    gh = await start(RETRIES="3")
    await gh.say("explain")
    sent = await gh.reply()
    assert sent.text == "a long and careful answer, " * 4, "the whole answer, nothing glued on"
    assert len(fake_llm.requests) == 3
    text = gh.bridge.metrics.render().decode()  # type: ignore[attr-defined]
    assert metric(text, "bridge_llm_retries_total") == 2
    assert metric(text, 'bridge_llm_attempts_total{outcome="unreachable"}') == 2
    assert metric(text, 'bridge_llm_attempts_total{outcome="ok"}') == 1


async def test_a_half_answer_is_never_shown_with_the_error(start: Starter, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = lambda _req: "the first half of an answer and then more"
    fake_llm.cut_next(after_chunks=2, times=5)
    gh = await start(RETRIES="2")
    await gh.say("explain")
    final = (await gh.reply()).text
    assert final.startswith("⚠️ ")
    assert "first half" not in final  # GitHub posts only this last snapshot


async def test_a_hang_past_timeout_s_is_retried(start: Starter, fake_llm: FakeOpenAI) -> None:
    fake_llm.hang_next(3)
    gh = await start(RETRIES="2", TIMEOUT="0.5")
    await gh.say("hello?")
    assert (await gh.reply()).text == "You said: hello?"


async def test_the_answer_deadline_bounds_every_retry(start: Starter, fake_llm: FakeOpenAI) -> None:
    fake_llm.hang_next(5, times=10)
    gh = await start(RETRIES="10", TIMEOUT="0.4", ANSWER_TIMEOUT="1.5")
    t0 = time.monotonic()
    await gh.say("hello?")
    assert "took too long" in (await gh.reply()).text
    assert time.monotonic() - t0 < 3.0


async def test_the_budget_that_worked_is_remembered(start: Starter, fake_llm: FakeOpenAI) -> None:
    gh = await start()
    await gh.say("first")
    await gh.reply()
    fake_llm.fail_next(400, "maximum context length exceeded", code="context_length_exceeded")
    await gh.say("second")
    await gh.reply()
    before = len(fake_llm.requests)
    await gh.say("third")
    await gh.reply()
    assert len(fake_llm.requests) == before + 1, "no failed request first on the next turn"


async def test_the_servers_window_caps_the_history_budget(start: Starter, fake_llm: FakeOpenAI) -> None:
    fake_llm.props = {"default_generation_settings": {"n_ctx": 600}}
    gh = await start()
    for i in range(30):
        await gh.say(f"message number {i} " + "padding words " * 10)
        await gh.reply()
    last = fake_llm.requests[-1]["messages"]
    assert len(last) < 30, "older turns left out to fit a 600-token window"
    assert last[-1]["content"].startswith("message number 29")
