"""Answer slots (``llm.max_concurrent``) end to end on Slack: slack-bolt/slack_sdk against the loopback
Slack, whose 429 storm holds one answer's delivery. The slot is the model's, not the platform's: the
next conversation is answered while the first is still waiting out the storm."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.config import Config
from tests.fakes import slack_server as slack
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.test_slack import ALICE, BOB, GENERAL, MENTION, YAML, fake_slack
from tests.waiting import until

__all__ = ["fake_slack"]  # the fixture shared with tests/test_slack.py

ONE_SLOT = YAML.replace("timeout_s: 5}", "timeout_s: 5, max_concurrent: 1}")
assert ONE_SLOT != YAML
STORM_S = 6.0


@pytest.fixture
async def bridge(fake_llm: FakeOpenAI, fake_slack: FakeSlack,
                 make_config: Callable[..., Config]) -> AsyncIterator[Bridge]:
    env = {"LLM_URL": fake_llm.url, "SLACK_BOT_TOKEN": slack.BOT_TOKEN, "SLACK_API_URL": fake_slack.url,
           "SLACK_APP_TOKEN": slack.APP_TOKEN}
    running = Bridge(make_config(ONE_SLOT, **env))
    await running.start()
    yield running
    await running.stop()


async def ask(fake_slack: FakeSlack, user: str, text: str) -> str:
    mention: dict[str, Any] = slack.app_mention(f"{MENTION} {text}", user=user, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    return str(mention["ts"])


async def test_a_429_storm_on_one_reply_does_not_hold_the_only_answer_slot(
        bridge: Bridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    fake_slack.storm(STORM_S, methods=("chat.update",), share=1.0)  # every edit refused: the first reply waits
    first = await ask(fake_slack, ALICE, "first question")
    await until(lambda: any(c.status == 429 for c in fake_slack.calls_to("chat.update")))
    second = await ask(fake_slack, BOB, "second question")
    # Within half the storm: the second question reached the model while the first reply still waits.
    await until(lambda: len(fake_llm.requests) == 2, timeout=STORM_S / 2)
    assert fake_slack.replies(GENERAL, first)[0].text != "You said: first question", "still in the storm"
    await fake_slack.wait_reply(GENERAL, first, "You said: first question", timeout=30)
    await fake_slack.wait_reply(GENERAL, second, "You said: second question", timeout=30)
