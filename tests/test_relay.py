"""A relay share (issue 21) end to end: one bridge on the Slack, Discord and GitHub loopback fakes,
people in a Slack channel, a Discord channel and a GitHub issue seeing each other's messages, and
the bot's answers in every place."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.config import ChannelRule, Config, ConfigError, parse_config
from bridge.conversation.rules import match_rule
from bridge.types import ThreadRef
from platforms.discord import DiscordPlatform
from platforms.github import GitHubPlatform
from platforms.slack import SlackPlatform
from tests import pgcluster
from tests.fakes import discord_server as fk
from tests.fakes import slack_server as slack
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.procs import ROOT, BridgeProcess, free_port
from tests.test_cli import bridge_cli
from tests.test_faults import deliver
from tests.test_github import SECRET, GitHubHarness, comment_payload
from tests.waiting import until, until_async

REPO, ISSUE = "octo-org/support", 7
CHANNEL = "C0GENERAL"
ZWSP = "\u200b"

YAML = f"""
storage: {{url: "sqlite:///bridge.db"}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0, timeout_s: 5}}
server: {{port: 0}}
platforms:
  github: {{token: ghp_testtoken123, webhook_secret: "${{SECRET}}", api_url: "${{GITHUB_URL}}"}}
  slack: {{bot_token: "${{SLACK_BOT_TOKEN}}", app_token: "${{SLACK_APP_TOKEN}}", api_url: "${{SLACK_API_URL}}"}}
  discord: {{token: "${{DISCORD_BOT_TOKEN}}", api_url: "${{DISCORD_API_URL}}", edit_interval_s: 0.05}}
shares:
  room: {{relay: true}}
channels:
  - {{platform: slack, where: {CHANNEL}, share: room}}
  - {{platform: discord, where: "{fk.HELP_DESK}", share: room}}
  - {{platform: github, where: "{REPO}#{ISSUE}", share: room, allow: {{users: ["*"]}}}}
