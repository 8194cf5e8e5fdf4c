"""Discord end to end: the bridge with the real adapter, discord.py unmodified, a loopback fake of Discord
(REST + gateway websocket) and the loopback OpenAI-compatible server. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from pydantic import SecretStr

from bridge.app import Bridge
from bridge.config import Config
from platforms.discord import DiscordPlatform, DiscordStartError
from tests.fakes import discord_server as fk
from tests.fakes.discord_server import FakeDiscord, Posted
from tests.fakes.openai_server import FakeOpenAI

YAML = f"""
storage: {{url: "sqlite:///bridge.db"}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0, timeout_s: 5}}
server: {{port: 0}}
platforms:
  discord:
    token: ${{DISCORD_BOT_TOKEN}}
    api_url: ${{DISCORD_API_URL}}
    edit_interval_s: 0.05
channels:
  - {{platform: discord, where: "{fk.HELP_DESK}", persona: rust-tutor, trigger: always}}
  - {{platform: discord, where: "{fk.GENERAL}", persona: assistant, trigger: mention}}
  - {{platform: discord, where: "{fk.TEAM_A}", persona: collaborator, trigger: always, share: team}}
  - {{platform: discord, where: "{fk.TEAM_B}", persona: collaborator, trigger: always, share: team}}
"""

MENTION = f"<@{fk.BOT_ID}>"
NO_PINGS: dict[str, list[str]] = {"parse": []}


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    yield server
    await server.stop()


@pytest.fixture
def config(fake_llm: FakeOpenAI, discord: FakeDiscord, make_config: Callable[..., Config]) -> Config:
    return make_config(YAML, LLM_URL=fake_llm.url, DISCORD_API_URL=discord.api_url, DISCORD_BOT_TOKEN=discord.token)


@pytest.fixture
async def bridge(config: Config) -> AsyncIterator[Bridge]:
    assert config.platforms.discord is not None
    # discord.py waits guild_ready_timeout after the last GUILD_CREATE before on_ready; 2 s by default.
    platform = DiscordPlatform(config.platforms.discord, rules=config.channels, guild_ready_timeout_s=0.05)
    b = Bridge(config, platforms={"discord": platform}, serve_http=False)
    await b.start()
    yield b
    await b.stop()


async def reply(discord: FakeDiscord, channel: int, text: str, timeout: float = 10) -> Posted:
    """Wait for the bot's message in ``channel`` that ends up reading ``text``."""
    await discord.wait_until(lambda: any(p.content == text for p in discord.messages_in(channel)), timeout)
    return next(p for p in discord.messages_in(channel) if p.content == text)


def user_turns(request: dict[str, object]) -> list[str]:
    messages = request["messages"]
    assert isinstance(messages, list)
    return [m["content"] for m in messages[1:]]


# ------------------------------------------------------------------------------------- conversations


async def test_mention_in_a_channel_is_answered_there(bridge: Bridge, discord: FakeDiscord,
                                                      fake_llm: FakeOpenAI) -> None:
    await discord.say("just chatting, nobody asked the bot")  # mention rule: ignored
    await discord.say(f"{MENTION} what is a lifetime? cc <@{fk.BOB}>")
    answer = await reply(discord, fk.GENERAL, "You said: what is a lifetime? cc @Bob")
    assert len(fake_llm.requests) == 1
    system = fake_llm.requests[0]["messages"][0]["content"]
    assert "helpful assistant talking with the user on discord" in system  # the channel's persona
    assert "Ali" not in system  # a display name anyone can set stays out of the system prompt
    assert answer.bodies[0]["allowed_mentions"] == NO_PINGS
    typing_call = next(i for i, c in enumerate(discord.calls) if c.path == f"/channels/{fk.GENERAL}/typing")
    post_call = next(i for i, c in enumerate(discord.calls) if c.method == "POST" and c.path.endswith("/messages"))
    assert typing_call < post_call, "the typing indicator shows while the model thinks"


