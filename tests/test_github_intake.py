"""GitHub intake when a team check is slow or fails: order kept, nobody wrongly refused.

Signed webhooks into the real Bridge, team checks answered (or held, or failed) by the loopback
GitHub through githubkit, unmodified.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.github import GitHubPlatform
from tests.fakes.github_server import FakeGitHub, user_id
from tests.fakes.openai_server import FakeOpenAI
from tests.storefault import accept_inserts, refuse_inserts
from tests.test_access import comment
from tests.test_github import SECRET, GitHubHarness
from tests.waiting import until

REPO = "octo-org/tickets"
OPEN_REPO = "octo-org/open"
TEAM = "octo-org/support"
YAML = f"""
storage: {{url: "sqlite:///bridge.db"}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0, timeout_s: 5}}
server: {{port: 0}}
platforms:
  github: {{token: ghp_testtoken123, webhook_secret: "${{SECRET}}", api_url: "${{GITHUB_URL}}"}}
channels:
  - {{platform: github, where: {REPO}, trigger: always, allow: {{teams: [{TEAM}], associations: [OWNER]}}}}
  - {{platform: github, where: "Codertocat/*", trigger: always}}   # the GitHub default: strangers are told
  - {{platform: github, where: {OPEN_REPO}, trigger: always, allow: {{users: ["*"]}}, deny: {{users: [Troll]}}}}
admins: {{github: [{user_id("maintainer")}, Boss]}}   # an account by its id, another by its login
"""
DEFAULT_REPO = "Codertocat/Hello-World"


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    gh = await FakeGitHub().start()
    yield gh
    await gh.stop()


@pytest.fixture
async def gh(make_config: Callable[..., Config], fake_llm: FakeOpenAI,
             fake_github: FakeGitHub) -> AsyncIterator[GitHubHarness]:
    bridge = Bridge(make_config(YAML, LLM_URL=fake_llm.url, SECRET=SECRET, GITHUB_URL=fake_github.url))
    await bridge.start()
    yield GitHubHarness(bridge, fake_github, fake_llm)
    await bridge.stop()


def on_issue(body: str, association: str, *, login: str, comment_id: int) -> dict[str, Any]:
    return comment(body, association, login=login, comment_id=comment_id, repo=REPO)


async def stored(h: GitHubHarness) -> list[tuple[str, str]]:
    store = h.bridge.store
    assert store is not None
    return [(m.content, m.status) for s in await store.sessions() for m in await store.messages(s.session.id)]


def waiting_at_intake(bridge: Bridge) -> int:
    """Webhooks the GitHub adapter has taken in and not yet handed over (0 on code without arrival order)."""
    platform = bridge.platforms["github"]
    assert isinstance(platform, GitHubPlatform)
    arrivals = getattr(platform, "_arrivals", None)
    return int(getattr(arrivals, "waiting", 0))


async def test_a_slow_team_check_does_not_let_a_later_comment_be_stored_first(gh: GitHubHarness) -> None:
    gh.gh.teams[TEAM] = {"ann"}
    gh.gh.hold_team_checks["ann"] = asyncio.Event()
    question = asyncio.create_task(gh.deliver("issue_comment", on_issue(
        "why does the export fail?", "CONTRIBUTOR", login="ann", comment_id=1)))
    await until(lambda: (TEAM, "ann") in gh.gh.team_checks)
    follow_up = asyncio.create_task(gh.deliver("issue_comment", on_issue(
        "it fails since 2.3, for what it's worth", "OWNER", login="boss", comment_id=2)))
    # The owner needs no team check: stored at once on the old code, waiting for ann's on the new.
    await until(lambda: follow_up.done() or waiting_at_intake(gh.bridge) == 2)
    gh.gh.hold_team_checks["ann"].set()
    assert [(await question)[0], (await follow_up)[0]] == [202, 202]

    assert await gh.comments(REPO, 1, 2) == ["You said: why does the export fail?",
                                             "You said: it fails since 2.3, for what it's worth"]
    assert [text for text, _ in await stored(gh)] == ["why does the export fail?",
                                                      "it fails since 2.3, for what it's worth"]
    assert waiting_at_intake(gh.bridge) == 0, "nothing left queued"


async def test_a_failed_team_check_is_not_a_refusal_and_the_redelivery_is_answered(gh: GitHubHarness) -> None:
    gh.gh.teams[TEAM] = {"ann"}
    gh.gh.team_check_errors.append(403)  # refused by GitHub for once (not retried by githubkit)
    payload = on_issue("why does the export fail?", "CONTRIBUTOR", login="ann", comment_id=1)
    status, body = await gh.deliver("issue_comment", payload)
    assert status == 503, body
    assert "team" in body["error"]
    assert await stored(gh) == [], "nothing stored: the redelivery decides"

    status, body = await gh.deliver("issue_comment", payload)  # GitHub's redelivery: the same comment
    assert (status, body) == (202, {"accepted": True})
    assert await gh.comments(REPO, 1, 1) == ["You said: why does the export fail?"], \
        "answered, never told they may not talk"


async def test_a_refusal_notice_the_store_could_not_keep_is_given_at_the_next_message(gh: GitHubHarness) -> None:
    db = Path(gh.bridge.config.db_path)
    await refuse_inserts(db, "replies")  # the notice cannot be stored (a full disk) for the first message
    status, _ = await gh.deliver("issue_comment", comment("spend your money", "NONE", repo=DEFAULT_REPO))
    assert status == 500
    await accept_inserts(db, "replies")

    await gh.deliver("issue_comment", comment("hello?", "NONE", repo=DEFAULT_REPO, comment_id=2))
    [told] = await gh.comments(DEFAULT_REPO, 1, 1)
    assert told.startswith("Sorry, I'm not set up to answer you here."), "told once, not never"


def renamed(payload: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The same account (its id) writing under a new login."""
    for user in (payload["comment"]["user"], payload["sender"]):
        user.update(login=new, id=user_id(old))
    return payload


