"""Who may talk to the bot (``allow:``/``deny:``), through the real adapters: signed GitHub webhooks
with each ``author_association`` and team checks against the fake GitHub, Slack users through the
fake Slack, Discord users and roles through the fake Discord gateway."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.discord import DiscordPlatform
from tests.fakes import discord_server as fk
from tests.fakes import slack_server as slack
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.github_server import FakeGitHub, fixture
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.test_github import SECRET, GitHubHarness, comment_payload
from tests.waiting import until

DEFAULT_REPO = "Codertocat/Hello-World"    # no allow: the GitHub default
OPEN_REPO = "octo-org/open"                # allow: users "*", deny: a troll
TEAM_REPO = "octo-org/team-only"           # allow: a team or one guest; refused people are told nothing
REFUSAL = "Sorry, I'm not set up to answer you here."

GITHUB_YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 5}
server: {port: 0}
platforms:
  github: {token: ghp_testtoken123, webhook_secret: "${SECRET}", api_url: "${GITHUB_URL}"}
channels:
  - {platform: github, where: octo-org/open, trigger: always, allow: {users: ["*"]}, deny: {users: [Troll]}}
  - platform: github
    where: octo-org/team-only
    trigger: always
    allow: {teams: [octo-org/maintainers], users: [guest]}
    refusal_message: ""
  - {platform: github, where: "Codertocat/*", trigger: always}
"""


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    gh = await FakeGitHub().start()
    yield gh
    await gh.stop()


@pytest.fixture
async def gh(make_config: Callable[..., Config], fake_llm: FakeOpenAI,
             fake_github: FakeGitHub) -> AsyncIterator[GitHubHarness]:
    bridge = Bridge(make_config(GITHUB_YAML, LLM_URL=fake_llm.url, SECRET=SECRET, GITHUB_URL=fake_github.url))
    await bridge.start()
    yield GitHubHarness(bridge, fake_github, fake_llm)
    await bridge.stop()


def comment(body: str, association: str, *, login: str = "someone", comment_id: int = 1, number: int = 1,
            repo: str = DEFAULT_REPO) -> dict[str, Any]:
    p = comment_payload(body, login=login, comment_id=comment_id, number=number, repo=repo)
    p["comment"]["author_association"] = association
    return p


async def settled(h: GitHubHarness) -> None:
    """Every stored message handled: nothing queued or running."""
    await until(lambda: h.bridge.lanes is not None and h.bridge.lanes.busy == 0)
    await asyncio.sleep(0.1)


async def statuses(h: GitHubHarness) -> list[str]:
    store = h.bridge.store
    assert store is not None
    return [m.status for s in await store.sessions() for m in await store.messages(s.session.id)]


async def metrics(bridge: Bridge) -> str:
    assert bridge.server is not None
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{bridge.server.port}/metrics") as r:
        return await r.text()


# ------------------------------------------------------------------------------------------ GitHub


@pytest.mark.parametrize("association", ["OWNER", "MEMBER", "COLLABORATOR"])
async def test_github_default_answers_people_with_a_stake(gh: GitHubHarness, association: str) -> None:
    status, body = await gh.deliver("issue_comment", comment("hello", association))
    assert (status, body) == (202, {"accepted": True})
    assert await gh.comments(DEFAULT_REPO, 1, 1) == ["You said: hello"]


@pytest.mark.parametrize("association", ["CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "NONE",
                                         "MANNEQUIN"])
