"""Slack end to end: a real Bridge (adapter loaded through its entry point), slack-bolt unmodified,
a loopback Slack (Web API + Socket Mode websocket, or signed HTTP Events API requests) and the
loopback OpenAI-compatible server. Assertions are about what a person in Slack would see."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.config import Config, SlackConfig
from bridge.platform import PlatformStartError
from platforms.slack import PLACEHOLDER, create
from tests.fakes import slack_server as slack
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack

GENERAL, LEGAL, ELSEWHERE, DM, TEAMROOM = "C0GENERAL", "C0LEGAL", "C0RANDOM", "D0ALICE", "C0TEAM"
ALICE, BOB = "U0ALICE", "U0BOB"
MENTION = f"<@{slack.BOT_USER}>"

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 1, timeout_s: 5}
server: {port: 0}
platforms:
  slack:
    bot_token: ${SLACK_BOT_TOKEN}
    app_token: ${SLACK_APP_TOKEN:-}
    signing_secret: ${SLACK_SIGNING_SECRET:-}
    api_url: ${SLACK_API_URL}
    edit_interval_s: 0.05
    streaming: ${STREAMING:-edit}
channels:
  - {platform: slack, where: C0GENERAL, persona: assistant, trigger: mention}
  - {platform: slack, where: C0LEGAL, persona: legal-adviser, trigger: mention}
  - {platform: slack, where: C0TEAM, persona: collaborator, trigger: mention}   # names each speaker
"""

StartBridge = Callable[..., Awaitable[Bridge]]


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack().start()
    server.add_user(ALICE, "alice", real_name="Alice Liddell", display_name="Alice")
    server.add_user(BOB, "bob", real_name="Bob Builder")
    yield server
    await server.stop()


@pytest.fixture
async def start_bridge(fake_llm: FakeOpenAI, fake_slack: FakeSlack,
                       make_config: Callable[..., Config]) -> AsyncIterator[StartBridge]:
    bridges: list[Bridge] = []

    async def start(mode: str = "socket") -> Bridge:
        env = {"LLM_URL": fake_llm.url, "SLACK_BOT_TOKEN": slack.BOT_TOKEN, "SLACK_API_URL": fake_slack.url}
        env["SLACK_APP_TOKEN" if mode == "socket" else "SLACK_SIGNING_SECRET"] = (
            slack.APP_TOKEN if mode == "socket" else slack.SIGNING_SECRET)
        bridge = Bridge(make_config(YAML, **env))  # platforms=None: found through the entry point
        bridges.append(bridge)
        await bridge.start()
        return bridge

    yield start
    for bridge in bridges:
        await bridge.stop()


def events_url(bridge: Bridge) -> str:
    assert bridge.server is not None
    return f"http://127.0.0.1:{bridge.server.port}/slack/events"


def user_turns(request: dict[str, object]) -> list[str]:
    messages = request["messages"]
    assert isinstance(messages, list)
    return [m["content"] for m in messages[1:]]


async def quiet(fake_llm: FakeOpenAI, fake_slack: FakeSlack, requests: int, posted: int) -> None:
    """Nothing more happens: no new LLM request, no new Slack message."""
    await asyncio.sleep(0.3)
    assert len(fake_llm.requests) == requests
    assert len(fake_slack.posted) == posted


# ----------------------------------------------------------------------------------- Socket Mode


