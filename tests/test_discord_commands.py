"""Discord application commands end to end: discord.py's CommandTree in the real adapter, the loopback
Discord (command registration, INTERACTION_CREATE over the gateway, the interaction callback and the
follow-up webhook) and the loopback OpenAI server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.discord import DiscordPlatform
from platforms.discord.commands import NOT_ANSWERED
from tests.fakes import discord_server as fk
from tests.fakes.discord_server import FakeDiscord, Interaction
from tests.fakes.openai_server import FakeOpenAI
from tests.test_discord import MENTION, YAML, discord, reply
from tests.waiting import until, until_async

__all__ = ["discord"]  # the fixture shared with tests/test_discord.py

COMMANDS = {"ask", "reset", "persona", "personas", "usage", "help"}
DEFERRED = 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE


Start = Callable[..., Awaitable[Bridge]]


@pytest.fixture
async def start(fake_llm: FakeOpenAI, discord: FakeDiscord,
                make_config: Callable[..., Config]) -> AsyncIterator[Start]:
    bridges: list[Bridge] = []

    async def start_bridge(yaml: str = YAML) -> Bridge:
        config = make_config(yaml, LLM_URL=fake_llm.url, DISCORD_API_URL=discord.api_url,
                             DISCORD_BOT_TOKEN=discord.token)
        assert config.platforms.discord is not None
        platform = DiscordPlatform(config.platforms.discord, rules=config.channels, guild_ready_timeout_s=0.05,
                                   personas_dir=config.personas_dir)
        bridge = Bridge(config, platforms={"discord": platform}, serve_http=False)
        bridges.append(bridge)
        await bridge.start()
        return bridge

    yield start_bridge
    for bridge in bridges:
        await bridge.stop()


def response(discord: FakeDiscord, interaction: Interaction) -> str:
    """What the interaction's own response shows now ("" before it has one)."""
    if interaction.original is None:
        return ""
    return discord.posted[interaction.original].content


async def test_commands_are_registered_in_the_bots_guilds(start: Start,
                                                          discord: FakeDiscord) -> None:
    await start()
    registered = {c["name"]: c for c in discord.commands[fk.GUILD_ID]}
    assert set(registered) == COMMANDS
    [name] = registered["persona"]["options"]
    assert name["autocomplete"] is True, "persona names are completed"
    assert registered["ask"]["options"][0]["required"] is True