"""
SCOPES_WITH_CUSTOMIZE = ("app_mentions:read,channels:history,groups:history,im:history,mpim:history,chat:write,"
                         "chat:write.customize,users:read,files:read")


@dataclass
class Room:
    bridge: Bridge
    llm: FakeOpenAI
    slack: FakeSlack
    discord: FakeDiscord
    gh: FakeGitHub
    github: GitHubHarness
    tmp_path: Path
    env: dict[str, str]
    comment_ids: int = 100

    # --------------------------------------------------------------------- people write

    async def on_slack(self, text: str, *, user: str = "U0ALICE", mention: bool = False) -> dict[str, Any]:
        event = (slack.app_mention(f"<@{slack.BOT_USER}> {text}", user=user, channel=CHANNEL) if mention
                 else slack.message(text, user=user, channel=CHANNEL))
        await self.slack.push(slack.event_callback(event))
        return event

    async def on_discord(self, text: str, *, author: int = fk.BOB, mention: bool = False) -> dict[str, Any]:
        return await self.discord.say(f"<@{fk.BOT_ID}> {text}" if mention else text, channel=fk.HELP_DESK,
                                      author=author)

    async def on_github(self, text: str, *, login: str = "carol", mention: bool = False) -> None:
        self.comment_ids += 1
        body = f"@{self.gh.login} {text}" if mention else text
        status, _ = await self.github.deliver("issue_comment", comment_payload(
            body, number=ISSUE, comment_id=self.comment_ids, login=login, repo=REPO))
        assert status == 202

    # --------------------------------------------------------------------- what each place shows

    def slack_posts(self) -> list[slack.Posted]:
        return [p for p in self.slack.posted if p.channel == CHANNEL]

    def discord_posts(self) -> list[fk.Posted]:
        return self.discord.messages_in(fk.HELP_DESK)

    def github_comments(self) -> list[str]:
        return self.gh.comments_on(REPO, ISSUE)

    async def settled(self) -> None:
        """Every message answered and every copy posted."""
        relay = self.bridge.relay
        assert relay is not None
        assert self.bridge.lanes is not None
        await until(lambda: self.bridge.lanes is not None and self.bridge.lanes.busy == 0)
        await until_async(relay.idle)


@pytest.fixture(params=[{}])
async def room(request: pytest.FixtureRequest, make_config: Callable[..., Config], fake_llm: FakeOpenAI,
               tmp_path: Path) -> AsyncIterator[Room]:
    fake_slack, fake_discord, gh = await FakeSlack().start(), await FakeDiscord().start(), await FakeGitHub().start()
    fake_slack.scopes = SCOPES_WITH_CUSTOMIZE
    fake_slack.add_user("U0ALICE", "alice")
    fake_slack.add_user("U0DAVE", "dave")
    env = {"LLM_URL": fake_llm.url, "SECRET": SECRET, "GITHUB_URL": gh.url, "SLACK_BOT_TOKEN": slack.BOT_TOKEN,
           "SLACK_APP_TOKEN": slack.APP_TOKEN, "SLACK_API_URL": fake_slack.url,
           "DISCORD_BOT_TOKEN": fake_discord.token, "DISCORD_API_URL": fake_discord.api_url}
    fake_discord.manage_webhooks = request.param.get("webhooks", True)
    if not request.param.get("customize", True):
        fake_slack.scopes = SCOPES_WITH_CUSTOMIZE.replace("chat:write.customize,", "")
    config = make_config(YAML, **env)
    p = config.platforms
    assert p.discord is not None
    assert p.slack is not None
    assert p.github is not None
    bridge = Bridge(config, platforms={
        "discord": DiscordPlatform(p.discord, rules=config.channels, guild_ready_timeout_s=0.05),
        "slack": SlackPlatform(p.slack), "github": GitHubPlatform(p.github, config)})
    await bridge.start()
    try:
        yield Room(bridge, fake_llm, fake_slack, fake_discord, gh, GitHubHarness(bridge, gh, fake_llm), tmp_path, env)
    finally:
        await bridge.stop()
        for fake in (fake_slack, fake_discord, gh):
            await fake.stop()


# ----------------------------------------------------------------------------------------- config


def test_a_relay_rule_must_name_one_place(tmp_path: Any) -> None:
    text = YAML.replace(f'where: "{REPO}#{ISSUE}"', 'where: "octo-org/*"').replace(f"where: {CHANNEL}", "where: C0*")
    env = {"LLM_URL": "http://127.0.0.1:9/v1", "SECRET": "s", "GITHUB_URL": "http://127.0.0.1:9",
           "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "SLACK_API_URL": "http://127.0.0.1:9/api/",
           "DISCORD_BOT_TOKEN": "t.t.t", "DISCORD_API_URL": "http://127.0.0.1:9/api/v10"}
    with pytest.raises(ConfigError) as err:
        parse_config(text, base_dir=tmp_path, env=env)
    message = str(err.value)
    assert "channels[0].where: 'C0*' is not one exact place" in message
    assert "channels[2].where: 'octo-org/*' is not one exact place" in message
    assert "channels[1]" not in message
    unused = YAML + "  # nothing else\n"
    unused = unused.replace("  room: {relay: true}", "  room: {relay: true}\n  lobby: {relay: true}")
    with pytest.raises(ConfigError, match=r"shares\.lobby: no channel rule has share: lobby"):
        parse_config(unused, base_dir=tmp_path, env=env)
    # Without relay, a share may span globs as before.
    parse_config(text.replace("room: {relay: true}", "room: {relay: false}"), base_dir=tmp_path, env=env)


def test_one_issue_places_match_that_issue_only() -> None:
    rules = [ChannelRule(platform="github", where="Octo-Org/Support#7", persona="a"),
             ChannelRule(platform="github", where="octo-org/*", persona="b"),
             ChannelRule(platform="discord", where="3001", persona="c")]
    assert match_rule(rules, ThreadRef("github", "", "octo-org/support", "7")) is rules[0]
    assert match_rule(rules, ThreadRef("github", "", "octo-org/support", "70")) is rules[1]
    assert match_rule(rules, ThreadRef("github", "", "OCTO-ORG/other", "7")) is rules[1]
    assert match_rule(rules, ThreadRef("discord", "1", "2001", "3001")) is rules[2], "a Discord thread by its id"


# ------------------------------------------------------------------------------------ relaying


async def test_each_place_sees_the_others_and_the_answer(room: Room) -> None:
    hello = await room.on_slack("hello from Slack")
    await until(lambda: any("hello from Slack" in p.content for p in room.discord_posts()))
    await until(lambda: any("hello from Slack" in c for c in room.github_comments()))
    await room.on_discord("hi from Discord")
    await until(lambda: any("hi from Discord" in p.text for p in room.slack_posts()))
    await until(lambda: any("hi from Discord" in c for c in room.github_comments()))
    await room.on_github("hi from GitHub")
    await until(lambda: any("hi from GitHub" in p.text for p in room.slack_posts()))
    await until(lambda: any("hi from GitHub" in p.content for p in room.discord_posts()))

    # Slack: under the author's name (chat:write.customize), in one thread of the share.
    from_discord = next(p for p in room.slack_posts() if "hi from Discord" in p.text)
    assert from_discord.fields["username"] == "Bob"
    assert from_discord.fields.get("icon_url", "").startswith("https://cdn.discordapp.com/"), "Bob's avatar"
    # Discord: through the channel's webhook, under the author's name.
    from_slack = next(p for p in room.discord_posts() if "hello from Slack" in p.content)
    assert from_slack.bodies[0]["username"] == "alice"
    assert room.discord.calls_to("POST", f"/channels/{fk.HELP_DESK}/webhooks"), "a webhook was made"
    # GitHub: a comment headed with the name and platform.
    assert "**alice (Slack)**:\nhello from Slack" in room.github_comments()
    assert "**Bob (Discord)**:\nhi from Discord" in room.github_comments()

    # Nobody addressed the bot: nothing was answered; the room's words are the session's history.
    assert room.llm.requests == []
    await room.on_discord("what did everyone say?", mention=True)
    await until(lambda: any(p.content.startswith("You said:") for p in room.discord_posts()))
    await until(lambda: any("You said:" in p.text for p in room.slack_posts()))
    await until(lambda: any("You said:" in c for c in room.github_comments()))
    await room.settled()
    history = [m["content"] for m in room.llm.requests[0]["messages"][1:]]
    assert history == ["alice (Slack): hello from Slack", "Bob (Discord): hi from Discord",
                       "carol (GitHub): hi from GitHub", "Bob (Discord): what did everyone say?"]
    answer_copy = next(c for c in room.github_comments() if "You said:" in c)
    assert answer_copy.startswith("↪ _to Bob (Discord)_")

    # Each message once in each other place, never back where it came from (echoes ignored).
    slack_texts = [p.text for p in room.slack_posts()]
    discord_texts = [p.content for p in room.discord_posts()]
    assert sum("hello from Slack" in t for t in slack_texts) == 0
    assert sum("hi from Discord" in t for t in discord_texts) == 0
    assert sum("hi from GitHub" in c for c in room.github_comments()) == 0  # the fake holds the bot's only
    assert [sum(w in t for t in slack_texts) for w in ("hi from Discord", "hi from GitHub", "You said:")] == [1, 1, 1]
    assert [sum(w in t for t in discord_texts) for w in ("hello from Slack", "hi from GitHub", "You said:")] == \
        [1, 1, 1]
    assert [sum(w in c for c in room.github_comments()) for w in ("hello from Slack", "hi from Discord",
                                                                  "You said:")] == [1, 1, 1]
    assert len(room.llm.requests) == 1, "copies never trigger the bot"
    # Slack: every copy in one thread, the share's thread in the channel: where Slack first spoke.
    assert {p.thread_ts for p in room.slack_posts()} == {hello["ts"]}
    assert room.slack.echoed > 0, "Slack sent the copies back, and they were ignored"

    # `bridge sessions show`: each message once (copies never come back as messages), with its copies.
    config = str(room.tmp_path / "bridge.yaml")
    code, out, err = await bridge_cli("sessions", "show", "share:room", "--config", config, env=room.env)
    assert code == 0, err
    assert out.count("hi from Discord") == 1
    assert out.count("[copy] ") == 4 * 2 + 2, out  # four messages and one answer, each in two other places
    assert f"[copy] slack:{CHANNEL}: posted" in out
    assert f"[copy] github:{REPO}#{ISSUE}: posted" in out


async def test_copies_notify_nobody(room: Room) -> None:
    await room.on_slack("<!channel> <!here> look, <@U0DAVE>")
    await room.on_discord("@everyone @here see this")
    await room.on_github("@octocat @octo-org/team heads up")
    await until(lambda: (len(room.github_comments()), len(room.discord_posts()), len(room.slack_posts())) == (2, 2, 2))
    await room.settled()
    for p in room.slack_posts():
        sent = p.fields["markdown_text"]
        assert "<!" not in sent
        assert "<@" not in sent
        assert "@here" not in sent.replace("@" + ZWSP, "")
        assert "@everyone" not in sent.replace("@" + ZWSP, "")
    for p in room.discord_posts():
        assert p.bodies[0]["allowed_mentions"] == {"parse": []}, p.bodies[0]
    for c in room.github_comments():
        assert "@octocat" not in c
        assert "@everyone" not in c.replace("@" + ZWSP, "")
    assert any("@\u200beveryone" in c for c in room.github_comments())


async def test_order_under_ten_quick_messages_from_three_places(room: Room) -> None:
    senders = [room.on_slack, room.on_discord, room.on_github]  # message i comes from senders[i % 3]
    for i in range(10):
        await senders[i % 3](f"message {i}")
    await room.settled()
    assert room.bridge.store is not None
    (summary,) = await room.bridge.store.sessions()
    stored = [m.content for m in await room.bridge.store.messages(summary.session.id)]
    assert sorted(stored) == sorted(f"message {i}" for i in range(10))

    def seen(texts: list[str]) -> list[str]:
        return [next(w for w in stored if w in t) for t in texts if "message " in t]

    def others(origin: int) -> list[str]:
        return [w for w in stored if int(w.split()[-1]) % 3 != origin]

    assert seen([p.text for p in room.slack_posts()]) == others(0), "in the order the bridge stored them"
    assert seen([p.content for p in room.discord_posts()]) == others(1)
    assert seen(room.github_comments()) == others(2)
    limited = [c for c in room.slack.calls if c.method == "chat.postMessage" and c.status == 429]
    assert limited, "Slack's one post a second per channel was met, and waited out: nothing lost"


async def test_files_are_relayed_as_links_where_others_can_open_them(room: Room) -> None:
    photo = room.discord.cdn_file("rack.png", b"\x89PNG fake", "image/png", channel=fk.HELP_DESK)
    await room.discord.say("the broken rack", channel=fk.HELP_DESK, author=fk.BOB, attachments=[photo])
    event = slack.message("the log", user="U0ALICE", channel=CHANNEL)
    event.update(subtype="file_share", files=[slack.shared_file(room.slack, "server.log", b"boom", "text/plain")])
    await room.slack.push(slack.event_callback(event))
    await until(lambda: len(room.github_comments()) == 2)
    await room.settled()
    assert sorted(room.github_comments()) == [  # a Slack file needs the bot's token: named, not linked
        f"**Bob (Discord)**:\nthe broken rack\n\n📎 [rack.png]({photo['url']})",
        "**alice (Slack)**:\nthe log\n\n📎 server.log (shared on Slack)"]
    assert room.llm.requests == []


async def test_a_long_message_reaches_discord_in_parts_and_whole(room: Room) -> None:
    long = " ".join(f"word{i}" for i in range(600))  # about 5,000 characters: Discord takes 2,000 a message
    await room.on_slack(long)
    await until(lambda: len(room.discord_posts()) >= 3)
    await room.settled()
    parts = [p.content for p in room.discord_posts()]
    assert all(len(p) <= 2000 for p in parts)
    assert " ".join(parts).split() == [*long.split(), "-#", "Slack"], "every word once, in order"
    assert {p.bodies[0]["username"] for p in room.discord_posts()} == {"alice"}


async def test_edits_and_deletions_follow_their_copies(room: Room) -> None:
    typo = await room.on_slack("teh plan is ready")
    await until(lambda: any("teh plan" in p.content for p in room.discord_posts()))
    await until(lambda: any("teh plan" in c for c in room.github_comments()))
    await room.slack.push(slack.event_callback(slack.message_changed(CHANNEL, typo["ts"], "the plan is ready",
                                                                     user="U0ALICE")))
    await until(lambda: any(p.content.startswith("the plan is ready") for p in room.discord_posts()))
    await until(lambda: "**alice (Slack)**:\nthe plan is ready" in room.github_comments())
    assert not any("teh plan" in p.content for p in room.discord_posts())
    assert not any("teh plan" in c for c in room.github_comments())

    oops = await room.on_discord("wrong channel, sorry")
    await until(lambda: any("wrong channel" in p.text for p in room.slack_posts()))
    await until(lambda: any("wrong channel" in c for c in room.github_comments()))
    await room.discord.dispatch("MESSAGE_UPDATE", {**oops, "content": "wrong channel, sorry!!",
                                                   "edited_timestamp": "2024-05-01T12:01:00.000000+00:00"})
    await until(lambda: any("wrong channel, sorry!!" in p.text for p in room.slack_posts()))
    await room.discord.dispatch("MESSAGE_DELETE", {"id": oops["id"], "channel_id": oops["channel_id"],
                                                   "guild_id": oops["guild_id"]})
    await until(lambda: not any("wrong channel" in p.text for p in room.slack_posts()))
    await until(lambda: not any("wrong channel" in c for c in room.github_comments()))

    await room.on_github("see PR #12")
    await until(lambda: any("see PR #12" in p.content for p in room.discord_posts()))
    edited = comment_payload("see PR #13", number=ISSUE, comment_id=room.comment_ids, login="carol", repo=REPO)
    edited["action"] = "edited"
    assert (await room.github.deliver("issue_comment", edited))[0] == 202
    await until(lambda: any("see PR #13" in p.content for p in room.discord_posts()))
    await until(lambda: any("see PR #13" in p.text for p in room.slack_posts()))
    await room.settled()
    assert [p.text for p in room.slack.deleted] == ["wrong channel, sorry!!\n_(Discord)_"]
    assert room.llm.requests == [], "edits and deletions are not questions"
    # The edit is what the model will read (the echoes of the bridge's own changes were ignored).
    assert room.bridge.store is not None
    (summary,) = await room.bridge.store.sessions()
    assert [m.content for m in await room.bridge.store.messages(summary.session.id)] == [
        "the plan is ready", "wrong channel, sorry!!", "see PR #13"]


@pytest.mark.parametrize("room", [{"customize": False, "webhooks": False}], indirect=True)
async def test_without_the_scope_or_permission_copies_are_headed_with_the_name(room: Room) -> None:
    await room.on_discord("hi from Discord")
    await until(lambda: any("hi from Discord" in p.text for p in room.slack_posts()))
    await room.settled()  # the copy's thread is recorded once it is posted: a person writing in that instant wins
    await room.on_slack("hello from Slack")
    await until(lambda: any("hello from Slack" in p.content for p in room.discord_posts()))
    await room.settled()
    (on_slack,) = [p for p in room.slack_posts() if "hi from Discord" in p.text]
    assert "username" not in on_slack.fields
    assert on_slack.text == "**Bob (Discord)**:\nhi from Discord"
    (on_discord,) = [p for p in room.discord_posts() if "hello from Slack" in p.content]
    assert on_discord.content == "**alice (Slack)**:\nhello from Slack"
    assert not room.discord.webhooks, "no webhook without Manage Webhooks: the bot posts the copy"
    # Copies came before anyone wrote in Slack: the first copy started the share's thread there.
    assert on_slack.thread_ts is None
    await room.on_discord("and a second one")
    await until(lambda: any("a second one" in p.text for p in room.slack_posts()))
    assert next(p for p in room.slack_posts() if "a second one" in p.text).thread_ts == on_slack.ts


# ----------------------------------------------------------------------------------------- crashes

CRASH_YAML = f"""
storage: {{url: "sqlite:///bridge.db"}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0, timeout_s: 5}}
server: {{port: "${{PORT}}"}}
platforms:
  github: {{token: ghp_testtoken123, webhook_secret: "${{SECRET}}", api_url: "${{GITHUB_URL}}"}}
  discord: {{token: "${{DISCORD_BOT_TOKEN}}", api_url: "${{DISCORD_API_URL}}"}}
