"""Budgets (``limits:``), ``/usage``, ``admins:`` and ``bridge usage``, through the core with the queue-based
fake platform and the loopback OpenAI-compatible server, whose reported usage (10 prompt + 5
completion tokens per streamed answer) is what the budgets and the report must add up."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from bridge import cli
from bridge.app import Bridge
from bridge.config import Config
from bridge.llm.tokens import count_tokens
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.platform import FakePlatform, Sent

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm:
  base_url: ${LLM_URL}
  model: fake
  max_retries: 0
  timeout_s: 5
  stream: ${STREAM:-true}
  prices: {fake: {prompt: 1000, completion: 2000}}
server: {port: 0}
platforms:
  slack: {bot_token: xoxb-test-token, app_token: xapp-test-token}
channels:
  - {platform: slack, where: C0LIMITED, trigger: always, limits: {user_tokens_per_day: 30}}
  - {platform: slack, where: C0HOURLY, trigger: always, limits: {user_messages_per_hour: 1}}
  - {platform: slack, where: C0TEAM, trigger: always, share: team}
  - {platform: slack, where: "*", trigger: always}
limits: {total_tokens_per_day: "${TOTAL:-1000000}"}
admins: {slack: [U0ADMIN]}
"""
PER_ANSWER = 15  # the fake LLM's reported usage: 10 prompt + 5 completion tokens


class Chat:
    """One bridge on the fake platform; ``ask`` says something and returns the reply."""

    def __init__(self, bridge: Bridge, platform: FakePlatform) -> None:
        self.bridge, self.platform = bridge, platform
        self._n = 0

    async def ask(self, text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL",
                  thread: str = "1") -> Sent:
        self._n += 1
        await self.platform.say(text, author=user, channel=channel, thread=thread, event=f"e{time.time()}{self._n}")
        return await self.platform.reply()


@pytest.fixture
def config(make_config: Callable[..., Config], fake_llm: FakeOpenAI) -> Callable[..., Config]:
    def make(**env: str) -> Config:
        return make_config(YAML, LLM_URL=fake_llm.url, **env)
    return make


@pytest.fixture
async def start(config: Callable[..., Config]) -> AsyncIterator[Callable[..., object]]:
    bridges: list[Bridge] = []

    async def run(cfg: Config | None = None) -> Chat:
        platform = FakePlatform("slack")
        bridge = Bridge(cfg or config(), platforms={"slack": platform})
        bridges.append(bridge)
        await bridge.start()
        return Chat(bridge, platform)

    yield run
    for b in bridges:
        await b.stop()


async def test_user_budget_holds_across_a_restart(config: Callable[..., Config], fake_llm: FakeOpenAI) -> None:
    cfg = config()
    first = Bridge(cfg, platforms={"slack": (p1 := FakePlatform("slack"))})
    await first.start()
    chat = Chat(first, p1)
    try:
        assert (await chat.ask("one", channel="C0LIMITED")).text == "You said: one"
        assert (await chat.ask("two", channel="C0LIMITED")).text == "You said: two"
        refused = (await chat.ask("three", channel="C0LIMITED")).text
        assert "user_tokens_per_day" in refused
        assert "daily allowance of 30 tokens" in refused
        assert "resets at 00:00 UTC" in refused
        assert len(fake_llm.requests) == 2, "nothing was sent to the LLM"
        assert (await chat.ask("hi", user="U0BOB", channel="C0LIMITED")).text == "You said: hi"
    finally:
        await first.stop()

    second = Bridge(cfg, platforms={"slack": (p2 := FakePlatform("slack"))})
    await second.start()
    try:
        chat = Chat(second, p2)
        assert "user_tokens_per_day" in (await chat.ask("after the restart", channel="C0LIMITED")).text
        assert len(fake_llm.requests) == 3
        usage = (await chat.ask("/usage", channel="C0LIMITED")).text
        assert "2 answer(s), 30 tokens (20 prompt + 10 completion)" in usage
        assert "user_tokens_per_day: 30 of 30 tokens used, 0 left" in usage
        # The refused messages are stored as refused and are not part of the conversation.
        store = second.store
        assert store is not None
        [summary] = [s for s in await store.sessions() if "C0LIMITED" in s.session.key and "#1" in s.session.key]
        assert [m.status for m in await store.messages(summary.session.id)] == [
            "answered", "answered", "refused", "answered", "refused", "answered"]
        # /reset does not give a budget back.
        await chat.ask("/reset", channel="C0LIMITED")
        assert "user_tokens_per_day" in (await chat.ask("now?", channel="C0LIMITED")).text
    finally:
        await second.stop()


