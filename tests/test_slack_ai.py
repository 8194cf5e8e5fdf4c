"""Slack's AI-app surface end to end: native streaming (and its fallback to edits), the assistant pane
(greeting, suggested prompts, status, titles, context), and the 👍/👎 feedback buttons. A real Bridge,
slack-bolt unmodified, the loopback Slack and the loopback OpenAI server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge import cli
from bridge.app import Bridge
from bridge.config import Config, ConfigError
from bridge.personas import load_personas
from platforms.slack.delivery import REPLY_EVENT
from tests.crash import crash_on_record, settled
from tests.fakes import slack_server as slack
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.test_slack import ALICE, BOB, DM, GENERAL, LEGAL, MENTION, YAML, events_url, fake_slack
from tests.waiting import until, until_async

__all__ = ["fake_slack"]  # the fixture shared with tests/test_slack.py

AI_YAML = YAML.replace("    streaming: ${STREAMING:-edit}\n", """    streaming: ${STREAMING:-native}
    assistant: ${ASSISTANT:-true}
    feedback: ${FEEDBACK:-false}
    reply_deadline_s: 30
""")
assert AI_YAML != YAML
STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")
WRITES = ("chat.postMessage", "chat.update", *STREAM_METHODS)

Start = Callable[..., Awaitable[Bridge]]


@pytest.fixture
async def start(fake_llm: FakeOpenAI, fake_slack: FakeSlack,
                make_config: Callable[..., Config]) -> AsyncIterator[Start]:
    """Start a Bridge in Socket Mode (or HTTP with ``mode="http"``); all share one SQLite file.
    ``rule`` is a channel rule put first."""
    bridges: list[Bridge] = []

    async def start_bridge(mode: str = "socket", *, grace: float = 20.0, rule: str = "", llm_stream: bool = True,
                           **env: Any) -> Bridge:
        base = {"LLM_URL": fake_llm.url, "SLACK_BOT_TOKEN": slack.BOT_TOKEN, "SLACK_API_URL": fake_slack.url}
        base["SLACK_APP_TOKEN" if mode == "socket" else "SLACK_SIGNING_SECRET"] = (
            slack.APP_TOKEN if mode == "socket" else slack.SIGNING_SECRET)
        text = AI_YAML.replace("channels:\n", f"channels:\n  - {rule}\n") if rule else AI_YAML
        if not llm_stream:
            text = text.replace("timeout_s: 5}", "timeout_s: 5, stream: false}")
            assert "stream: false" in text
        bridge = Bridge(make_config(text, **{**base, **env}), shutdown_grace_s=grace)
        bridges.append(bridge)
        await bridge.start()
        return bridge

    yield start_bridge
    for bridge in bridges:
        await bridge.stop()


def writes(fake: FakeSlack) -> list[str]:
    return [c.method for c in fake.calls if c.method in WRITES and c.status == 200]


# ------------------------------------------------------------------------------ native streaming


async def test_native_stream_starts_appends_and_stops_one_message(start: Start, fake_slack: FakeSlack,
                                                                  fake_llm: FakeOpenAI) -> None:
    await start()
    answer = "A contract is an agreement the law will enforce. " * 4
    fake_llm.reply = lambda _: answer
    fake_llm.chunk_delay = 0.02
    mention = slack.app_mention(f"{MENTION} define contract", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    reply = await fake_slack.wait_reply(GENERAL, mention["ts"], answer)
    await until(lambda: not reply.streaming)
    assert reply.streamed, "Slack's own streaming, not a posted message"
    methods = writes(fake_slack)
    assert methods[0] == "chat.startStream", methods
    assert methods[-1] == "chat.stopStream", methods
    assert methods.count("chat.startStream") == 1
    assert methods.count("chat.stopStream") == 1
    assert methods.count("chat.appendStream") >= 1, "the answer grows while it is written"
    assert "chat.update" not in methods
    assert "chat.postMessage" not in methods
    start_call = fake_slack.calls_to("chat.startStream")[0]
    assert start_call.args["recipient_user_id"] == ALICE
    assert start_call.args["recipient_team_id"] == slack.TEAM
    assert reply.versions[0], "the first text at once, not a placeholder"
    assert answer.startswith(reply.versions[0])
    assert reply.metadata is not None
    assert reply.metadata["event_type"] == REPLY_EVENT, "found again after a crash"


async def test_answer_that_arrives_whole_is_one_post(start: Start, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    """llm.stream off: nothing to stream, so no stream (start, then stop: two calls) but one post."""
    bridge = await start(llm_stream=False)
    answer = "A contract is an agreement the law will enforce. " * 4
    fake_llm.reply = lambda _: answer
    mention = slack.app_mention(f"{MENTION} define contract", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    reply = await fake_slack.wait_reply(GENERAL, mention["ts"], answer)
    await settled(bridge, lambda now: now.count("answered") == 1)
    assert writes(fake_slack) == ["chat.postMessage"]
    assert not reply.streamed
    assert reply.versions == [answer], "the answer at once: no placeholder before it"
    assert reply.metadata is not None
    assert reply.metadata["event_type"] == REPLY_EVENT, "found again after a crash"
    assert fake_llm.requests[-1].get("stream") is not True


async def test_long_native_answer_is_split_into_several_streams(start: Start, fake_slack: FakeSlack,
                                                                fake_llm: FakeOpenAI) -> None:
    await start()
    answer = "\n\n".join(f"Paragraph {i}: " + "the quick brown fox jumps over the lazy dog. " * 6
                         for i in range(24))
    assert len(answer) > 6000
    fake_llm.reply = lambda _: answer
    fake_llm.chunk_size = 400
    mention = slack.app_mention(f"{MENTION} write a lot", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    thread = mention["ts"]
    await until(lambda: len(fake_slack.calls_to("chat.stopStream")) >= 3
                and not any(p.streaming for p in fake_slack.replies(GENERAL, thread)))
    parts = fake_slack.replies(GENERAL, thread)
    assert len(parts) >= 3
    assert all(p.streamed for p in parts)
    assert all(len(p.text) <= 3000 for p in parts), "each message within the configured limit"
    assert "\n\n".join(p.text for p in parts) == answer


async def test_refused_appends_still_end_with_the_whole_answer(start: Start, fake_slack: FakeSlack,
                                                               fake_llm: FakeOpenAI) -> None:
    await start()
    answer = "Every word of this answer arrives, whatever Slack says about the appends. " * 5
    fake_llm.reply = lambda _: answer
    fake_llm.chunk_delay = 0.02
    fake_slack.storm(30.0, methods=("chat.appendStream",), share=1.0)  # every append refused with a 429
    mention = slack.app_mention(f"{MENTION} tell me", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    reply = await fake_slack.wait_reply(GENERAL, mention["ts"], answer, timeout=15)
    await until(lambda: not reply.streaming)
    assert [c.status for c in fake_slack.calls_to("chat.appendStream")][:1] == [429]
    assert len(fake_slack.calls_to("chat.appendStream")) <= 3, "a refused append waits out Retry-After"
    assert len(fake_slack.replies(GENERAL, mention["ts"])) == 1


async def test_stream_ended_by_slack_is_finished_with_edits(start: Start, fake_slack: FakeSlack,
                                                             fake_llm: FakeOpenAI) -> None:
    await start()
    answer = "An answer whose stream Slack ends half-way, finished all the same. " * 5
    fake_llm.reply = lambda _: answer
    fake_llm.chunk_delay = 0.02
    mention = slack.app_mention(f"{MENTION} tell me", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    await until(lambda: fake_slack.calls_to("chat.startStream"))
    fake_slack.expire_streams()
    await fake_slack.wait_reply(GENERAL, mention["ts"], answer, timeout=15)
    assert len(fake_slack.replies(GENERAL, mention["ts"])) == 1, "the same message, edited"
    assert fake_slack.calls_to("chat.update"), "finished with an edit"


async def test_refused_streaming_falls_back_to_edits_for_the_workspace(start: Start, fake_slack: FakeSlack,
                                                                       fake_llm: FakeOpenAI) -> None:
    fake_slack.refuse_streaming = "not_allowed_token_type"
    await start()
    first = slack.app_mention(f"{MENTION} hello", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(first))
    await fake_slack.wait_reply(GENERAL, first["ts"], "You said: hello")
    second = slack.app_mention(f"{MENTION} again", user=BOB, channel=GENERAL)
    await fake_slack.push(slack.event_callback(second))
    await fake_slack.wait_reply(GENERAL, second["ts"], "You said: again")
    assert len(fake_slack.calls_to("chat.startStream")) == 1, "refused once: the workspace is not asked again"
    assert not any("not_allowed" in p.text or "⚠" in p.text for p in fake_slack.posted), "no error shown"
    assert all(not p.streamed for p in fake_slack.posted)


async def test_dm_top_level_is_answered_with_edits(start: Start, fake_slack: FakeSlack) -> None:
    await start()
    dm = slack.message("hello there", user=ALICE, channel=DM, channel_type="im")
    await fake_slack.push(slack.event_callback(dm))
    await fake_slack.wait_reply(DM, None, "You said: hello there")
    assert fake_slack.calls_to("chat.startStream") == [], "a stream is a reply in a thread"


async def test_stream_interrupted_by_a_crash_is_stopped_and_finished(start: Start, fake_slack: FakeSlack,
                                                                     fake_llm: FakeOpenAI) -> None:
    answer = "The complete answer, after the restart. " * 3
    fake_llm.reply = lambda _: answer
    first = await start(grace=0.1)
    hanging = crash_on_record(first)  # the stream is started; the store never hears of it
    mention = slack.app_mention(f"{MENTION} tell me", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(mention))
    await until(hanging.is_set)
    await first.stop()
    left = fake_slack.replies(GENERAL, mention["ts"])
    assert len(left) == 1
    assert left[0].streaming, "the crash left a stream open"
    await start()
    reply = await fake_slack.wait_reply(GENERAL, mention["ts"], answer, timeout=15)
    await until(lambda: not reply.streaming)
    assert len(fake_slack.replies(GENERAL, mention["ts"])) == 1, "finished in place, not answered twice"


# ------------------------------------------------------------------------------ the assistant pane


async def open_pane(fake: FakeSlack, *, user: str = ALICE, channel: str = DM) -> str:
    """The person opens the assistant pane; return the new thread's ts."""
    started = slack.assistant_thread_started(user=user, channel=channel, context_channel=GENERAL)
    await fake.push(slack.event_callback(started))
    return str(started["assistant_thread"]["thread_ts"])