shares:
  room: {{relay: true}}
channels:
  - {{platform: github, where: "{REPO}#{ISSUE}", share: room, allow: {{users: ["*"]}}}}
  - {{platform: github, where: "{REPO}#8", share: room, allow: {{users: ["*"]}}}}
  - {{platform: discord, where: "{fk.HELP_DESK}", share: room}}
"""


@pytest.mark.faults
async def test_a_sigkill_while_20_copies_are_in_flight_loses_and_repeats_none(tmp_path: Path,
                                                                               fake_llm: FakeOpenAI) -> None:
    """20 GitHub comments, each copied to another issue and through a Discord webhook; the bridge is
    killed while a webhook execution has created its message but not answered (the copy is on
    Discord, not in the store), and restarted: every copy is there exactly once."""
    gh, discord = await FakeGitHub().start(), await FakeDiscord().start()
    (tmp_path / "prompts").symlink_to(ROOT / "prompts")
    config = tmp_path / "bridge.yaml"
    config.write_text(CRASH_YAML)
    port = free_port()
    bridge = BridgeProcess(config, {"LLM_URL": fake_llm.url, "PORT": str(port), "SECRET": SECRET,
                                    "GITHUB_URL": gh.url, "DISCORD_BOT_TOKEN": discord.token,
                                    "DISCORD_API_URL": discord.api_url}, port)
    words = [f"note {i:02d}" for i in range(20)]

    def on_discord() -> list[str]:
        return [p.content for p in discord.messages_in(fk.HELP_DESK)]

    def on_issue_8() -> list[str]:
        return gh.comments_on(REPO, 8)

    discord.hold_webhook = asyncio.Event()  # the 7th execution creates its message, then hangs
    discord.hold_webhook_after = 6
    await bridge.start()
    try:
        async with aiohttp.ClientSession() as session:
            for i, text in enumerate(words):
                payload = comment_payload(text, number=ISSUE, comment_id=1000 + i, login="carol", repo=REPO)
                await deliver(session, bridge, payload)
            await until(lambda: discord.executions == 7, timeout=30)
            await bridge.kill()
            assert len(on_discord()) < len(words), "killed while copies were in flight"
            discord.hold_webhook.set()
            discord.hold_webhook = None
            await bridge.start()
            await until(lambda: len(on_discord()) >= len(words) and len(on_issue_8()) >= len(words), timeout=60)
            await until_async(lambda: _idle(tmp_path), timeout=30)
        await bridge.stop()
    finally:
        await bridge.kill()
        await gh.stop()
        await discord.stop()
    assert [sum(w in t for t in on_discord()) for w in words] == [1] * 20, on_discord()
    assert [sum(w in t for t in on_issue_8()) for w in words] == [1] * 20, on_issue_8()
    assert [next(w for w in words if w in t) for t in on_discord()] == words, "in order"
    assert fake_llm.requests == [], "nobody addressed the bot"


async def _idle(tmp_path: Path) -> bool:
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        return db.execute("SELECT COUNT(*) FROM relays WHERE state != 'delivered'").fetchone()[0] == 0


REPLICA_YAML = f"""
storage: {{url: "postgresql://bridge:${{PGPASSWORD}}@127.0.0.1:${{PGPORT}}/${{PGDATABASE}}", lease_s: 3}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0, timeout_s: 5}}
server: {{port: "${{PORT}}"}}
platforms:
  github: {{token: ghp_testtoken123, webhook_secret: "${{SECRET}}", api_url: "${{GITHUB_URL}}"}}
