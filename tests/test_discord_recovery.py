"""Discord, exactly once whatever fails: a crash between posting and recording, a restart, messages
written while the bridge was down or its gateway connection was, and Discord's rate limits.

Real :class:`bridge.app.Bridge` instances on one SQLite file, discord.py unmodified, the loopback fake
of Discord. A "crash" is a stop with no grace: the answer in flight is cancelled where it stands,
nothing after that point is recorded (as after a SIGKILL), and the next Bridge recovers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.discord import DiscordPlatform
from tests import test_discord
from tests.fakes import discord_server as fk
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.test_discord import MENTION, YAML, reply, user_turns
from tests.waiting import until

# The fake Discord and the config, as tests/test_discord.py makes them.
discord = test_discord.discord
config = test_discord.config


@pytest.fixture
async def bridges() -> AsyncIterator[list[Bridge]]:
    """Every Bridge a test starts, stopped at the end (a crashed one is stopped already)."""
    started: list[Bridge] = []
    yield started
    for b in started:
        await b.stop()


async def start(config: Config, bridges: list[Bridge], *, grace: float = 20.0) -> Bridge:
    assert config.platforms.discord is not None
    platform = DiscordPlatform(config.platforms.discord, rules=config.channels, guild_ready_timeout_s=0.05)
    b = Bridge(config, platforms={"discord": platform}, serve_http=False, shutdown_grace_s=grace)
    await b.start()
    bridges.append(b)
    return b


async def crash(b: Bridge, bridges: list[Bridge]) -> None:
    """Stop with no grace: the answer in flight is cancelled, as a kill would leave it."""
    bridges.remove(b)
    await b.stop()


async def posted_ids(b: Bridge) -> tuple[str, ...]:
    """The platform ids recorded for the one message left pending."""
    assert b.store is not None
    [pending] = await b.store.pending()
    recorded = await b.store.reply(pending.id)
    return recorded.platform_ids if recorded is not None else ()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10) -> None:
    """:func:`tests.waiting.until` for a check that reads the store."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError(f"not {what} within {timeout} s")
        await asyncio.sleep(0.02)


async def settled(b: Bridge) -> None:
    """Wait until ``b`` has nothing left to answer: every message stored is answered or failed."""
    store = b.store
    assert store is not None

    async def idle() -> bool:
        return not (b.lanes is not None and b.lanes.busy) and not await store.pending()

    await eventually(idle, "settled")


async def stored_texts(b: Bridge) -> list[str]:
    assert b.store is not None
    return [m.content for s in await b.store.sessions() for m in await b.store.messages(s.session.id)]


