"""Slack intake under load and latency: arrival order kept, one auth.test shared.

The real Bridge with the Slack adapter (slack-bolt unmodified) against the loopback Slack; the
slowness is the fake's (a users.info held open), never a patched function.
"""

from __future__ import annotations

import asyncio

import pytest

from bridge.app import Bridge
from tests import test_slack
from tests.fakes import slack_server as slack
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.test_slack import ALICE, BOB, GENERAL, MENTION, StartBridge, events_url, user_turns

ELSEWHERE = "C0RANDOM"  # no rule: acknowledged and dropped


# The fake Slack and the bridge, as tests/test_slack.py makes them.
fake_slack = test_slack.fake_slack
start_bridge = test_slack.start_bridge


async def stored(bridge: Bridge) -> list[str]:
    assert bridge.store is not None
    return [m.content for s in await bridge.store.sessions() for m in await bridge.store.messages(s.session.id)]


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_a_slow_name_lookup_does_not_let_the_follow_up_overtake_the_question(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI, mode: str) -> None:
    bridge = await start_bridge(mode)

    async def deliver(event: dict[str, object]) -> object:
        body = slack.event_callback(event)
        return await (fake_slack.push(body) if mode == "socket" else fake_slack.post_http(events_url(bridge), body))

    fake_slack.hold_users_info[ALICE] = asyncio.Event()  # Alice's name takes longer than the bridge waits
    question = slack.app_mention(f"{MENTION} what is a lease?", user=ALICE, channel=GENERAL)
    asked = asyncio.create_task(deliver(question))
    await fake_slack.wait_for(lambda: any(c.args.get("user") == ALICE for c in fake_slack.calls_to("users.info")))
    await deliver(slack.message("and when does it expire?", user=BOB, channel=GENERAL, thread_ts=question["ts"]))
    await asked

    await fake_slack.wait_reply(GENERAL, question["ts"], "You said: and when does it expire?")
    assert await stored(bridge) == ["what is a lease?", "and when does it expire?"]
    turns = user_turns(fake_llm.requests[-1])
    assert [turns[0], turns[-1]] == ["what is a lease?", "and when does it expire?"], \
        "the follow-up was answered after the question it refers to"


async def test_a_burst_of_first_events_makes_one_auth_test_call(
        start_bridge: StartBridge, fake_slack: FakeSlack) -> None:
    bridge = await start_bridge("http")
    events = [slack.event_callback(slack.message(f"chatter {i}", user=BOB, channel=ELSEWHERE)) for i in range(100)]
    answers = await asyncio.gather(*(fake_slack.post_http(events_url(bridge), e) for e in events))
    assert [status for status, _ in answers] == [200] * 100
    assert len(fake_slack.calls_to("auth.test")) == 1, "the start's auth.test, shared by every request"