shares:
  room: {{relay: true}}
channels:
  - {{platform: github, where: "{REPO}#{ISSUE}", share: room, allow: {{users: ["*"]}}}}
  - {{platform: github, where: "{REPO}#8", share: room, allow: {{users: ["*"]}}}}
"""


@pytest.mark.postgres
async def test_two_replicas_post_each_copy_once_in_order(tmp_path: Path, pg_url: str, fake_llm: FakeOpenAI) -> None:
    """Comments reach one replica or the other (a load balancer); each copy is posted once, in order."""
    gh = await FakeGitHub().start()
    bridges = []
    for i in range(2):
        folder = tmp_path / f"replica{i}"
        folder.mkdir()
        (folder / "prompts").symlink_to(ROOT / "prompts")
        (folder / "bridge.yaml").write_text(REPLICA_YAML)
        port = free_port()
        env = {"PGPASSWORD": pgcluster.PASSWORD, "PGPORT": pg_url.rsplit(":", 1)[1].split("/")[0],
               "PGDATABASE": pg_url.rsplit("/", 1)[1], "LLM_URL": fake_llm.url, "PORT": str(port),
               "SECRET": SECRET, "GITHUB_URL": gh.url}
        bridges.append(BridgeProcess(folder / "bridge.yaml", env, port))
    words = [f"line {i:02d}" for i in range(20)]
    try:
        await asyncio.gather(*(b.start() for b in bridges))
        async with aiohttp.ClientSession() as session:
            for i, text in enumerate(words):  # one issue's comments, in order, alternating replicas
                payload = comment_payload(text, number=ISSUE, comment_id=2000 + i, login="carol", repo=REPO)
                await deliver(session, bridges[i % 2], payload)
        await until(lambda: len(gh.comments_on(REPO, 8)) >= len(words), timeout=60)
        for b in bridges:
            await b.stop()
    finally:
        for b in bridges:
            await b.kill()
        await gh.stop()
    copies = gh.comments_on(REPO, 8)
    assert [next(w for w in words if w in c) for c in copies] == words, "each once, in order"