async def recorded(b: Bridge, count: int, timeout: float = 10) -> tuple[str, ...]:
    """Wait until ``count`` posts are recorded for the pending message (the store is polled, as
    :func:`tests.waiting.until` polls the fakes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(ids := await posted_ids(b)) < count:
        if loop.time() > deadline:
            raise TimeoutError(f"{count} post(s) not recorded within {timeout} s (have {ids})")
        await asyncio.sleep(0.02)
    return ids


# ------------------------------------------------------------------------------- crash, restart


@pytest.mark.parametrize("nonce_window_s", [300.0, 0.0], ids=["within-nonce-window", "after-nonce-window"])
async def test_post_a_crash_left_unrecorded_is_not_posted_again(config: Config, discord: FakeDiscord,
                                                                 fake_llm: FakeOpenAI, bridges: list[Bridge],
                                                                 nonce_window_s: float) -> None:
    discord.nonce_window_s = nonce_window_s  # 0: only the reply reference can tell the post is ours
    discord.hold_create = asyncio.Event()
    fake_llm.chunk_size = 4
    fake_llm.chunk_delay = 0.05  # the first post shows the first words only
    first = await start(config, bridges, grace=0)
    await discord.say("answer me exactly once", channel=fk.HELP_DESK)
    await discord.wait_until(lambda: discord.messages_in(fk.HELP_DESK))  # Discord created it; no answer yet
    assert await posted_ids(first) == ()
    await crash(first, bridges)
    discord.hold_create.set()
    discord.hold_create = None
    [held] = discord.messages_in(fk.HELP_DESK)
    assert held.content != "You said: answer me exactly once"
    fake_llm.chunk_delay = 0

    await settled(await start(config, bridges))
    answer = await reply(discord, fk.HELP_DESK, "You said: answer me exactly once")
    assert len(discord.messages_in(fk.HELP_DESK)) == 1, "the earlier post was reused, not repeated"
    question = discord.history[fk.HELP_DESK][0]
    assert str(answer.bodies[0]["message_reference"]["message_id"]) == question["id"], \
        "the first part replies to the question"


async def test_continuation_part_left_unrecorded_is_found_by_its_nonce(config: Config, discord: FakeDiscord,
                                                                       fake_llm: FakeOpenAI,
                                                                       bridges: list[Bridge]) -> None:
    text = "First paragraph of a long answer. " * 40 + "\n\n" + "Second paragraph, the continuation. " * 40
    fake_llm.reply = lambda _: text.strip()
    discord.hold_create = asyncio.Event()
    discord.hold_after = 1  # the first part is answered and recorded, the second is created and held
    first = await start(config, bridges, grace=0)
    await discord.say("a long one please", channel=fk.HELP_DESK)
    await discord.wait_until(lambda: len(discord.messages_in(fk.HELP_DESK)) == 2)
    assert len(await posted_ids(first)) == 1
    await crash(first, bridges)
    discord.hold_create.set()
    discord.hold_create = None

    await settled(await start(config, bridges))
    parts = discord.messages_in(fk.HELP_DESK)
    assert len(parts) == 2, "Discord returned the part already created for the same nonce"
    assert "\n".join(p.content for p in parts).split() == text.split()
    posts = discord.calls_to("POST", f"/channels/{fk.HELP_DESK}/messages")
    assert posts[1].body["nonce"] == posts[2].body["nonce"], "the same part, the same nonce"
    assert posts[0].body["nonce"] != posts[1].body["nonce"]
    assert all(p.body["enforce_nonce"] is True and len(p.body["nonce"]) <= 25 for p in posts)


async def test_partial_reply_recorded_before_a_crash_is_edited_after_restart(
        config: Config, discord: FakeDiscord, fake_llm: FakeOpenAI, bridges: list[Bridge]) -> None:
    fake_llm.chunk_size = 4
    fake_llm.chunk_delay = 0.3  # the first words are shown and recorded long before the end
    first = await start(config, bridges, grace=0)
    await discord.say("a slow answer", channel=fk.HELP_DESK)
    [partial] = await until(lambda: discord.messages_in(fk.HELP_DESK))
    assert await recorded(first, 1) == (str(partial.id),)
    await crash(first, bridges)
    fake_llm.chunk_delay = 0

    await settled(await start(config, bridges))
    answer = await reply(discord, fk.HELP_DESK, "You said: a slow answer")
    assert answer.id == partial.id, "the partial message was edited into the answer"
    assert len(discord.messages_in(fk.HELP_DESK)) == 1


# ---------------------------------------------------------------------------- nothing dropped


async def test_messages_written_while_the_bridge_was_down_are_answered_once(
        config: Config, discord: FakeDiscord, fake_llm: FakeOpenAI, bridges: list[Bridge]) -> None:
    first = await start(config, bridges)
    await discord.say("before the restart", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: before the restart")
    await discord.say("chatter in the thread, not for the bot", channel=fk.THREAD)
    await discord.say(f"{MENTION} now a question in the thread", channel=fk.THREAD)
    await reply(discord, fk.THREAD, "You said: now a question in the thread")
    bridges.remove(first)
    await first.stop()

    await discord.say("written while the bridge was down", channel=fk.HELP_DESK, gateway="lost")
    await discord.say("and a second one", channel=fk.HELP_DESK, author=fk.BOB, gateway="lost")
    await discord.say("nobody asked the bot here", gateway="lost")  # mention rule: read back, not answered
    asked = await discord.say(f"{MENTION} were you away?", gateway="lost")
    await start(config, bridges)
    await reply(discord, fk.HELP_DESK, "You said: and a second one")
    await reply(discord, fk.GENERAL, "You said: were you away?")
    await discord.dispatch("MESSAGE_CREATE", asked)  # the gateway delivers it too, late
    await discord.say("after the restart", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: after the restart")
    asked_llm = [user_turns(r)[-1] for r in fake_llm.requests]
    everything = ["before the restart", "now a question in the thread", "were you away?",
                  "written while the bridge was down", "and a second one", "after the restart"]
    assert sorted(asked_llm) == sorted(everything), \
        "each once; the thread chatter from before the bot was asked there is left alone"
    help_desk = [t for t in asked_llm if t not in ("now a question in the thread", "were you away?")]
    assert help_desk == ["before the restart", "written while the bridge was down", "and a second one",
                         "after the restart"], "in the channel's order"
    assert user_turns(fake_llm.requests[-1])[-3:-1] == ["and a second one", "You said: and a second one"]


@pytest.mark.parametrize("resumable", [True, False], ids=["resumed", "new-session"])
async def test_reconnect_catches_up_on_what_the_gateway_missed(config: Config, discord: FakeDiscord,
                                                               fake_llm: FakeOpenAI, bridges: list[Bridge],
                                                               resumable: bool) -> None:
    await start(config, bridges)
    await discord.say("hello", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: hello")
    await discord.say("lost while the connection was down", channel=fk.HELP_DESK, gateway="lost")
    await discord.say("sent after it, replayed on resume", channel=fk.HELP_DESK, author=fk.BOB, gateway="unsent")
    discord.resumable = resumable
    await discord.reconnect()
    await reply(discord, fk.HELP_DESK, "You said: sent after it, replayed on resume")
    asked = [user_turns(r)[-1] for r in fake_llm.requests]
    if resumable:
        assert asked == ["hello", "lost while the connection was down", "sent after it, replayed on resume"], \
            "the missed message first: replayed events wait for the catch-up"
    else:  # a new session replays nothing: both come from the channel's history, in order
        assert asked == ["hello", "lost while the connection was down", "sent after it, replayed on resume"]
    assert len(discord.messages_in(fk.HELP_DESK)) == 3


# -------------------------------------------------------------------------------- rate limits


async def test_streamed_answer_under_discords_rate_limits_ends_with_the_full_text(
        fake_llm: FakeOpenAI, discord: FakeDiscord, make_config: Callable[..., Config],
        bridges: list[Bridge]) -> None:
    interval = 0.1
    config = make_config(YAML.replace("edit_interval_s: 0.05", f"edit_interval_s: {interval}"), LLM_URL=fake_llm.url,
                         DISCORD_API_URL=discord.api_url, DISCORD_BOT_TOKEN=discord.token)
    discord.rate_limit, discord.rate_window_s = 5, 1.0  # 5 edits/s: less than one per interval
    text = " ".join(f"word{i}" for i in range(150))
    fake_llm.reply = lambda _: text
    fake_llm.chunk_size = 6
    fake_llm.chunk_delay = 0.015  # about 2 s of streaming
    await start(config, bridges)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await discord.say("stream a long one", channel=fk.HELP_DESK)
    answer = await reply(discord, fk.HELP_DESK, text, timeout=30)
    seconds = loop.time() - began
    edits = discord.calls_to("PATCH", f"/channels/{fk.HELP_DESK}/messages/{answer.id}")
    assert answer.content == text
    assert len(discord.messages_in(fk.HELP_DESK)) == 1
    assert discord.exhausted > 0, "the edit bucket ran empty: discord.py had to wait for it"
    assert len(edits) <= seconds / interval + 2, f"{len(edits)} edits in {seconds:.1f} s"
    assert seconds < 10, "rate limits cost seconds, not minutes"


async def test_a_catch_all_rule_reads_back_every_visible_channel(fake_llm: FakeOpenAI, discord: FakeDiscord,
                                                                 make_config: Callable[..., Config],
                                                                 bridges: list[Bridge]) -> None:
    yaml = YAML.split("channels:")[0] + 'channels:\n  - {platform: discord, where: "*", trigger: mention}\n'
    config = make_config(yaml, LLM_URL=fake_llm.url, DISCORD_API_URL=discord.api_url, DISCORD_BOT_TOKEN=discord.token)
    await discord.say(f"{MENTION} anyone in random?", channel=fk.RANDOM, gateway="lost")
    await discord.say(f"{MENTION} and in the thread?", channel=fk.THREAD, gateway="lost")
    await settled(await start(config, bridges))
    await reply(discord, fk.RANDOM, "You said: anyone in random?")
    await reply(discord, fk.THREAD, "You said: and in the thread?")
    read = {c.path for c in discord.calls_to("GET", "/messages")}
    assert read == {f"/channels/{cid}/messages" for cid in (fk.GENERAL, fk.HELP_DESK, fk.RANDOM, fk.TEAM_A,
                                                            fk.TEAM_B, fk.THREAD)}


async def test_a_message_during_the_shutdown_drain_is_answered_at_the_next_start(
        config: Config, discord: FakeDiscord, fake_llm: FakeOpenAI, bridges: list[Bridge]) -> None:
    fake_llm.hold = asyncio.Event()  # the first answer is in flight while the bridge stops
    first = await start(config, bridges)
    await discord.say("in flight", channel=fk.HELP_DESK)
    await until(lambda: fake_llm.requests)
    bridges.remove(first)
    stopping = asyncio.create_task(first.stop())
    await until(lambda: first.router is not None and not first.router.accepting)
    await discord.say("during the drain", channel=fk.HELP_DESK, author=fk.BOB)

    async def kept() -> bool:
        return "during the drain" in await stored_texts(first)

    await eventually(kept, "stored during the drain")
    fake_llm.hold.set()
    await stopping
    await reply(discord, fk.HELP_DESK, "You said: in flight")

    await settled(await start(config, bridges))
    await reply(discord, fk.HELP_DESK, "You said: during the drain")
    assert [user_turns(r)[-1] for r in fake_llm.requests] == ["in flight", "during the drain"]