async def test_github_default_refuses_strangers_politely_once(gh: GitHubHarness, association: str) -> None:
    status, body = await gh.deliver("issue_comment", comment("spend your money", association))
    assert (status, body) == (202, {"accepted": False})
    assert await gh.comments(DEFAULT_REPO, 1, 1) == [REFUSAL + " If you think you should have access, ask the "
                                                              "people who run this bot."]
    await gh.deliver("issue_comment", comment("and again", association, comment_id=2))
    await settled(gh)
    assert len(gh.gh.comments_on(DEFAULT_REPO, 1)) == 1, "told once per user per thread"
    assert gh.llm.requests == [], "nothing reaches the LLM"
    assert await statuses(gh) == ["refused", "refused"]
    text = await metrics(gh.bridge)
    assert 'bridge_events_total{outcome="refused",platform="github"} 2.0' in text
    assert 'bridge_refused_total{platform="github",reason="access"} 2.0' in text
    # Someone with a stake, in the same issue, is answered; the stranger's words are not in the history.
    await gh.deliver("issue_comment", comment("what did they say?", "MEMBER", login="member", comment_id=3))
    await gh.comments(DEFAULT_REPO, 1, 2)
    assert [m["content"] for m in gh.llm.requests[0]["messages"][1:]] == ["what did they say?"]


async def test_github_new_issue_by_a_stranger_is_refused(gh: GitHubHarness) -> None:
    payload = copy.deepcopy(fixture("issues.opened.1"))
    payload["issue"]["author_association"] = "NONE"
    assert (await gh.deliver("issues", payload))[1] == {"accepted": False}
    [told] = await gh.comments(DEFAULT_REPO, 1, 1)
    assert told.startswith(REFUSAL)
    assert gh.llm.requests == []


async def test_github_rule_opened_to_everyone_but_a_denied_user(gh: GitHubHarness) -> None:
    assert (await gh.deliver("issue_comment", comment("hi", "NONE", repo=OPEN_REPO)))[1] == {"accepted": True}
    assert await gh.comments(OPEN_REPO, 1, 1) == ["You said: hi"]
    _, body = await gh.deliver("issue_comment", comment("hi", "OWNER", login="troll", repo=OPEN_REPO,
                                                        comment_id=2, number=2))
    assert body == {"accepted": False}, "deny wins, whatever the association; logins are case-insensitive"
    [told] = await gh.comments(OPEN_REPO, 2, 1)
    assert told.startswith(REFUSAL)


async def test_github_team_membership_is_checked_through_the_api_and_cached(gh: GitHubHarness) -> None:
    gh.gh.teams["octo-org/maintainers"] = {"Maintainer"}
    await gh.deliver("issue_comment", comment("first", "CONTRIBUTOR", login="maintainer", repo=TEAM_REPO))
    await gh.deliver("issue_comment", comment("second", "CONTRIBUTOR", login="maintainer", repo=TEAM_REPO,
                                              comment_id=2))
    assert await gh.comments(TEAM_REPO, 1, 2) == ["You said: first", "You said: second"]
    assert gh.gh.team_checks == [("octo-org/maintainers", "maintainer")], "asked once, then cached"
    # A named user passes without a team check; an OWNER outside the team does not: allow replaces the default.
    assert (await gh.deliver("issue_comment", comment("guest here", "NONE", login="guest", repo=TEAM_REPO,
                                                      comment_id=3)))[1] == {"accepted": True}
    assert (await gh.deliver("issue_comment", comment("owner here", "OWNER", login="boss", repo=TEAM_REPO,
                                                      comment_id=4)))[1] == {"accepted": False}
    await settled(gh)
    assert gh.gh.comments_on(TEAM_REPO, 1) == ["You said: first", "You said: second", "You said: guest here"], \
        "refusal_message: '' says nothing"


# ------------------------------------------------------------------------------------------- Slack

SLACK_YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 5}
server: {port: 0}
platforms:
  slack: {bot_token: "${SLACK_BOT_TOKEN}", app_token: "${SLACK_APP_TOKEN}", api_url: "${SLACK_API_URL}"}
channels:
  - {platform: slack, where: C0GENERAL, trigger: mention, allow: {users: [U0ALICE]},
     refusal_message: "This channel's bot is for the support team."}
