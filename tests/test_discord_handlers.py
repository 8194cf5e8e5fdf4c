"""Table-driven tests of the pure translation: a MESSAGE_CREATE payload, parsed by discord.py itself,
becomes the Incoming the core receives (or nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import discord
import pytest
from discord.http import HTTPClient
from discord.state import ConnectionState

from bridge.types import ThreadRef
from platforms.discord.client import INTENTS
from platforms.discord.handlers import to_incoming
from tests.fakes import discord_server as fk

ALICE_NICK = "Ali (mod)"


class World:
    """discord.py's own connection state, fed the fake's READY user and GUILD_CREATE payloads."""

    def __init__(self) -> None:
        self.fake = fk.FakeDiscord()
        self.fake.add_dm(7001, fk.BOB)
        self.messages: list[discord.Message] = []
        self.state = ConnectionState(dispatch=self._dispatch, handlers={}, hooks={},
                                     http=HTTPClient(discord.utils.MISSING), intents=INTENTS)
        self.state.user = discord.ClientUser(state=self.state, data=self.fake.bot)  # type: ignore[arg-type]
        self.state.parse_guild_create(self.fake.guild_payload())

    def _dispatch(self, event: str, *args: Any) -> None:
        if event == "message":
            self.messages.append(args[0])

    def parse(self, data: dict[str, Any]) -> discord.Message:
        self.state.parse_message_create(data)  # type: ignore[arg-type]
        return self.messages[-1]

    def say(self, content: str, *, channel: int = fk.GENERAL, author: int = fk.ALICE, **kw: Any) -> discord.Message:
        return self.parse(self.fake.make_message(content, channel=channel, author=author, **kw))


@pytest.fixture
def world() -> World:
    return World()


@dataclass
class Case:
    name: str
    content: str
    text: str
    mentioned: bool = False
    channel: int = fk.GENERAL
    author: int = fk.ALICE


CASES = [
    Case("plain message", "hello there", "hello there"),
    Case("bot mention is removed", f"<@{fk.BOT_ID}> what is ownership?", "what is ownership?", True),
    Case("legacy nickname mention", f"<@!{fk.BOT_ID}> hi", "hi", True),
    Case("mention with punctuation", f"<@{fk.BOT_ID}>, summarise this", "summarise this", True),
    Case("mention mid-sentence", f"so <@{fk.BOT_ID}> what now", "so what now", True),
    Case("bot's managed role counts as the bot", f"<@&{fk.BOT_ROLE}> help", "help", True),
    Case("other users become display names", f"<@{fk.BOT_ID}> ask <@{fk.BOB}> and <@{fk.ALICE}>",
         f"ask @Bob and @{ALICE_NICK}", True),
    Case("other roles become names", f"ping <@&{fk.MODS_ROLE}> please", "ping @mods please"),
    Case("channels become names", f"see <#{fk.HELP_DESK}> and <#{fk.THREAD}>",
         "see #help-desk and #ownership-questions"),
    Case("custom emoji become their names", "nice <:ferris:123456> <a:party:42>", "nice :ferris: :party:"),
    Case("code is left alone", "```py\n    x = 1\n```", "```py\n    x = 1\n```"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_text_and_mention(world: World, case: Case) -> None:
    msg = to_incoming(world.say(case.content, channel=case.channel, author=case.author), fk.BOT_ID)
    assert msg is not None
    assert msg.text == case.text
    assert msg.mentioned is case.mentioned
    assert msg.author.name == ALICE_NICK  # the server nickname, as people see it
    assert msg.author.id == str(fk.ALICE)
    assert not msg.author.is_bot


def test_channel_message_is_the_channel_session(world: World) -> None:
    data = world.fake.make_message("hi")
    msg = to_incoming(world.parse(data), fk.BOT_ID)
    assert msg is not None
    assert msg.thread == ThreadRef("discord", str(fk.GUILD_ID), str(fk.GENERAL), str(fk.GENERAL))
    assert msg.event_id == data["id"]  # the message id: a replay of it is recognised
    assert not msg.direct
    assert not msg.in_thread


def test_thread_is_its_own_session_under_its_parent_channel(world: World) -> None:
    msg = to_incoming(world.say("in a thread", channel=fk.THREAD), fk.BOT_ID)
    assert msg is not None
    assert msg.thread == ThreadRef("discord", str(fk.GUILD_ID), str(fk.GENERAL), str(fk.THREAD))
    assert msg.in_thread


def test_uncached_thread_uses_the_channel_the_adapter_looked_up(world: World) -> None:
    world.fake.add_thread(3002, "late thread", parent_id=fk.HELP_DESK)
    raw = world.say("hello", channel=3002)
    assert isinstance(raw.channel, discord.PartialMessageable)  # discord.py knows nothing about it
    guild = world.state._get_guild(fk.GUILD_ID)
    assert guild is not None
    looked_up = discord.Thread(guild=guild, state=world.state, data=world.fake.channels[3002])  # type: ignore[arg-type]
    msg = to_incoming(raw, fk.BOT_ID, channel=looked_up)
    assert msg is not None
    assert msg.thread == ThreadRef("discord", str(fk.GUILD_ID), str(fk.HELP_DESK), "3002")


def test_dm_is_direct_and_per_user(world: World) -> None:
    msg = to_incoming(world.say("hello", channel=7001, author=fk.BOB), fk.BOT_ID)
    assert msg is not None
    assert msg.thread == ThreadRef("discord", "", "7001", "7001")
    assert msg.direct
    assert msg.author.name == "Bob"


def test_reply_to_the_bot_is_addressed_to_it(world: World) -> None:
    bots = world.fake.make_message("an earlier answer", author=fk.BOT_ID)
    msg = to_incoming(world.say("and why is that?", reply_to=bots), fk.BOT_ID)
    assert msg is not None
    assert msg.mentioned
    someone = world.fake.make_message("bob's point", author=fk.BOB)
    other = to_incoming(world.say("I disagree", reply_to=someone), fk.BOT_ID)
    assert other is not None
    assert not other.mentioned


@pytest.mark.parametrize(("name", "author", "extra"), [
    ("another bot", fk.OTHER_BOT, {}),
    ("a webhook", fk.ALICE, {"webhook_id": 4242}),
])
def test_bots_and_webhooks_are_marked(world: World, name: str, author: int, extra: dict[str, Any]) -> None:
    msg = to_incoming(world.say(f"<@{fk.BOT_ID}> hi", author=author, **extra), fk.BOT_ID)
    assert msg is not None
    assert msg.author.is_bot, name


@pytest.mark.parametrize(("name", "author", "kind"), [
    ("the bridge's own message", fk.BOT_ID, 0),
    ("member joined", fk.ALICE, 7),
    ("pinned message notice", fk.ALICE, 6),
    ("thread created notice", fk.ALICE, 18),
])
def test_not_conversation(world: World, name: str, author: int, kind: int) -> None:
    assert to_incoming(world.say("something", author=author, kind=kind), fk.BOT_ID) is None, name
