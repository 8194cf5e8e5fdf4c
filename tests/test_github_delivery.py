"""GitHub delivery, exactly once, whatever fails: real Bridges on one SQLite file, githubkit against the
loopback fake GitHub. A "crash" is a Bridge stopped while ``record`` hangs right after GitHub accepted
a comment (the SIGKILL window); the restart is a new Bridge on the same file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.github.delivery import read_marker
from tests.crash import answered, crash_on_record
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.test_cli import free_port, write_config
from tests.test_github import (
    REPO,
    SECRET,
    GitHubHarness,
    comment_payload,
    fake_github,
    github_config,
    harness,
    opened_payload,
    sign,
)
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


async def test_sigkill_after_github_accepted_the_comment_does_not_answer_twice(
        tmp_path: Path, fake_github: FakeGitHub, fake_llm: FakeOpenAI) -> None:
    """The acceptance run's case, for real: `bridge run` is SIGKILLed between GitHub keeping the comment
    and the bridge hearing so; the next `bridge run` finds the comment and posts nothing."""
    port = free_port()
    path = write_config(tmp_path)
    env = {**os.environ, "LLM_URL": fake_llm.url, "PORT": str(port), "GITHUB_TOKEN": "ghp_cli_token",
           "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_URL": fake_github.url, "BRIDGE_CONFIG": str(path)}
    db = tmp_path / "state" / "bridge.db"

    async def run() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bridge", "run", env=env, cwd=tmp_path,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        async with aiohttp.ClientSession() as s:
            async def healthy() -> bool:
                try:
                    async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                        return r.status == 200
                except aiohttp.ClientConnectionError:
                    return False
            for _ in range(400):
                if await healthy():
                    return proc
                await asyncio.sleep(0.05)
        proc.kill()
        raise AssertionError("bridge run did not come up")

    first = await run()
    fake_github.on_comment = lambda _c: first.kill()  # SIGKILL before GitHub's answer reaches the bridge
    try:
        body = json.dumps(comment_payload("Is a verbal contract binding?")).encode()
        headers = {"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sign(body),
                   "X-GitHub-Delivery": "abc", "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as s, s.post(f"http://127.0.0.1:{port}/github/webhook", data=body,
                                                        headers=headers) as r:
            assert r.status == 202
        assert await asyncio.wait_for(first.wait(), 20) == -signal.SIGKILL
    finally:
        if first.returncode is None:
            first.kill()
    fake_github.on_comment = None
    assert len(fake_github.comments_on(REPO, 1)) == 1

    def status() -> str:
        with sqlite3.connect(db) as conn:
            return str(conn.execute("SELECT status FROM messages").fetchone()[0])

    second = await run()
    try:
        await until(lambda: status() == "answered", timeout=20)
        assert fake_github.comments_on(REPO, 1) == ["You said: Is a verbal contract binding?"]
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 30)
