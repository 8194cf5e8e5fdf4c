"""Which messages the gateway never delivered: Discord does not redeliver what a bot missed.

After a start or a reconnect the adapter reads the recent history of the channels its rules name
and hands what it finds to the inbox like any gateway message (the core's dedupe makes messages it
already stored no-ops). The window is bounded: newer than the last message this process saw there
(or than ``catchup_max_age_s`` ago), at most ``catchup_max_messages`` per channel.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from fnmatch import fnmatchcase

import discord

from bridge.config import ChannelRule

MAX_CHANNELS = 50  # channels (and active threads under them) read per catch-up

Readable = discord.TextChannel | discord.Thread


def snowflake_at(seconds: float) -> int:
    """The lowest message id Discord could have given at a Unix time."""
    return discord.utils.time_snowflake(datetime.fromtimestamp(seconds, UTC))


def oldest_id(max_age_s: float) -> int:
    return snowflake_at(time.time() - max_age_s)


def _readable(channel: discord.abc.GuildChannel | discord.Thread) -> bool:
    me = channel.guild.me
    if me is None:  # not known: reading will tell
        return True
    perms = channel.permissions_for(me)
    return perms.view_channel and perms.read_message_history


def channels(client: discord.Client, rules: Sequence[ChannelRule]) -> list[Readable]:
    """The channels Discord rules bind (an id, or every visible text channel a pattern matches),
    then the active threads under them; at most :data:`MAX_CHANNELS`. DMs are not listed."""
    wheres = [r.where for r in rules if r.platform == "discord"]
    found: dict[int, Readable] = {}

    def add(candidates: Iterable[Readable]) -> None:
        for channel in candidates:
            if len(found) < MAX_CHANNELS and channel.id not in found and _readable(channel):
                found[channel.id] = channel

    parents: set[int] = set()  # a forum channel has no history of its own, only its threads
    for where in wheres:
        if where.isdigit():
            parents.add(int(where))
            named = client.get_channel(int(where))
            add([named] if isinstance(named, Readable) else [])
        else:
            add(c for g in client.guilds for c in g.text_channels if fnmatchcase(str(c.id), where))
    parents.update(found)
    add(t for g in client.guilds for t in g.threads if t.parent_id in parents)
    return list(found.values())


async def missed(channel: Readable, *, after: int, limit: int) -> list[discord.Message]:
    """The newest ``limit`` messages after id ``after``, oldest first."""
    newest_first = [m async for m in channel.history(limit=limit, after=discord.Object(after), oldest_first=False)]
    return newest_first[::-1]


def after_last_reply(messages: list[discord.Message], bot_id: int, before: int) -> list[discord.Message]:
    """The messages after the bot's newest one older than ``before`` (this process's start).

    At a start nothing tells which messages an earlier run saw; the bot's own last message does:
    it was running then. Without this, thread chatter that came before the bot was first asked
    there would be answered now that the thread is known.
    """
    last = next((i for i in range(len(messages) - 1, -1, -1)
                 if messages[i].author.id == bot_id and messages[i].id < before), -1)
    return messages[last + 1:]