async def test_opening_the_pane_greets_with_the_personas_greeting_and_prompts(start: Start,
                                                                              fake_slack: FakeSlack) -> None:
    await start()
    thread = await open_pane(fake_slack)
    greeting = await until(lambda: fake_slack.replies(DM, thread))
    assert greeting[0].text == "Hi! Ask me anything; I answer right here in this thread.", "default_persona's"
    await until(lambda: (DM, thread) in fake_slack.suggested)
    prompts = fake_slack.suggested[(DM, thread)]["prompts"]
    assert [p["title"] for p in prompts] == ["Summarise a text", "Explain code", "Draft a reply"]
    assert prompts[0]["message"].startswith("Please summarise")


async def test_pane_calls_share_the_platforms_connection_pool(start: Start, fake_slack: FakeSlack) -> None:
    """The greeting and prompts go through Bolt's per-request client, a copy of the app's: given no
    session, slack_sdk opened a new one (a new connection, on real Slack a TLS handshake) per call."""
    await start()
    threads = [await open_pane(fake_slack) for _ in range(4)]
    await until(lambda: all((DM, t) in fake_slack.suggested for t in threads))
    calls = [c.method for c in fake_slack.calls]
    assert calls.count("chat.postMessage") == 4
    assert calls.count("assistant.threads.setSuggestedPrompts") == 4
    assert len(fake_slack.api_peers) <= 2, f"{len(calls)} calls over {len(fake_slack.api_peers)} connections"


