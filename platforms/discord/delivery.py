"""Posting a reply exactly once, even across a crash between Discord's answer and the store's record.

Two of Discord's own tools, no state of ours:

- Every post carries a nonce made from the reply's key and the part's index, with
  ``enforce_nonce`` (discord.py sends it with every nonce). Within Discord's nonce window (a few
  minutes) repeating the post returns the message already created instead of a second one.
- The first part is a *reply* to the message it answers. Discord keeps that reference for good
  (it does not keep nonces: history reads do not show them), so a recovering attempt can find a
  first part posted long ago but never recorded: the bot's message after the question that
  replies to it.
"""

from __future__ import annotations

import hashlib

import discord
from discord.http import handle_message_parameters

from platforms.discord.client import NO_PINGS

NONCE_CHARS = 24  # Discord accepts at most 25
# Every message after the question is searched for an unrecorded first part, 100 per request: in a
# busy channel the answer may come hundreds of messages later (only recovering replies search).
LOOKUP_LIMIT: int | None = None


def nonce_for(key: str, part: int) -> str:
    """The same short text for the same part of the same reply, in every process."""
    return hashlib.blake2b(f"{key}#{part}".encode(), digest_size=NONCE_CHARS // 2).hexdigest()


async def find_first_part(channel: discord.PartialMessageable, answers: int, bot_id: int) -> str | None:
    """The id of the bot's reply to message ``answers``, if an earlier attempt posted one."""
    async for message in channel.history(after=discord.Object(answers), limit=LOOKUP_LIMIT, oldest_first=True):
        ref = message.reference
        if message.author.id == bot_id and ref is not None and ref.message_id == answers:
            return str(message.id)
    return None


async def post_part(channel: discord.PartialMessageable, text: str, *, key: str, part: int,
                    answers: int | None) -> str:
    """Post one part; when Discord hands back an earlier attempt's message instead, make it read ``text``."""
    nonce = nonce_for(key, part)
    if part == 0 and answers is not None:
        reference = channel.get_partial_message(answers).to_reference(fail_if_not_exists=False)
        message = await channel.send(text, allowed_mentions=NO_PINGS, nonce=nonce, reference=reference,
                                     suppress_embeds=True)
    else:
        message = await channel.send(text, allowed_mentions=NO_PINGS, nonce=nonce, suppress_embeds=True)
    if message.content != text:  # the nonce matched: this is what the earlier attempt had shown
        await message.edit(content=text, allowed_mentions=NO_PINGS, suppress=True)
    return str(message.id)


async def edit_part(channel: discord.PartialMessageable, message_id: int, text: str) -> None:
    """Edit a message known only by id, keeping link previews off (``PartialMessage.edit`` cannot
    set flags; this is what ``Message.edit(suppress=True)`` sends)."""
    flags = discord.MessageFlags(suppress_embeds=True)
    with handle_message_parameters(content=text, flags=flags, allowed_mentions=NO_PINGS) as params:
        await channel._state.http.edit_message(channel.id, message_id, params=params)
