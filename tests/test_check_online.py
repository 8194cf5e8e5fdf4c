"""`bridge check --online` against the loopback fakes: the LLM, GitHub, Slack and Discord, each
reached through its real client library, and what is missing said plainly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import discord_server, slack_server
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.test_cli import ROOT, bridge_cli

CONFIG = f"""
storage: {{url: "sqlite:///bridge.db"}}
llm: {{base_url: "${{LLM_URL}}", model: "${{MODEL:-fake}}", context_tokens: 1000}}
personas_dir: {ROOT / "prompts"}
platforms:
  github: {{token: "${{GH_TOKEN}}", webhook_secret: wh-s3cret-value, api_url: "${{GH_URL}}"}}
  slack: {{bot_token: "{slack_server.BOT_TOKEN}", app_token: "{slack_server.APP_TOKEN}", api_url: "${{SLACK_URL}}"}}
  discord: {{token: "{discord_server.TOKEN}", api_url: "${{DISCORD_URL}}"}}
"""


class Fakes:
    def __init__(self, llm: FakeOpenAI, gh: FakeGitHub, slack: FakeSlack, discord: FakeDiscord) -> None:
        self.llm, self.gh, self.slack, self.discord = llm, gh, slack, discord

    def env(self, **extra: str) -> dict[str, str]:
        return {"LLM_URL": self.llm.url, "GH_URL": self.gh.url, "SLACK_URL": self.slack.url,
                "DISCORD_URL": self.discord.api_url, "GH_TOKEN": "ghp_online_check", **extra}


@pytest.fixture
async def fakes(fake_llm: FakeOpenAI) -> AsyncIterator[Fakes]:
    gh, slack, discord = await FakeGitHub().start(), await FakeSlack().start(), await FakeDiscord().start()
    yield Fakes(fake_llm, gh, slack, discord)
    for fake in (gh, slack, discord):
        await fake.stop()


def config(tmp_path: Path) -> str:
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG)
    return str(path)


async def test_everything_reachable(fakes: Fakes, tmp_path: Path) -> None:
    fakes.llm.props = {"default_generation_settings": {"n_ctx": 2048}}
    code, out, err = await bridge_cli("check", "--online", "--config", config(tmp_path), env=fakes.env())
    assert code == 0, out + err
    assert "ok      llm: model 'fake' (llm.model) is served" in out
    assert "ok      llm: context window 2048 tokens (budget 1000)" in out
    assert "ok      github: signed in as bridge-bot (token)" in out
    assert "ok      github: token scopes read:org, repo" in out
    assert f"ok      slack: signed in as bridge ({slack_server.BOT_USER}) in team Fake Team" in out
    assert "ok      slack: bot scopes cover mentions, threads, DMs and posting" in out
    assert "ok      slack: the app token may open Socket Mode connections" in out
    assert "ok      slack: assistant pane allowed (assistant:write): greeting, prompts, status, titles" in out
    assert "ok      slack: native streaming allowed (chat.startStream)" in out
    assert "ok      discord: signed in as bridge-bot" in out
    assert "ok      discord: the MESSAGE CONTENT intent is on" in out
    assert "ok      discord: application commands allowed in 1 server(s)" in out
    assert out.rstrip().endswith("online check OK")
    for secret in ("ghp_online_check", slack_server.BOT_TOKEN, slack_server.APP_TOKEN, discord_server.TOKEN):
        assert secret not in out + err
    assert not fakes.discord.connections, "checked over REST, the gateway was never opened"


async def test_what_is_missing_is_said(fakes: Fakes, tmp_path: Path) -> None:
    fakes.llm.models = [{"id": "gpt-4o"}, {"id": "gpt-4o-mini"}]
    fakes.gh.scopes = "read:org"
    fakes.slack.scopes = "app_mentions:read,channels:history,groups:history,im:history,mpim:history"
    fakes.discord.message_content_enabled = False
    fakes.slack.refuse_streaming = "not_allowed_token_type"
    fakes.discord.commands_scope = False
    code, out, err = await bridge_cli("check", "--online", "--config", config(tmp_path),
                                      env=fakes.env(MODEL="gpt-4o-mni"))
    assert code == 1, out + err
    assert "MISSING llm: model 'gpt-4o-mni' (llm.model) is not served here; it has e.g. gpt-4o-mini" in out
    assert "MISSING github: the token's scopes (read:org) cannot comment: add repo" in out
    assert "MISSING slack: the bot token lacks the scopes chat:write" in out
    assert "warning slack: without users:read the model sees user ids, not names" in out
    assert ("warning slack: the bot token lacks files:read: files shared in a conversation cannot be read; add it "
            "(OAuth & Permissions) and reinstall the app") in out
    assert "warning slack: assistant: true, but the bot token lacks assistant:write" in out
    assert ("warning slack: native streaming refused (not_allowed_token_type): answers are streamed with edits "
            "instead (or set streaming: edit)") in out
    assert ("warning slack: the bot token lacks chat:write.customize: relayed messages (shares with relay: true) "
            "show their author's name in bold instead of as the poster") in out
    assert "MISSING discord: the MESSAGE CONTENT intent is off" in out
    assert ("warning discord: commands: true, but the bot may not add commands in Test Server (1000): invite it "
            "again with the applications.commands scope (mentions still work)") in out
    assert "4 thing(s) missing" in out
    assert "Traceback" not in err


async def test_refused_and_unreachable(fakes: Fakes, tmp_path: Path) -> None:
    fakes.gh.scopes = None  # a fine-grained token: GitHub does not list its permissions
    code, out, err = await bridge_cli("check", "--online", "--config", config(tmp_path),
                                      env=fakes.env(LLM_URL="http://127.0.0.1:9/v1", GH_TOKEN="bad-token"))
    assert code == 1
    assert "MISSING llm: http://127.0.0.1:9/v1 did not list its models (unreachable) (check llm.base_url)" in out
    assert "MISSING github: GitHub refused platforms.github.token (HTTP 401)" in out
    assert "bad-token" not in out + err
    assert "Traceback" not in err


async def test_fine_grained_token_is_explained(fakes: Fakes, tmp_path: Path) -> None:
    fakes.gh.scopes = None
    code, out, _ = await bridge_cli("check", "--online", "--config", config(tmp_path), env=fakes.env())
    assert code == 0
    assert "warning github: a fine-grained token (GitHub does not tell its permissions)" in out
    assert "ok      llm: the server does not tell its context window; llm.context_tokens (1000)" in out


async def test_the_check_is_quiet_even_with_the_platform_variables_exported(fakes: Fakes, tmp_path: Path) -> None:
    env = fakes.env(SLACK_BOT_TOKEN=slack_server.BOT_TOKEN, SLACK_APP_TOKEN=slack_server.APP_TOKEN,
                    SLACK_SIGNING_SECRET="s3cret-signing")
    code, out, err = await bridge_cli("check", "--online", "--config", config(tmp_path), env=env)
    assert code == 0, out + err
    assert err == ""  # no library narration: "token will be unused", "A retry handler found", "logging in"
    assert "token will be unused" not in out


PLACES = """
channels:
  - {platform: github, where: octo-org/seen}
  - {platform: github, where: "Octo-Org/Seen#5"}
  - {platform: github, where: octo-org/hidden}
  - {platform: github, where: "octo-org/seen#404"}
  - {platform: github, where: octo-org/read-only}
  - {platform: github, where: "octo-org/*"}
  - {platform: slack, where: C0GENERAL}
  - {platform: slack, where: C0OUTSIDE}
  - {platform: slack, where: C0GONE}
  - {platform: discord, where: "%(general)s"}
  - {platform: discord, where: "112233445566779999"}
  - {platform: discord, where: "%(random)s"}
  - {platform: discord, where: "*"}