async def test_pane_of_a_dm_rule_uses_that_rules_persona(start: Start, fake_slack: FakeSlack) -> None:
    await start(rule="{platform: slack, where: D0*, persona: legal-adviser}")
    thread = await open_pane(fake_slack)
    greeting = await until(lambda: fake_slack.replies(DM, thread))
    assert greeting[0].text.startswith("Ask me about a contract")
    await until(lambda: (DM, thread) in fake_slack.suggested)
    assert [p["title"] for p in fake_slack.suggested[(DM, thread)]["prompts"]] == ["Review a contract",
                                                                                  "Explain a letter"]


async def test_pane_question_shows_a_status_is_titled_and_answered(start: Start, fake_slack: FakeSlack,
                                                                   fake_llm: FakeOpenAI) -> None:
    await start()
    thread = await open_pane(fake_slack)
    await until(lambda: fake_slack.replies(DM, thread))
    first = slack.message("What is a force majeure clause?\nIn short please", user=ALICE, channel=DM,
                          channel_type="im", thread_ts=thread)
    await fake_slack.push(slack.event_callback(first))
    await fake_slack.wait_reply(DM, thread, "You said: What is a force majeure clause?\nIn short please")
    await until(lambda: fake_slack.status_now(DM, thread) == "")
    shown = [status for c, t, status in fake_slack.statuses if (c, t) == (DM, thread)]
    assert shown == ["is thinking…", ""], "a status while the answer is written, cleared once it is there"
    assert fake_slack.titles[(DM, thread)] == "What is a force majeure clause?", "titled from the first question"
    second = slack.message("and a hardship clause?", user=ALICE, channel=DM, channel_type="im", thread_ts=thread)
    await fake_slack.push(slack.event_callback(second))
    await fake_slack.wait_reply(DM, thread, "You said: and a hardship clause?")
    assert fake_slack.titles[(DM, thread)] == "What is a force majeure clause?", "only the first question titles"
    assert [c.method for c in fake_slack.calls].count("assistant.threads.setTitle") == 1


