"""People see tools working: each platform's progress signal and summary, end to end through its real
client library against the loopback fakes, with a real MCP server (tests/mcp_server.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import platforms.github.delivery as github_delivery
from bridge.app import Bridge
from bridge.config import Config
from platforms.discord import DiscordPlatform
from tests.fakes import discord_server as fk
from tests.fakes import slack_server as slack
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import Calls, FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.test_discord import YAML as DISCORD_YAML
from tests.test_discord import discord
from tests.test_github import REPO, SECRET, GitHubHarness, comment_payload, fake_github
from tests.test_github import YAML as GITHUB_YAML
from tests.test_slack import ALICE, GENERAL, fake_slack
from tests.test_slack import YAML as SLACK_YAML
from tests.test_tools import RESEARCHER, SERVER, script
from tests.waiting import until

__all__ = ["discord", "fake_github", "fake_slack"]  # fixtures shared with the platforms' own tests

TOOLS = """
tools:
  files:
    command: ["${PY}", "${SERVER}", "files"]
    timeout_s: 30
"""


async def test_github_shows_eyes_at_once_and_lists_the_tools_used(
        tmp_path: Path, make_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github_delivery, "EYES_AFTER_S", 600.0)  # only a starting tool can show 👀 now
    flag = tmp_path / "release"
    fake_llm.reply = script(Calls([("hold", {"flag": str(flag)}), ("lookup", {"term": "x"})]),
                            Calls([("lookup", {"term": "y"})]))
    config = make_config(GITHUB_YAML.replace("persona: rust-tutor", "persona: researcher") + TOOLS,
                         LLM_URL=fake_llm.url, GITHUB_TOKEN="ghp_testtoken123", GITHUB_WEBHOOK_SECRET=SECRET,
                         GITHUB_URL=fake_github.url, PY=sys.executable, SERVER=SERVER)
    (tmp_path / "prompts" / "researcher.yaml").write_text(RESEARCHER.format(steps=4))
    bridge = Bridge(config)
    await bridge.start()
    try:
        h = GitHubHarness(bridge, fake_github, fake_llm)
        await h.deliver("issue_comment", comment_payload("look it up", comment_id=5))
        await until(lambda: Path(f"{flag}.started").exists())
        await until(lambda: fake_github.reactions_on("comment:5") == ["eyes"], timeout=5)
        assert fake_github.comments == []
        flag.touch()
        [body] = await h.comments(REPO, 1, 1)
        assert body.startswith("Found: released | files: x means something precise | files: y means")
        assert "<details><summary>Tools used (3)</summary>\n\n- `hold`\n- `lookup` ×2\n</details>" in body
        await until(lambda: fake_github.reactions_on("comment:5") == [])
    finally:
        await bridge.stop()


async def test_slack_status_says_which_tool_is_running(
        tmp_path: Path, make_config: Callable[..., Config], fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    flag = tmp_path / "release"
    fake_llm.reply = script(Calls([("hold", {"flag": str(flag)})]))
    config = make_config(SLACK_YAML.replace("persona: assistant", "persona: researcher") + TOOLS,
                         LLM_URL=fake_llm.url, SLACK_BOT_TOKEN=slack.BOT_TOKEN, SLACK_APP_TOKEN=slack.APP_TOKEN,
                         SLACK_API_URL=fake_slack.url, PY=sys.executable, SERVER=SERVER)
    (tmp_path / "prompts" / "researcher.yaml").write_text(RESEARCHER.format(steps=4))
    bridge = Bridge(config)
    await bridge.start()
    try:
        mention = slack.app_mention(f"<@{slack.BOT_USER}> look it up", user=ALICE, channel=GENERAL)
        await fake_slack.push(slack.event_callback(mention))
        await until(lambda: Path(f"{flag}.started").exists())
        status = await until(lambda: fake_slack.calls_to("assistant.threads.setStatus"))
        assert status[0].args == {"channel_id": GENERAL, "thread_ts": mention["ts"], "status": "is using hold…"}
        flag.touch()
        await fake_slack.wait_reply(GENERAL, mention["ts"], "Found: released")
    finally:
        await bridge.stop()


async def test_discord_types_while_a_tool_runs(tmp_path: Path, make_config: Callable[..., Config],
                                               discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    flag = tmp_path / "release"
    fake_llm.reply = script(Calls([("hold", {"flag": str(flag)})], text="Let me look."))
    config = make_config(DISCORD_YAML.replace("persona: assistant", "persona: researcher") + TOOLS,
                         LLM_URL=fake_llm.url, DISCORD_API_URL=discord.api_url, DISCORD_BOT_TOKEN=discord.token,
                         PY=sys.executable, SERVER=SERVER)
    (tmp_path / "prompts" / "researcher.yaml").write_text(RESEARCHER.format(steps=4))
    assert config.platforms.discord is not None
    platform = DiscordPlatform(config.platforms.discord, rules=config.channels, guild_ready_timeout_s=0.05)
    bridge = Bridge(config, platforms={"discord": platform}, serve_http=False)
    await bridge.start()
    try:
        await discord.say(f"<@{fk.BOT_ID}> look it up")
        await until(lambda: Path(f"{flag}.started").exists())

        # The answer's own typing stops at its first text ("Let me look."); the tool's start types again.
        await until(lambda: len([c for c in discord.calls if c.path == f"/channels/{fk.GENERAL}/typing"]) == 2)
        flag.touch()
        await discord.wait_until(lambda: any(p.content == "Found: released" for p in discord.messages_in(fk.GENERAL)))
    finally:
        await bridge.stop()