"""


async def test_each_rule_says_whether_the_bot_can_see_its_place_and_post_there(fakes: Fakes,
                                                                                tmp_path: Path) -> None:
    fakes.gh.add_repo("Octo-Org/Seen", issues=(5,))
    fakes.gh.add_repo("octo-org/read-only", push=False, private=True)
    fakes.slack.add_conversation("C0GENERAL", "general")
    fakes.slack.add_conversation("C0OUTSIDE", "outside", member=False)
    everyone = str(discord_server.GUILD_ID)
    fakes.discord.channels[discord_server.RANDOM]["permission_overwrites"] = [
        {"id": everyone, "type": 0, "allow": "0", "deny": str(1 << 11)}]  # read-only for everyone, the bot too
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG + PLACES % {"general": discord_server.GENERAL, "random": discord_server.RANDOM})
    code, out, err = await bridge_cli("check", "--online", "--config", str(path), env=fakes.env())
    assert code == 1, out + err
    assert "ok      github: channels[0] octo-org/seen: the bot can see octo-org/seen and comment there" in out
    assert "ok      github: channels[1] Octo-Org/Seen#5: the bot can see Octo-Org/Seen and comment there" in out
    assert "MISSING github: channels[2] octo-org/hidden: the token cannot see octo-org/hidden" in out
    assert "MISSING github: channels[3] octo-org/seen#404: octo-org/seen has no issue or pull request #404" in out
    assert "MISSING github: channels[4] octo-org/read-only: the token may read octo-org/read-only but not" in out
    assert "ok      github: channels[5] octo-org/*: a pattern" in out
    assert "ok      slack: channels[6] C0GENERAL: the bot is in #general and may post there" in out
    assert "MISSING slack: channels[7] C0OUTSIDE: the bot is not in #outside" in out
    assert "MISSING slack: channels[8] C0GONE: the bot cannot see this channel" in out
    general, random = discord_server.GENERAL, discord_server.RANDOM
    assert f"ok      discord: channels[9] {general}: the bot can see #general and post there" in out
    assert "MISSING discord: channels[10] 112233445566779999: the bot cannot see this channel" in out
    assert f"MISSING discord: channels[11] {random}: the bot can see #random but not post" in out
    assert "ok      discord: channels[12] *: a pattern" in out
    assert "7 thing(s) missing" in out
    assert err == ""
    assert not fakes.discord.connections, "looked up over REST, the gateway was never opened"


def test_discord_permissions_are_worked_out_as_discord_does() -> None:
    from platforms.discord.places import SEND_MESSAGES, VIEW_CHANNEL, permissions

    roles = [{"id": "1", "permissions": str(VIEW_CHANNEL | SEND_MESSAGES)}, {"id": "2", "permissions": "8"},
             {"id": "3", "permissions": "0"}]
    deny_send = [{"id": "1", "allow": "0", "deny": str(SEND_MESSAGES)}]
    assert not permissions("1", roles, ["3"], "9", deny_send) & SEND_MESSAGES
    assert permissions("1", roles, ["3"], "9", [*deny_send, {"id": "3", "allow": str(SEND_MESSAGES), "deny": "0"}]) \
        & SEND_MESSAGES  # a role's allow beats @everyone's deny
    assert not permissions("1", roles, ["3"], "9", [*deny_send, {"id": "3", "allow": str(SEND_MESSAGES), "deny": "0"},
                                                    {"id": "9", "allow": "0", "deny": str(SEND_MESSAGES)}]) \
        & SEND_MESSAGES  # the member's own overwrite comes last
    assert permissions("1", roles, ["2"], "9", deny_send) & SEND_MESSAGES  # administrators may do anything