async def test_status_is_cleared_when_the_answer_fails(start: Start, fake_slack: FakeSlack,
                                                       fake_llm: FakeOpenAI) -> None:
    bridge = await start()
    thread = await open_pane(fake_slack)
    await until(lambda: fake_slack.replies(DM, thread))
    fake_llm.fail_next(500, "boom", times=5)  # the model fails: a plain sentence instead of an answer
    question = slack.message("hello?", user=ALICE, channel=DM, channel_type="im", thread_ts=thread)
    await fake_slack.push(slack.event_callback(question))
    await until(lambda: any("⚠️" in p.text for p in fake_slack.replies(DM, thread)))
    await until(lambda: fake_slack.status_now(DM, thread) == "")
    fake_slack.refuse_streaming = "not_allowed_token_type"
    fake_slack.fail_next("chat.postMessage", "is_archived")  # now Slack refuses the answer itself
    again = slack.message("hello again?", user=ALICE, channel=DM, channel_type="im", thread_ts=thread)
    await fake_slack.push(slack.event_callback(again))
    await settled(bridge, lambda now: now.count("failed") == 2)  # before its notice, a few seconds later
    assert fake_slack.status_now(DM, thread) == "", "cleared when Slack refused the answer too"


async def test_pane_is_off_with_assistant_false(start: Start, fake_slack: FakeSlack) -> None:
    await start(ASSISTANT="false")
    started = slack.assistant_thread_started(user=ALICE, channel=DM)
    ack = await fake_slack.push(slack.event_callback(started))
    assert "envelope_id" in ack, "acknowledged all the same"
    dm = slack.message("hi", user=ALICE, channel=DM, channel_type="im", thread_ts=started["assistant_thread"]
                       ["thread_ts"])
    await fake_slack.push(slack.event_callback(dm))
    await fake_slack.wait_reply(DM, dm["thread_ts"], "You said: hi")
    assert fake_slack.suggested == {}
    assert fake_slack.statuses == []
    assert [p.text for p in fake_slack.replies(DM, dm["thread_ts"])] == ["You said: hi"], "no greeting"


# ------------------------------------------------------------------------------ feedback


def feedback_values(posted: slack.Posted) -> tuple[str, str]:
    """The values of the 👍 and 👎 buttons under a message (fails when there are none)."""
    blocks = posted.fields.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    [actions] = [b for b in blocks if b.get("type") == "context_actions"]
    [element] = actions["elements"]
    assert element["type"] == "feedback_buttons"
    return element["positive_button"]["value"], element["negative_button"]["value"]


