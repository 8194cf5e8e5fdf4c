"""Table tests for the pure Slack translation (platforms.slack.handlers): payload in, facts out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.types import Author, ThreadRef
from platforms.slack.handlers import BotIdentity, readable_text, translate, user_ids_to_resolve
from platforms.slack.users import display_name

BOT = BotIdentity("U0BOT", "B0BOT")
TEAM = "T0TEAM"
NAMES = {"U0ALICE": "Alice", "U0BOB": "Bob"}
TS, ROOT = "1700000100.000200", "1700000000.000100"


def body(**event: Any) -> dict[str, Any]:
    base = {"type": "message", "user": "U0ALICE", "text": "hello", "ts": TS, "channel": "C0GEN",
            "channel_type": "channel"}
    base.update(event)
    return {"type": "event_callback", "team_id": TEAM, "event_id": "Ev1", "event": {k: v for k, v in base.items()
                                                                                   if v is not None}}


def ref(channel: str = "C0GEN", thread: str = TS) -> ThreadRef:
    return ThreadRef("slack", TEAM, channel, thread)


# (name, body, expected facts: thread, text, mentioned, direct, in_thread)
MESSAGES = [
    ("app_mention at top level starts a thread at its own ts",
     body(type="app_mention", text="<@U0BOT> what is a tort?", channel_type=None),
     ref(), "what is a tort?", True, False, False),
    ("app_mention inside a thread belongs to the thread root",
     body(type="app_mention", text="<@U0BOT> and this?", thread_ts=ROOT, channel_type=None),
     ref(thread=ROOT), "and this?", True, False, True),
    ("a channel message naming the bot counts as a mention",
     body(text="hey <@U0BOT> help"), ref(), "hey help", True, False, False),
    ("a labelled mention of the bot counts too",
     body(text="<@U0BOT|bridge> hi"), ref(), "hi", True, False, False),
    ("a thread reply without a mention is in_thread, not mentioned",
     body(text="thanks", thread_ts=ROOT), ref(thread=ROOT), "thanks", False, False, True),
    ("a thread parent (thread_ts == ts) is not a reply",
     body(text="parent", thread_ts=TS), ref(), "parent", False, False, False),
    ("a DM is direct and one running conversation",
     body(text="hi", channel="D0DM", channel_type="im"), ref("D0DM", "D0DM"), "hi", False, True, False),
    ("a thread inside a DM is its own conversation",
     body(text="more", channel="D0DM", channel_type="im", thread_ts=ROOT), ref("D0DM", ROOT), "more", False, True,
     True),
    ("a group DM is not direct: it needs a mention",
     body(text="hi all", channel="G0MPIM", channel_type="mpim"), ref("G0MPIM"), "hi all", False, False, False),
    ("a thread broadcast is a person's message",
     body(subtype="thread_broadcast", text="also to channel", thread_ts=ROOT), ref(thread=ROOT), "also to channel",
     False, False, True),
    ("a file share with a comment is a person's message",
     body(subtype="file_share", text="<@U0BOT> read this"), ref(), "read this", True, False, False),
]


@pytest.mark.parametrize(("name", "payload", "thread", "text", "mentioned", "direct", "in_thread"), MESSAGES,
                         ids=[m[0] for m in MESSAGES])
def test_messages(name: str, payload: dict[str, Any], thread: ThreadRef, text: str, mentioned: bool, direct: bool,
                  in_thread: bool) -> None:
    msg = translate(payload, BOT, NAMES)
    assert msg is not None, name
    assert (msg.thread, msg.text, msg.mentioned, msg.direct, msg.in_thread) == (
        thread, text, mentioned, direct, in_thread)
    assert msg.author == Author("U0ALICE", "Alice")
    assert msg.event_id == f"{thread.channel}:{TS}"
    assert msg.raw is payload


def test_message_and_app_mention_for_one_message_share_the_event_id() -> None:
    a = translate(body(text="<@U0BOT> hi"), BOT, NAMES)
    b = translate(body(type="app_mention", text="<@U0BOT> hi", channel_type=None), BOT, NAMES)
    assert a is not None
    assert b is not None
    assert a.event_id == b.event_id
    assert a.mentioned
    assert b.mentioned


NOT_MESSAGES = [
    ("message_changed", body(subtype="message_changed", hidden=True, message={"text": "edited"})),
    ("message_deleted", body(subtype="message_deleted", hidden=True, text=None)),
    ("channel_join", body(subtype="channel_join", text="<@U0ALICE> has joined the channel")),
    ("channel_topic", body(subtype="channel_topic", text="set the topic")),
    ("an edited app_mention", body(type="app_mention", text="<@U0BOT> hi", edited={"user": "U0ALICE", "ts": TS})),
    ("a reaction", body(type="reaction_added", reaction="thumbsup")),
    ("no channel", body(channel=None)),
    ("no ts", body(ts=None)),
]


@pytest.mark.parametrize(("name", "payload"), NOT_MESSAGES, ids=[m[0] for m in NOT_MESSAGES])
def test_not_messages(name: str, payload: dict[str, Any]) -> None:
    assert translate(payload, BOT, NAMES) is None, name


def test_no_event_at_all() -> None:
    assert translate({"type": "url_verification", "challenge": "x"}, BOT, NAMES) is None
    assert translate({"type": "event_callback", "event": "nonsense"}, BOT, NAMES) is None


BOTS = [
    ("our own message", body(user="U0BOT", bot_id="B0BOT", text="You said: hi")),
    ("our own message without user", body(user=None, bot_id="B0BOT", text="hi")),
    ("a legacy bot_message", body(subtype="bot_message", user=None, bot_id="B0OTHER", username="ci", text="<@U0BOT>")),
    ("another app's bot user", body(user="U0APP", bot_id="B0APP", text="<@U0BOT> hi")),
    ("a bot_profile without bot_id", body(user="U0APP", bot_profile={"name": "x"}, text="hi")),
]


@pytest.mark.parametrize(("name", "payload"), BOTS, ids=[b[0] for b in BOTS])
def test_bots_are_marked_as_bots(name: str, payload: dict[str, Any]) -> None:
    msg = translate(payload, BOT, NAMES)
    assert msg is not None, name
    assert msg.author.is_bot
    assert user_ids_to_resolve(payload["event"], BOT) == [], "no name lookups for bots"


def test_team_falls_back_to_the_event() -> None:
    payload = body()
    del payload["team_id"]
    payload["event"]["team"] = "T0OTHER"
    msg = translate(payload, BOT, NAMES)
    assert msg is not None
    assert msg.thread.workspace == "T0OTHER"


def test_unknown_author_name_is_the_id() -> None:
    msg = translate(body(user="U0CAROL"), BOT, NAMES)
    assert msg is not None
    assert msg.author == Author("U0CAROL", "U0CAROL")


TEXTS = [
    ("<@U0BOT> hello", "hello"),
    ("hello <@U0BOT>", "hello"),
    ("ask <@U0BOB> and <@U0ALICE>", "ask @Bob and @Alice"),
    ("ask <@U0BOB|bobby>", "ask @bobby"),
    ("ask <@U0CAROL>", "ask @U0CAROL"),
    ("see <#C0LEGAL|legal> and <#C0OTHER>", "see #legal and #C0OTHER"),
    ("<!here> <!channel> <!everyone>", "@here @channel @everyone"),
    ("ping <!subteam^S0TEAM|@lawyers>", "ping @lawyers"),
    ("read <https://example.com/a?b=1&amp;c=2|the docs>", "read the docs (https://example.com/a?b=1&c=2)"),
    ("read <https://example.com>", "read https://example.com"),
    ("mail <mailto:a@example.com|a@example.com>", "mail a@example.com"),
    ("due <!date^1392734382^{date_short}|Feb 18, 2014>", "due Feb 18, 2014"),
    ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2"),
    ("<@U0BOT>   first line\n\n```\ncode  kept\n```", "first line\n\n```\ncode kept\n```"),
]


@pytest.mark.parametrize(("wire", "readable"), TEXTS)
def test_readable_text(wire: str, readable: str) -> None:
    assert readable_text(wire, BOT, NAMES) == readable


def test_user_ids_to_resolve() -> None:
    event = body(text="<@U0BOT> ask <@U0BOB>, <@U0BOB> and <@U0DAN|dan>")["event"]
    assert user_ids_to_resolve(event, BOT) == ["U0ALICE", "U0BOB"]
    assert user_ids_to_resolve(body(subtype="channel_join")["event"], BOT) == []


@pytest.mark.parametrize(("user", "name"), [
    ({"id": "U1", "name": "al", "real_name": "Al Real", "profile": {"display_name": "Ally", "real_name": "Al R"}},
     "Ally"),
    ({"id": "U1", "name": "al", "real_name": "Al Real", "profile": {"display_name": "", "real_name": "Al R"}}, "Al R"),
    ({"id": "U1", "name": "al", "profile": {}}, "al"),
    ({"id": "U1"}, "U1"),
])
def test_display_name(user: dict[str, Any], name: str) -> None:
    assert display_name(user) == name


def test_shipped_manifest_asks_for_what_the_adapter_uses() -> None:
    manifest = yaml.safe_load((Path(__file__).resolve().parent.parent / "slack-manifest.yaml").read_text())
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention", "message.channels", "message.groups", "message.im", "message.mpim",
        "assistant_thread_started", "assistant_thread_context_changed"}
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read", "channels:history", "groups:history", "im:history", "mpim:history", "chat:write",
        "chat:write.customize", "users:read", "files:read", "assistant:write"}
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    assert manifest["features"]["assistant_view"]["assistant_description"], "the assistant pane"
    assert settings["interactivity"]["is_enabled"] is True, "the feedback buttons' clicks"