"""


async def test_slack_allow_list_of_users(make_config: Callable[..., Config], fake_llm: FakeOpenAI) -> None:
    fake = await FakeSlack().start()
    fake.add_user("U0ALICE", "alice")
    fake.add_user("U0BOB", "bob")
    bridge = Bridge(make_config(SLACK_YAML, LLM_URL=fake_llm.url, SLACK_BOT_TOKEN=slack.BOT_TOKEN,
                                SLACK_APP_TOKEN=slack.APP_TOKEN, SLACK_API_URL=fake.url))
    await bridge.start()
    try:
        mention = f"<@{slack.BOT_USER}>"
        bob = slack.app_mention(f"{mention} hello", user="U0BOB", channel="C0GENERAL")
        await fake.push(slack.event_callback(bob))
        await fake.wait_reply("C0GENERAL", bob["ts"], "This channel's bot is for the support team.")
        # In the thread the refusal started, a later message is not answered without a mention:
        # the bot did not join the conversation by refusing it.
        follow = slack.message("anyone?", user="U0ALICE", channel="C0GENERAL", thread_ts=bob["ts"])
        await fake.push(slack.event_callback(follow))
        alice = slack.app_mention(f"{mention} hello", user="U0ALICE", channel="C0GENERAL")
        await fake.push(slack.event_callback(alice))
        await fake.wait_reply("C0GENERAL", alice["ts"], "You said: hello")
        await asyncio.sleep(0.2)
        assert len(fake_llm.requests) == 1
        assert len(fake.replies("C0GENERAL", bob["ts"])) == 1
    finally:
        await bridge.stop()
        await fake.stop()


# ----------------------------------------------------------------------------------------- Discord

DISCORD_YAML = f"""
storage: {{url: "sqlite:///bridge.db"}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0, timeout_s: 5}}
server: {{port: 0}}
platforms:
  discord: {{token: "${{DISCORD_BOT_TOKEN}}", api_url: "${{DISCORD_API_URL}}", edit_interval_s: 0.05}}
channels:
  - platform: discord
    where: "{fk.HELP_DESK}"
    trigger: always
    allow: {{roles: [{fk.MODS_ROLE}], users: ["{fk.CAROL}"]}}
    deny: {{users: [{fk.ALICE}]}}
"""


async def test_discord_roles_and_users(make_config: Callable[..., Config], fake_llm: FakeOpenAI) -> None:
    discord = await FakeDiscord().start()
    config = make_config(DISCORD_YAML, LLM_URL=fake_llm.url, DISCORD_API_URL=discord.api_url,
                         DISCORD_BOT_TOKEN=discord.token)
    assert config.platforms.discord is not None
    bridge = Bridge(config, platforms={"discord": DiscordPlatform(config.platforms.discord,
                                                                  guild_ready_timeout_s=0.05)}, serve_http=False)
    await bridge.start()
    try:
        for uid in (fk.ALICE, fk.BOB):  # Alice is a mod but denied; Bob is a mod
            discord.members[uid]["roles"] = [str(fk.MODS_ROLE)]

        def texts() -> list[str]:
            return [p.content for p in discord.messages_in(fk.HELP_DESK)]

        await discord.say("from a denied mod", channel=fk.HELP_DESK, author=fk.ALICE)
        await discord.wait_until(lambda: any(t.startswith(REFUSAL) for t in texts()))
        await discord.say("from a mod", channel=fk.HELP_DESK, author=fk.BOB)
        await discord.wait_until(lambda: "You said: from a mod" in texts())
        await discord.say("from a named user", channel=fk.HELP_DESK, author=fk.CAROL)
        await discord.wait_until(lambda: "You said: from a named user" in texts())
        discord.members[fk.BOB]["roles"] = []  # the role taken away: refused from the next message on
        await discord.say("still a mod?", channel=fk.HELP_DESK, author=fk.BOB)
        await discord.wait_until(lambda: sum(t.startswith(REFUSAL) for t in texts()) == 2)
        assert len(fake_llm.requests) == 2
    finally:
        await bridge.stop()
        await discord.stop()