async def metrics_text(bridge: Bridge) -> str:
    assert bridge.server is not None
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{bridge.server.port}/metrics") as r:
        return await r.text()


async def test_feedback_buttons_under_the_answer_one_rating_per_person(start: Start, fake_slack: FakeSlack,
                                                                       fake_llm: FakeOpenAI, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = await start(FEEDBACK="true")
    answer = "A long enough answer to be streamed in a few pieces. " * 3
    fake_llm.reply = lambda _: answer
    mention = slack.app_mention(f"{MENTION} rate me", user=ALICE, channel=LEGAL)
    await fake_slack.push(slack.event_callback(mention))
    reply = await fake_slack.wait_reply(LEGAL, mention["ts"], answer)
    await until(lambda: not reply.streaming and reply.fields.get("blocks"))
    up, down = feedback_values(reply)
    assert bridge.store is not None

    async def click(user: str, value: str) -> None:
        ack = await fake_slack.push_interactive(slack.block_actions(
            user=user, channel=LEGAL, message_ts=reply.ts, thread_ts=mention["ts"], action=slack.feedback_click(value)))
        assert "envelope_id" in ack

    await click(ALICE, up)
    await until_async(lambda: _report(bridge, [("legal-adviser", 1, 0)]))
    await click(ALICE, down)  # a second click changes her rating
    await until_async(lambda: _report(bridge, [("legal-adviser", 0, 1)]))
    await click(BOB, up)
    await until_async(lambda: _report(bridge, [("legal-adviser", 1, 1)]))
    text = await metrics_text(bridge)
    assert 'bridge_feedback_total{persona="legal-adviser",platform="slack",rating="up"} 2.0' in text
    assert 'bridge_feedback_total{persona="legal-adviser",platform="slack",rating="down"} 1.0' in text

    for variable in ("LLM_URL", "SLACK_BOT_TOKEN", "SLACK_API_URL", "SLACK_APP_TOKEN"):
        monkeypatch.setenv(variable, {"LLM_URL": fake_llm.url, "SLACK_BOT_TOKEN": slack.BOT_TOKEN,
                                      "SLACK_API_URL": fake_slack.url, "SLACK_APP_TOKEN": slack.APP_TOKEN}[variable])
    path = str(tmp_path / "bridge.yaml")
    assert await asyncio.to_thread(cli.main, ["usage", "--config", path, "--by", "feedback"]) == 0
    out = capsys.readouterr().out
    assert ["legal-adviser", "1", "1", "50%"] in [line.split() for line in out.splitlines()], out


async def _report(bridge: Bridge, want: list[tuple[str, int, int]]) -> bool:
    assert bridge.store is not None
    return [(line.persona, line.up, line.down) for line in await bridge.store.feedback_report(0)] == want


async def test_feedback_click_over_http_with_edits(start: Start, fake_slack: FakeSlack) -> None:
    bridge = await start("http", FEEDBACK="true", STREAMING="edit")
    mention = slack.app_mention(f"{MENTION} hello", user=ALICE, channel=GENERAL)
    status, _ = await fake_slack.post_http(events_url(bridge), slack.event_callback(mention))
    assert status == 200
    reply = await fake_slack.wait_reply(GENERAL, mention["ts"], "You said: hello")
    await until(lambda: reply.fields.get("blocks"))
    up, _ = feedback_values(reply)
    assert reply.fields["blocks"][0] == {"type": "markdown", "text": "You said: hello"}, "the text stays"
    click = slack.block_actions(user=BOB, channel=GENERAL, message_ts=reply.ts, action=slack.feedback_click(up))
    status, _ = await fake_slack.post_interactive(events_url(bridge), click)
    assert status == 200
    await until_async(lambda: _report(bridge, [("assistant", 1, 0)]))
    forged = slack.block_actions(user=BOB, channel=GENERAL, message_ts=reply.ts,
                                 action=slack.feedback_click("up slack:C0GENERAL:1.000001"))
    status, _ = await fake_slack.post_interactive(events_url(bridge), forged)
    assert status == 200, "acknowledged, and nothing recorded"
    status, _ = await fake_slack.post_interactive(events_url(bridge), click, secret="wrong")
    assert status == 401
    assert await _report(bridge, [("assistant", 1, 0)])


async def test_no_buttons_without_feedback_or_under_a_command(start: Start, fake_slack: FakeSlack) -> None:
    await start(FEEDBACK="true")
    command = slack.app_mention(f"{MENTION} /personas", user=ALICE, channel=GENERAL)
    await fake_slack.push(slack.event_callback(command))
    await until(lambda: fake_slack.replies(GENERAL, command["ts"])
                and not fake_slack.replies(GENERAL, command["ts"])[-1].streaming
                and "legal-adviser" in fake_slack.replies(GENERAL, command["ts"])[-1].text)
    assert not fake_slack.replies(GENERAL, command["ts"])[-1].fields.get("blocks"), "a command is not rated"


async def test_the_channel_in_view_is_the_personas_channel_and_kept_with_the_session(
        start: Start, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    first = await start()
    thread = await open_pane(fake_slack)  # looking at #general
    await until(lambda: fake_slack.replies(DM, thread))

    async def ask(text: str) -> str:
        question = slack.message(text, user=ALICE, channel=DM, channel_type="im", thread_ts=thread)
        await fake_slack.push(slack.event_callback(question))
        await fake_slack.wait_reply(DM, thread, f"You said: {text}")
        return str(fake_llm.requests[-1]["messages"][0]["content"])

    assert f"(in {GENERAL})" in await ask("one")
    changed = slack.assistant_thread_context_changed(user=ALICE, channel=DM, thread_ts=thread, context_channel=LEGAL)
    await fake_slack.push(slack.event_callback(changed))
    assert f"(in {LEGAL})" in await ask("two"), "the new channel in view"
    await first.stop()
    await start()
    assert f"(in {LEGAL})" in await ask("three"), "kept with the session across a restart"


async def test_pane_over_http_events(start: Start, fake_slack: FakeSlack) -> None:
    bridge = await start("http")
    started = slack.assistant_thread_started(user=ALICE, channel=DM, context_channel=GENERAL)
    status, _ = await fake_slack.post_http(events_url(bridge), slack.event_callback(started))
    assert status == 200
    thread = str(started["assistant_thread"]["thread_ts"])
    await until(lambda: fake_slack.replies(DM, thread) and (DM, thread) in fake_slack.suggested)
    question = slack.message("over http?", user=ALICE, channel=DM, channel_type="im", thread_ts=thread)
    status, _ = await fake_slack.post_http(events_url(bridge), slack.event_callback(question))
    assert status == 200
    await fake_slack.wait_reply(DM, thread, "You said: over http?")
    assert fake_slack.titles[(DM, thread)] == "over http?"


# ------------------------------------------------------------------------------ persona keys


def test_persona_greeting_and_at_most_four_suggested_prompts(tmp_path: Path) -> None:
    prompt = '  - {title: "T%d", message: "M%d"}\n'
    (tmp_path / "ok.yaml").write_text("name: ok\nsystem: hi\ngreeting: Hello!\nsuggested_prompts:\n"
                                      + "".join(prompt % (i, i) for i in range(4)))
    personas = load_personas(tmp_path)
    assert personas["ok"].greeting == "Hello!"
    assert [p.title for p in personas["ok"].suggested_prompts] == ["T0", "T1", "T2", "T3"]
    (tmp_path / "five.yaml").write_text("name: five\nsystem: hi\nsuggested_prompts:\n"
                                        + "".join(prompt % (i, i) for i in range(5)))
    (tmp_path / "typo.yaml").write_text("name: typo\nsystem: hi\nsuggested_prompts:\n  - {title: T, mesage: M}\n")
    with pytest.raises(ConfigError) as err:
        load_personas(tmp_path)
    text = str(err.value)
    assert ("five.yaml: suggested_prompts: at most 4 (Slack's assistant pane shows no more); this persona "
            "lists 5") in text, text
    assert "typo.yaml: suggested_prompts.0.mesage: unknown key. did you mean 'message'? Allowed: title, message" \
        in text, text
