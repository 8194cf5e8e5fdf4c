"""GitHub 👍/👎 end to end: reactions people leave on the bot's answer comments, read (githubkit, the
loopback GitHub) when the issue is next seen, recorded once per person per answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.config import Config
from tests.fakes.github_server import FakeGitHub, Reaction
from tests.fakes.openai_server import FakeOpenAI
from tests.test_github import REPO, SECRET, YAML, GitHubHarness, comment_payload, fake_github, opened_payload
from tests.waiting import until, until_async

__all__ = ["fake_github"]  # the fixture shared with tests/test_github.py

FEEDBACK_YAML = YAML.replace("    max_reply_chars: ${MAX_CHARS:-65536}\n",
                             "    max_reply_chars: ${MAX_CHARS:-65536}\n    feedback: ${FEEDBACK:-true}\n")
assert FEEDBACK_YAML != YAML


@pytest.fixture
async def start(make_config: Callable[..., Config], fake_llm: FakeOpenAI,
                fake_github: FakeGitHub) -> AsyncIterator[Callable[..., Any]]:
    bridges: list[Bridge] = []

    async def start_bridge(**env: str) -> GitHubHarness:
        config = make_config(FEEDBACK_YAML, LLM_URL=fake_llm.url, GITHUB_TOKEN="ghp_testtoken123",
                             GITHUB_WEBHOOK_SECRET=SECRET, GITHUB_URL=fake_github.url, **env)
        bridge = Bridge(config)
        bridges.append(bridge)
        await bridge.start()
        return GitHubHarness(bridge, fake_github, fake_llm)

    yield start_bridge
    for bridge in bridges:
        await bridge.stop()


def react(gh: FakeGitHub, comment_id: int, content: str, login: str) -> None:
    """Someone reacts on a comment (as they would on github.com)."""
    gh.reactions.append(Reaction(f"comment:{comment_id}", 90_000 + len(gh.reactions), content, login))


async def report(harness: GitHubHarness) -> list[tuple[str, int, int]]:
    assert harness.bridge.store is not None
    return [(line.persona, line.up, line.down) for line in await harness.bridge.store.feedback_report(0)]


async def test_reactions_on_the_answer_are_read_when_the_issue_is_next_seen(start: Callable[..., Any]) -> None:
    harness: GitHubHarness = await start()
    gh = harness.gh
    await harness.deliver("issues", opened_payload("Borrowing", "Why does this fail?"))
    await harness.comments(REPO, 1, 1)
    [answer] = [c for c in gh.comments if c.login != "Codertocat"]
    someone_elses = gh.add_comment(REPO, 1, "me too")
    react(gh, answer.id, "+1", "alice")
    react(gh, answer.id, "-1", "bob")
    react(gh, answer.id, "+1", "carol")
    react(gh, answer.id, "-1", "carol")      # both: not counted
    react(gh, answer.id, "heart", "dave")    # not a rating
    react(gh, someone_elses.id, "+1", "erin")  # not the bot's answer
    assert await report(harness) == []

    await harness.deliver("issue_comment", comment_payload("thanks!", comment_id=77))
    await until_async(lambda: _is(report(harness), [("rust-tutor", 1, 1)]))
    gh.reactions = [r for r in gh.reactions if r.login != "bob"]
    react(gh, answer.id, "+1", "bob")  # bob changed his mind
    await harness.comments(REPO, 1, 3)
    await harness.deliver("issue_comment", comment_payload("one more", comment_id=78))
    await until_async(lambda: _is(report(harness), [("rust-tutor", 2, 0)]))


async def test_off_by_default(start: Callable[..., Any]) -> None:
    harness: GitHubHarness = await start(FEEDBACK="false")
    gh = harness.gh
    await harness.deliver("issues", opened_payload("Borrowing", "Why does this fail?"))
    await harness.comments(REPO, 1, 1)
    react(gh, gh.comments[0].id, "+1", "alice")
    await harness.deliver("issue_comment", comment_payload("thanks!", comment_id=77))
    await until(lambda: len(gh.comments_on(REPO, 1)) >= 2)
    assert await report(harness) == []


async def _is(value: Any, want: Any) -> bool:
    return bool(await value == want)
