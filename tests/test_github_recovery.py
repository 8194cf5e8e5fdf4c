"""GitHub: a reply whose first attempt posted something else (a "⚠️ model failed" comment) before a crash
gets its real text on restart — the posted comment is edited, not counted as the answer."""

from __future__ import annotations

from collections.abc import Callable

from bridge.app import Bridge
from bridge.config import Config
from tests.crash import answered, crash_on_record
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.test_github import REPO, GitHubHarness, comment_payload, fake_github, github_config
from tests.waiting import until

__all__ = ["fake_github", "github_config"]  # fixtures shared with tests/test_github.py


async def test_a_crash_after_the_failure_notice_still_posts_the_real_answer(
        github_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI) -> None:
    config = github_config()
    first = Bridge(config, shutdown_grace_s=0.1)
    await first.start()
    hanging = crash_on_record(first)  # the notice is on GitHub; the bridge dies before it hears so
    fake_llm.fail_next(401, "bad key")
    await GitHubHarness(first, fake_github, fake_llm).deliver("issue_comment", comment_payload("hi", comment_id=5))
    await until(hanging.is_set)
    await first.stop()
    [notice] = fake_github.comments_on(REPO, 1)
    assert notice.startswith("⚠️")

    second = Bridge(config)
    await second.start()
    try:
        await answered(second)
        assert fake_github.comments_on(REPO, 1) == ["You said: hi"], "the notice became the real answer"
        assert second.store is not None
        [summary] = await second.store.sessions()
        [msg] = await second.store.messages(summary.session.id)
        reply = await second.store.reply(msg.id)
        assert reply is not None
        assert reply.platform_ids == (str(fake_github.comments[0].id),)
    finally:
        await second.stop()