async def test_mention_is_answered_in_its_thread(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                 fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    mention = slack.app_mention(f"{MENTION} what is a contract?", user=ALICE, channel=GENERAL)
    ack = await fake_slack.push(slack.event_callback(mention))
    assert "envelope_id" in ack
    reply = await fake_slack.wait_reply(GENERAL, mention["ts"], "You said: what is a contract?")
    assert reply.thread_ts == mention["ts"], "answered in the thread the mention starts"
    assert user_turns(fake_llm.requests[0]) == ["what is a contract?"], "the bot's own mention is stripped"
    assert "Alice" not in fake_llm.requests[0]["messages"][0]["content"], "no display name in the system prompt"
    assert fake_slack.replies(GENERAL) == [], "nothing posted to the channel's top level"


async def test_thread_continues_without_mention(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    root = slack.app_mention(f"{MENTION} remember 42", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(root))
    await fake_slack.wait_reply(GENERAL, root["ts"], "You said: remember 42")

    follow = slack.message("which number?", user=BOB, channel=GENERAL, thread_ts=root["ts"])
    await fake_slack.push(slack.event_callback(follow))
    await fake_slack.wait_reply(GENERAL, root["ts"], "You said: which number?")
    assert user_turns(fake_llm.requests[-1]) == ["remember 42", "You said: remember 42", "which number?"]
    assert len(fake_slack.replies(GENERAL, root["ts"])) == 2

    # Without a mention, nothing outside a thread the bot is in is answered.
    requests, posted = len(fake_llm.requests), len(fake_slack.posted)
    await fake_slack.push(slack.event_callback(slack.message("just chatting", user=ALICE, channel=GENERAL)))
    other_root = slack.message("a human thread", user=BOB, channel=GENERAL)
    await fake_slack.push(slack.event_callback(other_root))
    await fake_slack.push(slack.event_callback(
        slack.message("replying to Bob", user=ALICE, channel=GENERAL, thread_ts=other_root["ts"])))
    await quiet(fake_llm, fake_slack, requests, posted)


async def test_two_threads_are_two_sessions(start_bridge: StartBridge, fake_slack: FakeSlack,
                                            fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    a = slack.app_mention(f"{MENTION} apples", user=ALICE, channel=GENERAL)
    b = slack.app_mention(f"{MENTION} pears", user=BOB, channel=GENERAL)
    await fake_slack.push(slack.event_callback(a))
    await fake_slack.push(slack.event_callback(b))
    await fake_slack.wait_reply(GENERAL, a["ts"], "You said: apples")
    await fake_slack.wait_reply(GENERAL, b["ts"], "You said: pears")

    await fake_slack.push(slack.event_callback(slack.message("and?", user=ALICE, channel=GENERAL,
                                                             thread_ts=a["ts"])))
    await fake_slack.wait_reply(GENERAL, a["ts"], "You said: and?")
    histories = sorted(user_turns(r) for r in fake_llm.requests)
    assert histories == [["apples"], ["apples", "You said: apples", "and?"], ["pears"]]


async def test_channel_rules_pick_persona_and_unbound_channels_are_ignored(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    legal = slack.app_mention(f"{MENTION} can I break my lease?", user=ALICE, channel=LEGAL)
    await fake_slack.push(slack.event_callback(legal))
    await fake_slack.wait_reply(LEGAL, legal["ts"], "You said: can I break my lease?")
    assert "legal" in fake_llm.requests[0]["messages"][0]["content"].lower()
    await fake_slack.push(slack.event_callback(slack.app_mention(f"{MENTION} hi", user=ALICE, channel=ELSEWHERE)))
    await quiet(fake_llm, fake_slack, 1, 1)


async def test_direct_messages_are_always_answered(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                   fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    await fake_slack.push(slack.event_callback(slack.message("hi there", user=ALICE, channel=DM, channel_type="im")))
    await fake_slack.wait_reply(DM, None, "You said: hi there")
    await fake_slack.push(slack.event_callback(slack.message("again", user=ALICE, channel=DM, channel_type="im")))
    await fake_slack.wait_reply(DM, None, "You said: again")
    assert user_turns(fake_llm.requests[-1]) == ["hi there", "You said: hi there", "again"], \
        "a DM is one running conversation, answered at its top level"


async def test_mention_delivered_as_message_and_app_mention_is_answered_once(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    ts = slack.next_ts()
    text = f"{MENTION} only once please"
    await fake_slack.push(slack.event_callback(slack.message(text, user=ALICE, channel=GENERAL, ts=ts)))
    await fake_slack.push(slack.event_callback(slack.app_mention(text, user=ALICE, channel=GENERAL, ts=ts)))
    await fake_slack.push(slack.event_callback(slack.app_mention(text, user=ALICE, channel=GENERAL, ts=ts)),
                          retry_attempt=1)
    await fake_slack.wait_reply(GENERAL, ts, "You said: only once please")
    await quiet(fake_llm, fake_slack, 1, 1)


async def test_own_bot_and_system_messages_are_ignored(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                       fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    root = slack.app_mention(f"{MENTION} start", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(root))
    await fake_slack.wait_reply(GENERAL, root["ts"], "You said: start")
    thread = root["ts"]
    ignored = [
        slack.message(f"{MENTION} I am the bridge itself", user=slack.BOT_USER, bot_id=slack.BOT_ID,
                      channel=GENERAL, thread_ts=thread),
        slack.bot_message(f"{MENTION} deploy finished", channel=GENERAL, thread_ts=thread),
        slack.message("from another app", user="U0OTHERAPP", bot_id="B0OTHER", channel=GENERAL, thread_ts=thread),
        slack.message_changed(GENERAL, thread, f"{MENTION} edited text", user=ALICE),
        slack.channel_join(GENERAL, user=BOB),
        slack.message("", user=ALICE, channel=GENERAL, thread_ts=thread, subtype="message_deleted", hidden=True),
    ]
    for event in ignored:
        await fake_slack.push(slack.event_callback(event))
    await fake_slack.wait_for(lambda: fake_slack.echoed >= 2)  # Slack also sent the bot's own reply back
    await quiet(fake_llm, fake_slack, 1, 1)


async def test_names_and_slack_markup_are_readable_for_the_model(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                                  fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    text = (f"{MENTION} ask <@{BOB}> about <#{LEGAL}|legal> &amp; read "
            "<https://example.com/policy|the policy> &lt;today&gt;")
    first = slack.app_mention(text, user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(first))
    await fake_slack.wait_for(lambda: len(fake_llm.requests) == 1)
    assert user_turns(fake_llm.requests[0]) == [
        "ask @Bob Builder about #legal & read the policy (https://example.com/policy) <today>"]
    await fake_slack.push(slack.event_callback(slack.app_mention(f"{MENTION} and <@{BOB}>?", user=ALICE,
                                                                 channel=GENERAL)))
    await fake_slack.wait_for(lambda: len(fake_llm.requests) == 2)
    assert user_turns(fake_llm.requests[1]) == ["and @Bob Builder?"]
    assert sorted(c.args["user"] for c in fake_slack.calls_to("users.info")) == [ALICE, BOB], "names are cached"


async def test_speaker_names_come_from_users_info(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                  fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    mention = slack.app_mention(f"{MENTION} plan the release", user=ALICE, channel=TEAMROOM)
    await fake_slack.push(slack.event_callback(mention))
    await fake_slack.wait_reply(TEAMROOM, mention["ts"], "You said: Alice: plan the release")
    assert "Alice" not in fake_llm.requests[0]["messages"][0]["content"], "only in the user turn"


async def test_answered_with_user_ids_when_names_cannot_be_looked_up(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI,
        caplog: pytest.LogCaptureFixture) -> None:
    await start_bridge("socket")
    fake_slack.fail_next("users.info", "missing_scope")
    fake_slack.fail_next("users.info", "missing_scope")
    mention = slack.app_mention(f"{MENTION} ask <@{BOB}>", user=ALICE, channel=TEAMROOM)
    await fake_slack.push(slack.event_callback(mention))
    await fake_slack.wait_reply(TEAMROOM, mention["ts"], f"You said: {ALICE}: ask @{BOB}")
    assert "users:read" in caplog.text, "the log says which scope is missing"


async def test_reply_streams_into_one_message_edited_in_place(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                              fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    answer = "A contract is an agreement the law will enforce. " * 4
    fake_llm.reply = lambda _: answer
    fake_llm.chunk_delay = 0.02
    mention = slack.app_mention(f"{MENTION} define contract", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    reply = await fake_slack.wait_reply(GENERAL, mention["ts"], answer)
    assert reply.versions[0] == PLACEHOLDER, "a placeholder appears at once"
    partial = reply.versions[1:-1]
    assert len(partial) >= 2, f"the reply grows in place: {reply.versions}"
    assert all(answer.startswith(v) for v in partial)
    assert [len(v) for v in partial] == sorted(len(v) for v in partial)
    assert len(fake_slack.replies(GENERAL, mention["ts"])) == 1, "one message, edited; not many posts"
    assert len(fake_slack.calls_to("chat.update")) == len(reply.versions) - 1


async def test_long_reply_continues_in_more_messages_with_balanced_code_fences(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    prose = "\n\n".join(f"Paragraph {i}: " + "the quick brown fox jumps over the lazy dog. " * 6 for i in range(12))
    code = "\n".join(f"    total_{i} = compute(value_{i}) + {i}  # step {i}" for i in range(80))
    answer = f"{prose}\n\n```python\n{code}\n```\n\nThat is all."
    assert len(answer) > 7000
    fake_llm.reply = lambda _: answer
    fake_llm.chunk_size = 400
    mention = slack.app_mention(f"{MENTION} write a lot", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    thread = mention["ts"]
    await fake_slack.wait_for(lambda: any(p.text.endswith("That is all.") for p in fake_slack.replies(GENERAL, thread)),
                              timeout=10)
    parts = [p.text for p in fake_slack.replies(GENERAL, mention["ts"])]
    assert len(parts) >= 3
    assert all(len(p) <= 3000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts), "every message renders its code on its own"
    joined = "\n".join(parts)
    for line in code.splitlines() + [f"Paragraph {i}:" for i in range(12)]:
        assert line in joined


async def test_markdown_is_sent_as_markdown(start_bridge: StartBridge, fake_slack: FakeSlack,
                                            fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    answer = "**Yes.** See [the docs](https://example.com).\n\n- one\n- two\n\n```python\nprint('hi')\n```"
    fake_llm.reply = lambda _: answer
    mention = slack.app_mention(f"{MENTION} format please", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    reply = await fake_slack.wait_reply(GENERAL, mention["ts"], answer)
    writes = [c for c in fake_slack.calls if c.method in ("chat.postMessage", "chat.update")]
    assert writes
    assert all("markdown_text" in c.args and "text" not in c.args for c in writes), \
        "standard Markdown goes out as markdown_text, which Slack renders"
    assert reply.fields["markdown_text"] == answer


async def test_rate_limited_edit_waits_for_retry_after_and_finishes(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                                    fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    answer = "Rate limits are per method and per channel. " * 3
    fake_llm.reply = lambda _: answer
    fake_llm.chunk_delay = 0.01
    fake_slack.rate_limit_next("chat.update", retry_after=1)
    mention = slack.app_mention(f"{MENTION} go", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    await fake_slack.wait_reply(GENERAL, mention["ts"], answer, timeout=10)
    updates = fake_slack.calls_to("chat.update")
    assert updates[0].status == 429
    assert updates[1].status == 200
    assert updates[1].at - updates[0].at >= 1.0, "the retry waited for Retry-After"
    assert len(fake_slack.replies(GENERAL, mention["ts"])) == 1


async def test_slack_failure_is_recorded_and_no_token_is_logged(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bridge = await start_bridge("socket")
    fake_slack.fail_next("chat.postMessage", "channel_not_found")
    mention = slack.app_mention(f"{MENTION} hello?", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    assert bridge.store is not None
    store = bridge.store

    async def statuses() -> list[str]:
        return [m.status for s in await store.sessions() for m in await store.messages(s.session.id)]

    deadline = time.monotonic() + 5
    while await statuses() != ["failed"]:
        assert time.monotonic() < deadline, await statuses()
        await asyncio.sleep(0.02)
    assert fake_slack.posted == []
    assert slack.BOT_TOKEN not in caplog.text
    assert slack.APP_TOKEN not in caplog.text


async def test_commands_work_after_the_mention(start_bridge: StartBridge, fake_slack: FakeSlack,
                                               fake_llm: FakeOpenAI) -> None:
    await start_bridge("socket")
    root = slack.app_mention(f"{MENTION} remember 42", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(root))
    await fake_slack.wait_reply(GENERAL, root["ts"], "You said: remember 42")
    await fake_slack.push(slack.event_callback(
        slack.app_mention(f"{MENTION} /reset", user=ALICE, channel=GENERAL, thread_ts=root["ts"])))
    await fake_slack.wait_for(lambda: "forgotten" in fake_slack.replies(GENERAL, root["ts"])[-1].text)
    await fake_slack.push(slack.event_callback(
        slack.message("what number?", user=ALICE, channel=GENERAL, thread_ts=root["ts"])))
    await fake_slack.wait_reply(GENERAL, root["ts"], "You said: what number?")
    assert user_turns(fake_llm.requests[-1]) == ["what number?"]


async def test_socket_reconnects_when_slack_asks(start_bridge: StartBridge, fake_slack: FakeSlack) -> None:
    bridge = await start_bridge("socket")
    await fake_slack.disconnect()
    await fake_slack.wait_for(lambda: fake_slack.connections == 2 and bridge.health()["platforms"]["slack"]["ok"])
    mention = slack.app_mention(f"{MENTION} still there?", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    await fake_slack.wait_reply(GENERAL, mention["ts"], "You said: still there?")
    assert len(fake_slack.calls_to("apps.connections.open")) == 2


async def test_health_reports_socket_mode(start_bridge: StartBridge) -> None:
    bridge = await start_bridge("socket")
    assert bridge.server is not None
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{bridge.server.port}/healthz") as resp:
        body = await resp.json()
    assert resp.status == 200
    assert body["platforms"]["slack"]["ok"] is True
    assert body["platforms"]["slack"]["mode"] == "socket"
    assert body["platforms"]["slack"]["bot_user"] == slack.BOT_USER


@pytest.mark.parametrize(("bot_token", "app_token", "key"), [
    ("xoxb-9999-wrong-token", slack.APP_TOKEN, "bot_token"),
    (slack.BOT_TOKEN, "xapp-1-A0-9999-wrong-token", "app_token"),
])
async def test_refused_token_stops_start_with_a_clear_error(fake_slack: FakeSlack, bot_token: str, app_token: str,
                                                            key: str) -> None:
    settings = SlackConfig(bot_token=bot_token, app_token=app_token, api_url=fake_slack.url)
    platform = create(settings, Config())

    async def inbox(_: object) -> bool:
        return False

    with pytest.raises(PlatformStartError, match=rf"platforms\.slack\.{key}") as info:
        await platform.start(inbox)
    assert "invalid_auth" in str(info.value)
    assert "9999" not in str(info.value), "the token itself is never shown"
    assert platform.status()["ok"] is False
    await platform.stop()


async def test_unreachable_slack_stops_start_with_a_clear_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = SlackConfig(bot_token=slack.BOT_TOKEN, app_token=slack.APP_TOKEN,
                           api_url=f"http://127.0.0.1:{port}/api/")
    platform = create(settings, Config())

    async def inbox(_: object) -> bool:
        return False

    with pytest.raises(PlatformStartError, match=r"platforms\.slack\.api_url: cannot reach Slack"):
        await platform.start(inbox)
    await platform.stop()


# ----------------------------------------------------------------------------------- HTTP Events API


async def test_http_mention_answered_once_despite_retries(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                          fake_llm: FakeOpenAI) -> None:
    bridge = await start_bridge("http")
    mention = slack.app_mention(f"{MENTION} over http", user=ALICE, channel=GENERAL)
    body = slack.event_callback(mention)
    assert (await fake_slack.post_http(events_url(bridge), body))[0] == 200
    assert (await fake_slack.post_http(events_url(bridge), body, retry_num=1))[0] == 200
    assert (await fake_slack.post_http(events_url(bridge), body, retry_num=2))[0] == 200
    await fake_slack.wait_reply(GENERAL, mention["ts"], "You said: over http")
    await quiet(fake_llm, fake_slack, 1, 1)
    assert bridge.health()["platforms"]["slack"]["mode"] == "http"


async def test_http_forged_and_stale_requests_are_rejected(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                           fake_llm: FakeOpenAI) -> None:
    bridge = await start_bridge("http")
    url = events_url(bridge)
    body = slack.event_callback(slack.app_mention(f"{MENTION} forged", user=ALICE, channel=GENERAL))
    assert (await fake_slack.post_http(url, body, secret="not-the-signing-secret"))[0] == 401
    assert (await fake_slack.post_http(url, body, signature=""))[0] == 401
    stale = int(time.time()) - 6 * 60
    assert (await fake_slack.post_http(url, body, timestamp=stale))[0] == 401, "outside the 5-minute window"
    raw = json.dumps(body).encode()
    signed_for_other_body = slack.sign(raw + b" ", slack.SIGNING_SECRET, int(time.time()))
    assert (await fake_slack.post_http(url, raw, signature=signed_for_other_body))[0] == 401
    await quiet(fake_llm, fake_slack, 0, 0)
    assert bridge.store is not None
    assert await bridge.store.sessions() == []


async def test_http_url_verification_is_answered(start_bridge: StartBridge, fake_slack: FakeSlack) -> None:
    bridge = await start_bridge("http")
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    status, text = await fake_slack.post_http(events_url(bridge), {
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"})
    assert status == 200
    assert json.loads(text)["challenge"] == challenge


async def test_web_api_calls_share_one_connection_pool(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                       fake_llm: FakeOpenAI) -> None:
    """Given no session, slack_sdk opens a new one — a new connection, on real Slack a TLS handshake —
    for every call: the platform gives it one for all of them."""
    await start_bridge("socket")
    for n in range(3):
        mention = slack.app_mention(f"{MENTION} question {n}", user=ALICE, channel=GENERAL)
        await fake_slack.push(slack.event_callback(mention))
        await fake_slack.wait_reply(GENERAL, mention["ts"], f"You said: question {n}")
    assert len(fake_slack.calls) >= 6
    used = len(fake_slack.api_peers)
    assert used <= 2, f"{len(fake_slack.calls)} calls over {used} connections"