async def test_messages_per_hour(start: Callable[..., object], fake_llm: FakeOpenAI) -> None:
    chat = await start()  # type: ignore[misc]
    assert (await chat.ask("first", channel="C0HOURLY")).text == "You said: first"
    refused = (await chat.ask("second", channel="C0HOURLY")).text
    hour = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%H:00 UTC")
    assert "user_messages_per_hour" in refused
    assert f"resets at {hour}" in refused
    assert (await chat.ask("elsewhere", channel="C0GENERAL")).text == "You said: elsewhere", "per rule"
    assert len(fake_llm.requests) == 2


async def test_total_budget_stops_everyone(config: Callable[..., Config], start: Callable[..., object],
                                           fake_llm: FakeOpenAI) -> None:
    chat = await start(config(TOTAL=str(PER_ANSWER)))  # type: ignore[misc]
    assert (await chat.ask("the only one")).text == "You said: the only one"
    assert "total_tokens_per_day" in (await chat.ask("more", user="U0BOB", channel="C0OTHER")).text
    assert len(fake_llm.requests) == 1


async def test_admins_only_commands(start: Callable[..., object]) -> None:
    chat = await start()  # type: ignore[misc]
    assert "only the bot's admins can switch the persona" in (await chat.ask("/persona rust-tutor")).text
    assert "Currently: `assistant`" in (await chat.ask("/persona")).text, "looking is fine"
    assert "Switched to the `rust-tutor`" in (await chat.ask("/persona rust-tutor", user="U0ADMIN")).text
    assert "only the bot's admins can reset" in (await chat.ask("/reset", channel="C0TEAM")).text
    assert "forgotten" in (await chat.ask("/reset", channel="C0TEAM", user="U0ADMIN")).text
    assert "forgotten" in (await chat.ask("/reset")).text, "anyone may reset their own conversation"
    await chat.ask("count me", user="U0BOB")
    assert "only the bot's admins" in (await chat.ask("/usage all")).text
    everyone = (await chat.ask("/usage all", user="U0ADMIN")).text
    assert f"- slack:U0BOB: 1 answer(s), {PER_ANSWER} tokens" in everyone
    assert "total_tokens_per_day: 15 of 1,000,000 tokens used" in (await chat.ask("/usage", user="U0BOB")).text


@pytest.mark.parametrize("stream", ["true", "false"])
async def test_report_totals_match_the_llm_reported_usage(
        config: Callable[..., Config], start: Callable[..., object], fake_llm: FakeOpenAI, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stream: str) -> None:
    chat = await start(config(STREAM=stream))  # type: ignore[misc]
    answers = [(await chat.ask("a")).text, (await chat.ask("bb", user="U0BOB")).text,
               (await chat.ask("ccc", user="U0BOB", channel="C0TEAM")).text]
    completion = 5 * 3 if stream == "true" else sum(len(a) // 4 for a in answers)  # what the fake reports
    assert chat.bridge.server is not None
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{chat.bridge.server.port}/metrics") as r:
        text = await r.text()
    assert 'bridge_tokens_total{kind="prompt",model="fake",persona="assistant",platform="slack"} 30.0' in text

    monkeypatch.setenv("LLM_URL", fake_llm.url)
    monkeypatch.setenv("STREAM", stream)
    path = str(tmp_path / "bridge.yaml")
    assert await asyncio.to_thread(cli.main, ["usage", "--config", path, "--by", "user"]) == 0
    out = capsys.readouterr().out
    cost = (30 * 1000 + completion * 2000) / 1_000_000
    [total] = [line.split() for line in out.splitlines() if line.startswith("total")]
    assert total == ["total", "3", "30", str(completion), f"{cost:.4f}"], out
    assert "slack:U0BOB" in out
    assert "slack:U0ALICE" in out
    assert await asyncio.to_thread(cli.main, ["usage", "--config", path, "--by", "day", "--since", "1d"]) == 0
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert day in capsys.readouterr().out


async def test_own_count_when_the_server_reports_no_usage(start: Callable[..., object], fake_llm: FakeOpenAI) -> None:
    fake_llm.report_usage = False
    chat = await start()  # type: ignore[misc]
    await chat.ask("count this yourself")
    store = chat.bridge.store
    assert store is not None
    totals = await store.usage_totals(0)
    assert totals.completion_tokens == count_tokens("You said: count this yourself", "fake")
    assert totals.prompt_tokens > count_tokens("count this yourself", "fake"), "the whole request, system included"
