"""A :class:`discord.Message` translated into the core's :class:`~bridge.types.Incoming`: pure, no I/O.

The adapter decides the facts (where, who, addressed or not, direct or not); the router decides
what to do with them, so that every platform is answered by the same rules.

- Where: ``workspace`` is the guild id ("" for DMs); ``channel`` is the channel a rule's ``where``
  names — for a thread, its *parent* channel, so a rule for a channel covers its threads too;
  ``thread`` is the thread's own id, or the channel's: a channel is one session, each thread its own,
  and a DM channel (one per user) is that user's session.
- Addressed: the bot is mentioned (as a user, or through its own managed role, which Discord's
  autocomplete sometimes inserts), or the message replies to one of the bot's messages.
- Text: the bot's mention is removed; other mentions become readable ``@names``/``#names``.
- Ignored (``None``): the bot's own messages and system messages (joins, pins, thread starters...).
  Other bots and webhooks are delivered with ``is_bot=True`` so the router can count and drop them.
"""

from __future__ import annotations

import re

import discord

from bridge.types import Attachment, Author, Incoming, ThreadRef

PLATFORM = "discord"
MAX_FILES = 10  # files read from one message (Discord allows 10)
CONVERSATION_TYPES = (discord.MessageType.default, discord.MessageType.reply)

_USER = re.compile(r"<@!?(\d+)>([ \t]*)")
_ROLE = re.compile(r"<@&(\d+)>([ \t]*)")
_CHANNEL = re.compile(r"<#(\d+)>")
_EMOJI = re.compile(r"<a?:(\w+):\d+>")
_LEAD = re.compile(r"^[\s,:;]+")


def thread_ref(channel: discord.abc.Snowflake, guild: discord.Guild | None) -> ThreadRef:
    """The conversation a channel (or thread) is; see the module docstring."""
    workspace = str(guild.id) if guild is not None else ""
    if isinstance(channel, discord.Thread):
        return ThreadRef(PLATFORM, workspace, str(channel.parent_id), str(channel.id))
    return ThreadRef(PLATFORM, workspace, str(channel.id), str(channel.id))


def _is_bot_role(role: discord.Role, bot_id: int) -> bool:
    return role.tags is not None and role.tags.bot_id == bot_id


def addressed(message: discord.Message, bot_id: int) -> bool:
    """Whether the message mentions the bot or replies to one of its messages."""
    if any(user.id == bot_id for user in message.mentions):
        return True
    if any(_is_bot_role(role, bot_id) for role in message.role_mentions):
        return True
    ref = message.reference
    if ref is not None:
        target = ref.resolved or ref.cached_message
        if isinstance(target, discord.Message) and target.author.id == bot_id:
            return True
    return False


def readable_text(message: discord.Message, bot_id: int) -> str:
    """The message text as the model should read it: no bot mention, names instead of ids.

    ``"<@BOT>, summarise this for <@42>"`` becomes ``"summarise this for @Ann"``.
    """
    users = {user.id: user.display_name for user in message.mentions}
    guild = message.guild
    removed = False

    def user(m: re.Match[str]) -> str:
        nonlocal removed
        uid = int(m.group(1))
        if uid == bot_id:
            removed = True
            return ""
        return f"@{users.get(uid, 'unknown-user')}{m.group(2)}"

    def role(m: re.Match[str]) -> str:
        nonlocal removed
        found = guild.get_role(int(m.group(1))) if guild is not None else None
        if found is not None and _is_bot_role(found, bot_id):
            removed = True
            return ""
        return f"@{found.name if found is not None else 'unknown-role'}{m.group(2)}"

    def channel(m: re.Match[str]) -> str:
        found = guild.get_channel_or_thread(int(m.group(1))) if guild is not None else None
        return f"#{found.name}" if found is not None else m.group(0)

    text = _USER.sub(user, message.content)
    text = _ROLE.sub(role, text)
    text = _CHANNEL.sub(channel, text)
    text = _EMOJI.sub(r":\1:", text)
    if removed:  # "@bot, do this" / "@bot: do this" → "do this"
        text = _LEAD.sub("", text)
    return text.strip()


def attachments_of(message: discord.Message) -> tuple[Attachment, ...]:
    """The files attached to the message (``attachments[]``, on Discord's CDN); links in the text are not files."""
    return tuple(Attachment(a.filename[:200], a.url, max(a.size, 0), (a.content_type or "")[:100])
                 for a in message.attachments[:MAX_FILES])


def to_incoming(message: discord.Message, bot_id: int, *,
                channel: discord.abc.Snowflake | None = None) -> Incoming | None:
    """Translate one created message; ``None`` when it is not part of any conversation.

    ``channel`` overrides ``message.channel`` when the adapter had to look the channel up (a
    thread discord.py had not cached arrives as a bare ``PartialMessageable`` with no parent).
    """
    if message.type not in CONVERSATION_TYPES or message.author.id == bot_id:
        return None
    where = channel if channel is not None else message.channel
    author = message.author
    return Incoming(
        thread=thread_ref(where, message.guild),
        event_id=str(message.id),  # the message, not the delivery: a replay is the same id
        author=Author(str(author.id), author.display_name,
                      is_bot=author.bot or author.system or message.webhook_id is not None,
                      avatar=str(author.display_avatar.url)),
        text=readable_text(message, bot_id),
        mentioned=addressed(message, bot_id),
        direct=message.guild is None,
        in_thread=isinstance(where, discord.Thread),
        roles=tuple(str(r.id) for r in author.roles) if isinstance(author, discord.Member) else (),
        attachments=attachments_of(message),
        raw=message,
    )
