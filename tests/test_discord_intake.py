"""Discord intake when the store cannot take a message: nothing is dropped, nothing overtakes it.

Discord never sends a message again, so what the gateway delivered and the store refused is the
adapter's to keep. The store refuses for real (tests/storefault.py); discord.py and the loopback
fake of Discord are unmodified.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.discord import DiscordPlatform
from tests import test_discord
from tests.fakes import discord_server as fk
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.storefault import accept_inserts, refuse_inserts
from tests.test_discord import MENTION, reply, user_turns
from tests.test_discord_recovery import settled
from tests.waiting import until

discord = test_discord.discord
config = test_discord.config


@pytest.fixture
async def bridges() -> AsyncIterator[list[Bridge]]:
    started: list[Bridge] = []
    yield started
    for b in started:
        await b.stop()


async def start(config: Config, bridges: list[Bridge], *, grace: float = 20.0, **options: float) -> Bridge:
    assert config.platforms.discord is not None
    platform = DiscordPlatform(config.platforms.discord, rules=config.channels, guild_ready_timeout_s=0.05,
                               **options)
    b = Bridge(config, platforms={"discord": platform}, serve_http=False, shutdown_grace_s=grace)
    await b.start()
    bridges.append(b)
    return b


def logged(caplog: pytest.LogCaptureFixture, message_id: object) -> bool:
    """The adapter said that storing this message failed."""
    return any(r.name.startswith("platforms.discord") and r.levelno >= logging.WARNING
               and str(message_id) in r.getMessage() for r in caplog.records)


async def stored_texts(b: Bridge) -> list[str]:
    assert b.store is not None
    return [m.content for s in await b.store.sessions() for m in await b.store.messages(s.session.id)]


async def test_a_message_the_store_refused_is_stored_when_it_can_and_keeps_its_place(
        config: Config, discord: FakeDiscord, fake_llm: FakeOpenAI, bridges: list[Bridge],
        caplog: pytest.LogCaptureFixture) -> None:
    db = Path(config.db_path)
    b = await start(config, bridges)
    await refuse_inserts(db, "messages")
    first = await discord.say("what does borrow mean?", channel=fk.HELP_DESK)
    await until(lambda: logged(caplog, first["id"]))
    await discord.say("and a mutable borrow?", channel=fk.HELP_DESK, author=fk.BOB)
    await accept_inserts(db, "messages")

    await reply(discord, fk.HELP_DESK, "You said: what does borrow mean?")
    await reply(discord, fk.HELP_DESK, "You said: and a mutable borrow?")
    assert await stored_texts(b) == ["what does borrow mean?", "and a mutable borrow?"], \
        "stored once each, the refused one first"
    assert user_turns(fake_llm.requests[-1])[-1].endswith("and a mutable borrow?")
    assert any("what does borrow mean?" in turn for turn in user_turns(fake_llm.requests[-1])[:-1]), \
        "the later question was answered knowing the earlier one"


async def test_a_message_still_refused_when_retries_run_out_is_read_back_at_the_next_catch_up(
        config: Config, discord: FakeDiscord, fake_llm: FakeOpenAI, bridges: list[Bridge],
        caplog: pytest.LogCaptureFixture) -> None:
    db = Path(config.db_path)
    await start(config, bridges, store_retry_s=0)  # gives up at the first failure
    await refuse_inserts(db, "messages")
    lost = await discord.say("kept despite a full disk", channel=fk.HELP_DESK)
    await until(lambda: logged(caplog, lost["id"]))
    await accept_inserts(db, "messages")
    await discord.say("written after the disk was freed", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: written after the disk was freed")

    await discord.reconnect()  # the catch-up starts before the message the store could not take
    await reply(discord, fk.HELP_DESK, "You said: kept despite a full disk")


async def test_a_first_part_posted_long_after_the_question_is_found_after_a_crash(
        config: Config, discord: FakeDiscord, fake_llm: FakeOpenAI, bridges: list[Bridge]) -> None:
    discord.nonce_window_s = 0  # long ago: only the reply reference tells the post is ours
    fake_llm.hold = asyncio.Event()
    first = await start(config, bridges, grace=0)
    await discord.say(f"{MENTION} sum up the discussion", channel=fk.GENERAL)
    await until(lambda: fake_llm.requests)
    for i in range(150):  # a busy channel while the model thinks
        await discord.say(f"chatter {i}", channel=fk.GENERAL, author=fk.BOB, gateway="lost")
    discord.hold_create = asyncio.Event()  # Discord creates the answer; the bridge never hears back
    fake_llm.hold.set()
    await discord.wait_until(lambda: discord.messages_in(fk.GENERAL))
    bridges.remove(first)
    await first.stop()  # a crash: the post is not recorded
    discord.hold_create.set()
    discord.hold_create = None

    await settled(await start(config, bridges))
    await reply(discord, fk.GENERAL, "You said: sum up the discussion")
    assert len(discord.messages_in(fk.GENERAL)) == 1, "the post 150 messages after the question was reused"
