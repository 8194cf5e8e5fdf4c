"""GitHub delivery, exactly once, whatever fails: real Bridges on one SQLite file, githubkit against the
loopback fake GitHub. A "crash" is a Bridge stopped while ``record`` hangs right after GitHub accepted
a comment (the SIGKILL window); the restart is a new Bridge on the same file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.github.delivery import read_marker
from tests.crash import answered, crash_on_record
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.test_github import REPO, GitHubHarness, comment_payload, fake_github, github_config, harness, opened_payload
from tests.waiting import until

__all__ = ["fake_github", "github_config", "harness"]  # fixtures shared with tests/test_github.py


async def test_comment_posted_but_not_recorded_is_found_after_a_restart(
        github_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI) -> None:
    config = github_config()
    first = Bridge(config, shutdown_grace_s=0.1)
    await first.start()
    hanging = crash_on_record(first)
    await GitHubHarness(first, fake_github, fake_llm).deliver("issue_comment", comment_payload("hi", comment_id=5))
    await until(hanging.is_set)
    await first.stop()
    assert fake_github.comments_on(REPO, 1) == ["You said: hi"]  # posted, never recorded

    second = Bridge(config)
    await second.start()
    try:
        await answered(second)
        assert fake_github.comments_on(REPO, 1) == ["You said: hi"], "exactly one comment"
        assert len(fake_llm.requests) == 1, "the stored final text was delivered, not asked again"
        assert second.store is not None
        [summary] = await second.store.sessions()
        [msg] = await second.store.messages(summary.session.id)
        reply = await second.store.reply(msg.id)
        assert reply is not None
        assert reply.platform_ids == (str(fake_github.comments[0].id),), "what was found is recorded"
    finally:
        await second.stop()


async def test_recovery_posts_only_the_missing_parts_in_order(
        github_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI) -> None:
    paragraphs = [f"Paragraph {i}: " + "word " * 100 for i in range(3)]  # ~510 chars each: 3 parts of 800
    fake_llm.reply = lambda _req: "\n\n".join(paragraphs)
    config = github_config(MAX_CHARS="1000")
    first = Bridge(config, shutdown_grace_s=0.1)
    await first.start()
    hanging = crash_on_record(first, after=1)  # part 0 recorded, part 1 posted but not recorded
    await GitHubHarness(first, fake_github, fake_llm).deliver("issue_comment", comment_payload("long", comment_id=5))
    await until(hanging.is_set)
    await first.stop()
    assert len(fake_github.comments_on(REPO, 1)) == 2
    named = read_marker(fake_github.comments[0].body)
    assert named is not None
    # Others keep talking (the listing now has several pages), and someone forges the bot's marker.
    for i in range(5):
        fake_github.add_comment(REPO, 1, f"meanwhile {i}")
    fake_github.add_comment(REPO, 1, f"nothing here\n\n<!-- bridge:reply {named[0]} part 2 -->", login="mallory")
    fake_github.max_per_page = 2

    second = Bridge(config)
    await second.start()
    try:
        await answered(second)
        mine = [c for c in fake_github.comments if c.login == fake_github.login]
        assert [read_marker(c.body) for c in mine] == [(named[0], 0), (named[0], 1), (named[0], 2)]
        shown = [t for t in fake_github.comments_on(REPO, 1) if t.startswith("Paragraph")]
        assert "\n\n".join(shown) == "\n\n".join(paragraphs), "all three parts, in order, once"
        assert fake_github.list_requests[0] == f"{REPO}#1 page=1"
        assert fake_github.list_requests[1] == f"{REPO}#1 page=4", "newest page read next"
    finally:
        await second.stop()


@pytest.mark.parametrize(("event", "make", "target"), [
    ("issue_comment", lambda: comment_payload("slow one", comment_id=5), "comment:5"),
    ("issues", lambda: opened_payload("Slow", "an issue", number=1), f"issue:{REPO}#1"),
])
async def test_eyes_show_a_slow_answer_is_being_written_and_go_when_it_is_posted(
        github_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI,
        event: str, make: Callable[[], dict[str, Any]], target: str) -> None:
    bridge = Bridge(github_config())
    await bridge.start()
    try:
        h = GitHubHarness(bridge, fake_github, fake_llm)
        fake_llm.hold = asyncio.Event()
        await h.deliver(event, make())
        await until(lambda: fake_github.reactions_on(target) == ["eyes"], timeout=5)
        assert fake_github.comments == []
        fake_llm.hold.set()
        await h.comments(REPO, 1, 1)
        await until(lambda: fake_github.reactions_on(target) == [])
        add, remove = fake_github.reaction_log
        assert (add.action, remove.action) == ("add", "remove")
        assert remove.at >= fake_github.comment_attempts[-1], "removed once the reply is there"
    finally:
        await bridge.stop()


async def test_quick_answer_gets_no_eyes(harness: GitHubHarness) -> None:
    await harness.deliver("issue_comment", comment_payload("quick", comment_id=5))
    await harness.comments(REPO, 1, 1)
    await answered(harness.bridge)
    assert harness.gh.reaction_log == []


async def test_eyes_left_by_an_interrupted_attempt_are_removed(
        github_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI) -> None:
    config = github_config()
    first = Bridge(config, shutdown_grace_s=0.1)
    await first.start()
    fake_llm.hold = asyncio.Event()
    await GitHubHarness(first, fake_github, fake_llm).deliver("issue_comment", comment_payload("hm", comment_id=5))
    await until(lambda: fake_github.reactions_on("comment:5") == ["eyes"], timeout=5)
    await first.stop()
    fake_llm.hold.set()
    fake_llm.hold = None

    second = Bridge(config)
    await second.start()
    try:
        await answered(second)
        assert fake_github.comments_on(REPO, 1) == ["You said: hm"]
        await until(lambda: fake_github.reactions_on("comment:5") == [])
    finally:
        await second.stop()


async def test_secondary_rate_limit_waits_for_retry_after(harness: GitHubHarness) -> None:
    harness.gh.limit_comments = [1]
    await harness.deliver("issue_comment", comment_payload("hello"))
    assert await harness.comments(REPO, 1, 1, timeout=10) == ["You said: hello"]
    refused, accepted = harness.gh.comment_attempts
    assert accepted - refused >= 1.0, "githubkit waited for Retry-After"