async def test_a_denied_user_who_renames_is_still_denied(gh: GitHubHarness) -> None:
    _, body = await gh.deliver("issue_comment", comment("hi", "NONE", login="troll", repo=OPEN_REPO))
    assert body == {"accepted": False}
    gh.gh.logins["troll"] = ""  # renamed: nobody has the login now
    disguised = renamed(comment("hi again", "NONE", login="troll", repo=OPEN_REPO, comment_id=2),
                        "troll", "friendly-helper")
    _, body = await gh.deliver("issue_comment", disguised)
    assert body == {"accepted": False}, "the deny names the account, not the login"
    _, body = await gh.deliver("issue_comment", comment("hello", "NONE", login="friendly-helpers", repo=OPEN_REPO,
                                                         comment_id=3))
    assert body == {"accepted": True}, "other people are answered"
    assert gh.gh.user_lookups == ["Troll"], "the login was looked up once"


async def test_admins_are_known_by_id_across_a_rename_and_by_login(gh: GitHubHarness) -> None:
    ask_all = renamed(comment("/usage all", "OWNER", login="maintainer", repo=REPO), "maintainer", "new-name")
    await gh.deliver("issue_comment", ask_all)
    await gh.deliver("issue_comment", comment("/usage all", "OWNER", login="boss", repo=REPO, comment_id=2, number=2))
    await gh.deliver("issue_comment", comment("/usage all", "OWNER", login="intern", repo=REPO, comment_id=3,
                                              number=3))
    [by_id] = await gh.comments(REPO, 1, 1)
    [by_login] = await gh.comments(REPO, 2, 1)
    [other] = await gh.comments(REPO, 3, 1)
    assert "only the bot's admins" not in by_id, by_id
    assert "only the bot's admins" not in by_login, by_login
    assert "only the bot's admins" in other