async def test_ask_is_deferred_at_once_then_answered_as_the_interactions_response(
        start: Start, discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    await start()
    fake_llm.hold = asyncio.Event()  # the model takes its time
    fake_llm.chunk_delay = 0.02
    asked = await discord.interact("ask", {"question": "what is a lifetime?"})
    await until(lambda: asked.callbacks)
    when, body = asked.callbacks[0]
    assert body["type"] == DEFERRED, "acknowledged before the model answered"
    assert when - asked.sent_at < 3.0
    assert response(discord, asked) == ""
    fake_llm.hold.set()
    await until(lambda: response(discord, asked) == "You said: what is a lifetime?")
    assert not discord.calls_to("POST", f"/channels/{fk.GENERAL}/messages"), "the response, not a channel post"
    assert discord.posted[asked.original or 0].bodies[-1]["allowed_mentions"] == {"parse": []}

    await discord.say(f"{MENTION} and a borrow?")  # a mention continues the channel's conversation
    await reply(discord, fk.GENERAL, "You said: and a borrow?")
    turns = [m["content"] for m in fake_llm.requests[-1]["messages"][1:]]
    assert turns == ["what is a lifetime?", "You said: what is a lifetime?", "and a borrow?"]


async def test_persona_completes_names_and_switches(start: Start,
                                                    discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    await start()
    typed = await discord.autocomplete("persona", {"name": "RU"})
    await until(lambda: typed.callbacks)
    assert [c["value"] for c in typed.choices] == ["rust-tutor"]
    switched = await discord.interact("persona", {"name": "rust-tutor"})
    await until(lambda: "rust-tutor" in response(discord, switched))
    asked = await discord.interact("ask", {"question": "why?"})
    await until(lambda: response(discord, asked) == "You said: why?")
    assert "Rust tutor" in fake_llm.requests[-1]["messages"][0]["content"]
    helped = await discord.interact("help")
    await until(lambda: "/persona" in response(discord, helped))
    assert response(discord, helped).startswith("Learn Rust"), "the persona's greeting first"


async def test_a_channel_without_a_rule_gets_a_plain_sentence(start: Start,
                                                              discord: FakeDiscord,
                                                              fake_llm: FakeOpenAI) -> None:
    await start()
    asked = await discord.interact("ask", {"question": "hello?"}, channel=fk.RANDOM)
    await until(lambda: response(discord, asked) == NOT_ANSWERED)
    assert fake_llm.requests == [], "nothing sent to the model, as for a mention there"


async def test_refused_person_is_told_like_after_a_mention(start: Start,
                                                           discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    only_bob = YAML.replace(f'where: "{fk.GENERAL}", persona: assistant, trigger: mention}}',
                            f'where: "{fk.GENERAL}", persona: assistant, trigger: mention, '
                            f'allow: {{users: ["{fk.BOB}"]}}, refusal_message: "Not for you, sorry."}}')
    assert only_bob != YAML
    await start(only_bob)
    asked = await discord.interact("ask", {"question": "hello?"})
    await until(lambda: response(discord, asked) == "Not for you, sorry.")
    assert fake_llm.requests == []


async def test_long_answer_continues_in_follow_ups(start: Start,
                                                   discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    await start()
    answer = "\n\n".join(f"Paragraph {i}: " + "ownership moves, borrows lend. " * 12 for i in range(12))
    assert len(answer) > 4000
    fake_llm.reply = lambda _: answer
    fake_llm.chunk_size = 300
    asked = await discord.interact("ask", {"question": "tell me everything"})
    await until(lambda: len(asked.followups) >= 2
                and "\n\n".join(discord.posted[m].content for m in [asked.original or 0, *asked.followups])
                == answer)
    assert all(len(discord.posted[m].content) <= 2000 for m in [asked.original or 0, *asked.followups])


async def test_commands_off(start: Start, discord: FakeDiscord) -> None:
    await start(YAML.replace("    edit_interval_s: 0.05\n", "    edit_interval_s: 0.05\n    commands: false\n"))
    await discord.say(f"{MENTION} still there?")
    await reply(discord, fk.GENERAL, "You said: still there?")
    assert discord.commands == {}, "nothing registered"


# ------------------------------------------------------------------------------ feedback


async def test_feedback_buttons_under_mention_and_command_answers(start: Start, discord: FakeDiscord) -> None:
    bridge = await start(YAML.replace("    edit_interval_s: 0.05\n", "    edit_interval_s: 0.05\n    feedback: true\n"))
    await discord.say(f"{MENTION} rate this")
    answer = await reply(discord, fk.GENERAL, "You said: rate this")
    await until(lambda: discord.buttons_under(answer.id))
    up, down = discord.buttons_under(answer.id)
    assert bridge.store is not None
    store = bridge.store

    async def report() -> list[tuple[str, int, int]]:
        return [(line.persona, line.up, line.down) for line in await store.feedback_report(0)]

    clicked = await discord.click(answer.id, up)
    await until(lambda: clicked.callbacks)
    assert clicked.callbacks[0][1]["type"] == 6, "acknowledged without changing the message"
    await until_async(lambda: _equals(report, [("assistant", 1, 0)]))
    await discord.click(answer.id, down)  # the same person changes their mind
    await until_async(lambda: _equals(report, [("assistant", 0, 1)]))
    await discord.click(answer.id, up, author=fk.BOB)
    await until_async(lambda: _equals(report, [("assistant", 1, 1)]))

    asked = await discord.interact("ask", {"question": "and this?"})
    await until(lambda: asked.original is not None and discord.buttons_under(asked.original))
    command = await discord.interact("personas")
    await until(lambda: "rust-tutor" in response(discord, command))
    assert command.original is not None
    assert discord.buttons_under(command.original) == [], "a command's confirmation is not rated"


async def _equals(report: Callable[[], Awaitable[list[tuple[str, int, int]]]],
                  want: list[tuple[str, int, int]]) -> bool:
    return await report() == want
