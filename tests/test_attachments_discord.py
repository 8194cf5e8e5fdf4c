"""Files shared on Discord (``attachments[]`` on its CDN), end to end through discord.py, and a
file shared in Slack that a question from Discord can still see (one shared session)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.discord import DiscordPlatform
from platforms.slack import create as create_slack
from tests import sample_files
from tests.fakes import discord_server as fk
from tests.fakes import slack_server as slack
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack

ANSWER = "Noted."
MENTION = f"<@{fk.BOT_ID}>"
YAML = f"""
storage: {{url: "sqlite:///bridge.db"}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0, timeout_s: 5}}
server: {{port: 0}}
platforms:
  discord:
    token: ${{DISCORD_BOT_TOKEN}}
    api_url: ${{DISCORD_API_URL}}
    edit_interval_s: 0.05
  slack:
    bot_token: ${{SLACK_BOT_TOKEN}}
    app_token: ${{SLACK_APP_TOKEN}}
    api_url: ${{SLACK_API_URL}}
    edit_interval_s: 0.05
channels:
  - {{platform: discord, where: "{fk.GENERAL}", persona: assistant, trigger: mention}}
  - {{platform: discord, where: "{fk.TEAM_A}", persona: legal-adviser, trigger: always, share: room}}
  - {{platform: slack, where: C0ROOM, persona: legal-adviser, trigger: mention, share: room}}
"""


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    yield server
    await server.stop()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack().start()
    server.add_user("U0ALICE", "alice", real_name="Alice Liddell", display_name="Alice")
    yield server
    await server.stop()


@pytest.fixture
async def bridge(fake_llm: FakeOpenAI, discord: FakeDiscord, fake_slack: FakeSlack,
                 make_config: Callable[..., Config]) -> AsyncIterator[Bridge]:
    fake_llm.reply = lambda _: ANSWER
    config = make_config(YAML, LLM_URL=fake_llm.url, DISCORD_API_URL=discord.api_url, DISCORD_BOT_TOKEN=discord.token,
                         SLACK_BOT_TOKEN=slack.BOT_TOKEN, SLACK_APP_TOKEN=slack.APP_TOKEN, SLACK_API_URL=fake_slack.url)
    assert config.platforms.discord is not None
    assert config.platforms.slack is not None
    platforms: dict[str, Any] = {
        "discord": DiscordPlatform(config.platforms.discord, rules=config.channels, guild_ready_timeout_s=0.05),
        "slack": create_slack(config.platforms.slack, config)}
    b = Bridge(config, platforms=platforms, serve_http=False)
    await b.start()
    yield b
    await b.stop()


async def answers(discord: FakeDiscord, channel: int, count: int) -> list[str]:
    await discord.wait_until(lambda: sum(p.content.endswith(ANSWER) for p in discord.messages_in(channel)) >= count,
                             timeout=30)
    return [p.content for p in discord.messages_in(channel)]


async def test_cdn_files_are_read_once_and_kept_for_the_next_question(
        bridge: Bridge, discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    lease = discord.cdn_file("lease.pdf", sample_files.pdf("Clause 4: the deposit is 1800 EUR."), "application/pdf")
    notes = discord.cdn_file("notes.md", b"# Notes\nThe landlord keeps the deposit.", "text/markdown")
    await discord.say(f"{MENTION} can they keep my deposit?", attachments=[lease, notes])
    await answers(discord, fk.GENERAL, 1)
    turn = fake_llm.requests[0]["messages"][-1]["content"]
    assert turn.startswith("can they keep my deposit?\n\n<file name=\"lease.pdf\" type=pdf>\n[page 1]\n"
                           "Clause 4: the deposit is 1800 EUR.\n</file>")
    assert turn.endswith("<file name=\"notes.md\" type=text>\n# Notes\nThe landlord keeps the deposit.\n</file>")

    await discord.say(f"{MENTION} and if I leave early?")
    await answers(discord, fk.GENERAL, 2)
    assert "Clause 4: the deposit is 1800 EUR." in fake_llm.requests[1]["messages"][1]["content"]
    assert [f.downloads for f in discord.files.files.values()] == [1, 1], "each file downloaded once"
    assert all(h == "" for f in discord.files.files.values() for h in f.headers_seen), \
        "CDN URLs are signed: the bot token is never sent with them"


async def test_image_reaches_a_vision_persona(bridge: Bridge, discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    photo = discord.cdn_file("clause.jpg", sample_files.png(40, 30), "image/jpeg")  # the bytes decide: a PNG
    await discord.say(MENTION, attachments=[photo])
    await answers(discord, fk.GENERAL, 1)
    turn = fake_llm.requests[0]["messages"][-1]["content"]
    assert turn[0] == {"type": "text", "text": "(No words, only the attached file: the question is about it.)"
                                               "\n\n[Image shared: \"clause.jpg\"]"}
    assert turn[1]["type"] == "image_url"
    assert turn[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


async def test_a_file_shared_in_slack_is_known_to_the_next_question_from_discord(
        bridge: Bridge, discord: FakeDiscord, fake_slack: FakeSlack, fake_llm: FakeOpenAI, tmp_path: Path) -> None:
    event = slack.app_mention(f"<@{slack.BOT_USER}> here is the contract", user="U0ALICE", channel="C0ROOM")
    event["files"] = [slack.shared_file(fake_slack, "contract.txt", b"Article 12: either party may end it.",
                                        "text/plain")]
    await fake_slack.push(slack.event_callback(event))
    await fake_slack.wait_for(lambda: any(r.text.endswith(ANSWER) for r in fake_slack.replies("C0ROOM", event["ts"])),
                              timeout=30)
    await discord.say("can I end it tomorrow?", channel=fk.TEAM_A)
    await answers(discord, fk.TEAM_A, 1)
    history = fake_llm.requests[-1]["messages"]
    assert "Article 12: either party may end it." in history[1]["content"]
    assert history[1]["content"].startswith("Alice (Slack): here is the contract")
    assert history[-1]["content"] == "Ali (mod) (Discord): can I end it tomorrow?"

    letter = discord.cdn_file("letter.txt", b"We end the contract on 1 May.", "text/plain", channel=fk.TEAM_A)
    await discord.say("", channel=fk.TEAM_A, attachments=[letter])
    await answers(discord, fk.TEAM_A, 2)
    assert fake_llm.requests[-1]["messages"][-1]["content"] == (
        "Ali (mod) (Discord): (No words, only the attached file: the question is about it.)\n\n"
        "<file name=\"letter.txt\" type=text>\nWe end the contract on 1 May.\n</file>"), \
        "a file alone, in a shared session, still says who shared it"