async def test_always_channel_answers_everything_with_its_persona(bridge: Bridge, discord: FakeDiscord,
                                                                   fake_llm: FakeOpenAI) -> None:
    await discord.say("nobody has a rule here", channel=fk.RANDOM)
    await discord.say("why does the borrow checker complain?", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: why does the borrow checker complain?")
    await discord.say("and how do I fix it?", channel=fk.HELP_DESK, author=fk.BOB)
    await reply(discord, fk.HELP_DESK, "You said: and how do I fix it?")
    assert len(fake_llm.requests) == 2
    assert "Rust tutor" in fake_llm.requests[-1]["messages"][0]["content"]
    assert user_turns(fake_llm.requests[-1]) == ["why does the borrow checker complain?",
                                                 "You said: why does the borrow checker complain?",
                                                 "and how do I fix it?"]
    assert not discord.messages_in(fk.RANDOM)


async def test_thread_is_its_own_session(bridge: Bridge, discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    await discord.say(f"{MENTION} channel question")
    await reply(discord, fk.GENERAL, "You said: channel question")
    await discord.say(f"{MENTION} thread question", channel=fk.THREAD)
    await reply(discord, fk.THREAD, "You said: thread question")
    assert user_turns(fake_llm.requests[-1]) == ["thread question"]
    # Once the bot is in a thread, the conversation there continues without a mention.
    await discord.say("a follow-up", channel=fk.THREAD, author=fk.BOB)
    await reply(discord, fk.THREAD, "You said: a follow-up")
    assert user_turns(fake_llm.requests[-1]) == ["thread question", "You said: thread question", "a follow-up"]
    await discord.say(f"{MENTION} back in the channel")
    await reply(discord, fk.GENERAL, "You said: back in the channel")
    assert user_turns(fake_llm.requests[-1]) == ["channel question", "You said: channel question",
                                                 "back in the channel"]


async def test_thread_created_while_away_follows_its_parent_channels_rule(bridge: Bridge,
                                                                           discord: FakeDiscord) -> None:
    discord.add_thread(3002, "new thread", parent_id=fk.HELP_DESK)  # not in discord.py's cache
    await discord.say("a question in a brand-new thread", channel=3002)  # always rule of the parent
    await reply(discord, 3002, "You said: a question in a brand-new thread")
    assert discord.calls_to("GET", "/channels/3002"), "the thread's parent was looked up"


async def test_direct_message_is_answered_without_mention(bridge: Bridge, discord: FakeDiscord,
                                                          fake_llm: FakeOpenAI) -> None:
    discord.add_dm(7001, fk.BOB)
    discord.add_dm(7002, fk.CAROL)
    await discord.say("hello in private", channel=7001, author=fk.BOB)
    await reply(discord, 7001, "You said: hello in private")
    await discord.say("hello from carol", channel=7002, author=fk.CAROL)
    await reply(discord, 7002, "You said: hello from carol")
    assert user_turns(fake_llm.requests[-1]) == ["hello from carol"], "one session per user"


async def test_reply_to_the_bot_counts_as_a_mention(bridge: Bridge, discord: FakeDiscord) -> None:
    await discord.say(f"{MENTION} first")
    answer = await reply(discord, fk.GENERAL, "You said: first")
    bots_message = discord.make_message(answer.content, author=fk.BOT_ID)
    bots_message["id"] = str(answer.id)
    await discord.say("tell me more", reply_to=bots_message)
    await reply(discord, fk.GENERAL, "You said: tell me more")


async def test_shared_channels_show_who_said_what(bridge: Bridge, discord: FakeDiscord,
                                                  fake_llm: FakeOpenAI) -> None:
    await discord.say("we should ship on Friday", channel=fk.TEAM_A)
    await reply(discord, fk.TEAM_A, "You said: Ali (mod) (Discord): we should ship on Friday")
    await discord.say(f"I'd rather wait, right <@{fk.ALICE}>?", channel=fk.TEAM_B, author=fk.BOB)
    await reply(discord, fk.TEAM_B, "You said: Bob (Discord): I'd rather wait, right @Ali (mod)?")
    assert user_turns(fake_llm.requests[-1])[::2] == ["Ali (mod) (Discord): we should ship on Friday",
                                                      "Bob (Discord): I'd rather wait, right @Ali (mod)?"]


async def test_commands_after_the_mention(bridge: Bridge, discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    await discord.say(f"{MENTION} remember 42")
    await reply(discord, fk.GENERAL, "You said: remember 42")
    await discord.say(f"{MENTION} /reset")
    await discord.wait_until(lambda: any("forgotten" in p.content for p in discord.messages_in(fk.GENERAL)))
    await discord.say(f"{MENTION} what number?")
    await reply(discord, fk.GENERAL, "You said: what number?")
    assert user_turns(fake_llm.requests[-1]) == ["what number?"]


# ------------------------------------------------------------------------------------------ ignoring


async def test_bots_system_messages_edits_and_own_messages_are_ignored(bridge: Bridge, discord: FakeDiscord,
                                                                 fake_llm: FakeOpenAI) -> None:
    await discord.say(f"{MENTION} I am another bot", channel=fk.HELP_DESK, author=fk.OTHER_BOT)
    await discord.say("I am a webhook", channel=fk.HELP_DESK, webhook_id=4242)
    await discord.say("", channel=fk.HELP_DESK, kind=7)  # "Alice joined the server"
    edited = discord.make_message(f"{MENTION} an edit of an old message", channel=fk.HELP_DESK)
    edited["edited_timestamp"] = edited["timestamp"]
    await discord.dispatch("MESSAGE_UPDATE", edited)
    await discord.say("a person", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: a person")
    # The bot's own answer came back over the gateway in an always channel: it must not answer itself.
    await discord.say("another person", channel=fk.HELP_DESK, author=fk.BOB)
    await reply(discord, fk.HELP_DESK, "You said: another person")
    assert [user_turns(r)[-1] for r in fake_llm.requests] == ["a person", "another person"]
    assert len(discord.messages_in(fk.HELP_DESK)) == 2


async def test_replayed_message_is_answered_once(bridge: Bridge, discord: FakeDiscord,
                                                 fake_llm: FakeOpenAI) -> None:
    original = await discord.say("answer me once", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: answer me once")
    # The gateway drops the connection; discord.py resumes the session at resume_gateway_url and the
    # gateway replays events, some of them already delivered (the question and the bot's answer).
    await discord.reconnect(replay_last=3)
    assert discord.resumes[-1]["session_id"] == "session-1"
    assert len(discord.identifies) == 1, "resumed, not a new session"
    await discord.dispatch("MESSAGE_CREATE", original)  # and once more, simply twice
    await discord.say("a new question", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: a new question")
    assert [user_turns(r)[-1] for r in fake_llm.requests] == ["answer me once", "a new question"]
    assert len(discord.messages_in(fk.HELP_DESK)) == 2


# ------------------------------------------------------------------------------------------- replies


async def test_long_reply_is_split_into_valid_messages(bridge: Bridge, discord: FakeDiscord,
                                                       fake_llm: FakeOpenAI) -> None:
    code = [f"    total += compute_value_for_row({i:03d}, factor=3)  # row {i}" for i in range(90)]
    text = ("Here is the whole script you asked for, with every row spelled out.\n\n```python\n"
            "def main() -> None:\n    total = 0\n" + "\n".join(code) + "\n    print(total)\n```\n\n"
            + "That is all: run it with python3 and it prints the total. " * 8)
    assert len(text) > 5000
    fake_llm.reply = lambda _: text
    fake_llm.chunk_size = 250
    await discord.say("write the long script", channel=fk.HELP_DESK)
    await discord.wait_until(lambda: any("prints the total" in p.content for p in discord.messages_in(fk.HELP_DESK)))
    parts = [p.content for p in discord.messages_in(fk.HELP_DESK)]
    assert len(parts) >= 3
    for posted in discord.messages_in(fk.HELP_DESK):
        assert all(len(h) <= 2000 for h in posted.history)
    for part in parts:
        assert part.count("```") % 2 == 0, f"unbalanced fence in:\n{part[:200]}"
    joined = "\n".join(parts)
    positions = [joined.index(line) for line in code]
    assert positions == sorted(positions), "every code line, in order, nothing dropped"
    assert joined.startswith("Here is the whole script")


async def test_mass_mentions_in_model_output_ping_nobody(bridge: Bridge, discord: FakeDiscord,
                                                         fake_llm: FakeOpenAI) -> None:
    text = f"@everyone @here <@&{fk.MODS_ROLE}> <@{fk.BOB}> look at this"
    fake_llm.reply = lambda _: text
    await discord.say("say something loud", channel=fk.HELP_DESK)
    answer = await reply(discord, fk.HELP_DESK, text)
    bodies = [c.body for c in discord.calls
              if c.method != "GET" and c.path.startswith(f"/channels/{fk.HELP_DESK}/messages")]
    assert bodies
    assert all(b["allowed_mentions"] == NO_PINGS for b in bodies)
    assert answer.bodies[0]["allowed_mentions"] == NO_PINGS


async def test_link_previews_are_suppressed_on_every_post_and_edit(bridge: Bridge, discord: FakeDiscord,
                                                                   fake_llm: FakeOpenAI) -> None:
    """An injected prompt must not leak context through a link preview (SUPPRESS_EMBEDS, flag 4)."""
    text = "Here is the secret, as a link: https://attacker.example/?q=context " * 3
    fake_llm.reply = lambda _: text.strip()
    fake_llm.chunk_size = 20
    fake_llm.chunk_delay = 0.01
    await discord.say("summarise", channel=fk.HELP_DESK)
    answer = await reply(discord, fk.HELP_DESK, text.strip())
    writes = [c for c in discord.calls if c.path.startswith(f"/channels/{fk.HELP_DESK}/messages")
              and c.method in ("POST", "PATCH")]
    assert any(c.method == "PATCH" for c in writes), "the reply was streamed: posted, then edited"
    assert all(c.body.get("flags", 0) & 4 for c in writes), [c.body.get("flags") for c in writes]
    assert answer.bodies[0]["flags"] & 4


async def test_streamed_reply_is_posted_early_then_edited(bridge: Bridge, discord: FakeDiscord,
                                                          fake_llm: FakeOpenAI) -> None:
    text = "Ownership means each value has one owner; when the owner goes out of scope the value is dropped. " * 3
    fake_llm.reply = lambda _: text.strip()
    fake_llm.chunk_size = 10
    fake_llm.chunk_delay = 0.02
    await discord.say("explain ownership", channel=fk.HELP_DESK)
    answer = await reply(discord, fk.HELP_DESK, text.strip())
    first = answer.history[0]
    assert len(first) < len(text.strip()), "posted before the model finished"
    assert text.startswith(first)
    assert len(answer.history) >= 3, "then edited in place as the text grew"
    patches = discord.calls_to("PATCH", f"/channels/{fk.HELP_DESK}/messages/{answer.id}")
    assert patches
    assert all(c.body["allowed_mentions"] == NO_PINGS for c in patches)
    assert len(discord.messages_in(fk.HELP_DESK)) == 1
    assert fk.HELP_DESK in discord.typing


async def test_rate_limits_are_waited_out(bridge: Bridge, discord: FakeDiscord, fake_llm: FakeOpenAI) -> None:
    fake_llm.chunk_delay = 0.01
    discord.fail_next("POST /messages", 429, retry_after=0.05)
    discord.fail_next("PATCH /messages", 429, retry_after=0.05)
    await discord.say("a question that gets a somewhat longer streamed answer", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: a question that gets a somewhat longer streamed answer")
    assert [c.method for c in discord.calls_to("POST", "/messages")] == ["POST", "POST"], "429, then retried"
    assert len(discord.messages_in(fk.HELP_DESK)) == 1


# -------------------------------------------------------------------------------------------- errors


async def test_llm_failure_gives_a_short_plain_message(bridge: Bridge, discord: FakeDiscord,
                                                       fake_llm: FakeOpenAI) -> None:
    fake_llm.fail_next(500, "boom: upstream exploded, key sk-secret-123")
    await discord.say("are you there?", channel=fk.HELP_DESK)
    await discord.wait_until(lambda: any("⚠️" in p.content for p in discord.messages_in(fk.HELP_DESK)))
    [answer] = discord.messages_in(fk.HELP_DESK)
    assert len(answer.content) < 300
    assert "sk-secret" not in answer.content
    assert "Traceback" not in answer.content


async def test_discord_failure_is_recorded_and_the_next_message_works(bridge: Bridge, discord: FakeDiscord,
                                                                      fake_llm: FakeOpenAI) -> None:
    assert bridge.store is not None
    discord.fail_next("POST /messages", 403)
    await discord.say("first", channel=fk.HELP_DESK)
    await discord.wait_until(lambda: len(fake_llm.requests) == 1 and discord.calls_to("POST", "/messages"))
    await discord.say("second", channel=fk.HELP_DESK)
    await reply(discord, fk.HELP_DESK, "You said: second")
    [summary] = await bridge.store.sessions()
    statuses = {m.content: m.status for m in await bridge.store.messages(summary.session.id)}
    assert statuses["first"] == "failed"


# --------------------------------------------------------------------------------- start, health, stop


async def test_started_through_entry_points_with_health(config: Config, discord: FakeDiscord,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    b = Bridge(config)  # platforms found through the bridge.platforms entry points
    await b.start()
    try:
        assert b.server is not None
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{b.server.port}/healthz") as resp:
            health = await resp.json()
        status = health["platforms"]["discord"]
        assert status["ok"] is True
        assert status["user"] == "bridge-bot"
        assert isinstance(status["latency_ms"], int)
        assert discord.calls_to("GET", "/gateway/bot"), "the gateway address came from api_url"
        assert discord.compressions == ["zlib-stream"] or discord.compressions == ["zstd-stream"]
        await discord.say(f"{MENTION} hello")
        await reply(discord, fk.GENERAL, "You said: hello")
    finally:
        await b.stop()
    assert discord.token not in caplog.text
    assert not [c for c in discord.connections if not c.ws.closed]


async def test_refused_token_stops_start_with_a_clear_message(config: Config, discord: FakeDiscord,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    assert config.platforms.discord is not None
    settings = config.platforms.discord.model_copy(update={"token": SecretStr("wrong-token-value-123")})
    platform = DiscordPlatform(settings)
    with pytest.raises(DiscordStartError, match=r"platforms\.discord\.token") as err:
        await platform.start(_never)
    assert "wrong-token-value-123" not in str(err.value)
    assert "wrong-token-value-123" not in caplog.text
    await platform.stop()
    assert platform.status()["ok"] is False


async def test_unreachable_api_url_stops_start_with_a_clear_message(config: Config) -> None:
    assert config.platforms.discord is not None
    settings = config.platforms.discord.model_copy(update={"api_url": "http://127.0.0.1:9/api/v10"})
    platform = DiscordPlatform(settings)
    with pytest.raises(DiscordStartError, match=r"platforms\.discord\.api_url: cannot log in at http://127\.0\.0\.1:9"):
        await platform.start(_never)
    await platform.stop()


async def test_missing_message_content_intent_is_named(config: Config, discord: FakeDiscord) -> None:
    assert config.platforms.discord is not None
    discord.message_content_enabled = False
    platform = DiscordPlatform(config.platforms.discord, guild_ready_timeout_s=0.05)
    with pytest.raises(DiscordStartError, match="MESSAGE CONTENT INTENT"):
        await platform.start(_never)
    await platform.stop()


async def _never(_: object) -> bool:
    raise AssertionError("no message was expected")

