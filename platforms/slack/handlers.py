"""Slack event payloads → :class:`~bridge.types.Incoming`: pure functions, no I/O (table-tested).

The adapter resolves user names (``users.info``) first and passes them in; everything else is
decided here from the event dict alone:

- which events are messages at all (edits, deletions, joins and other subtypes are not);
- who wrote it (a person, another bot, or this app itself);
- where the conversation is: a channel thread (root ``ts``), a DM thread, or a DM itself;
- whether the bot was mentioned, and the text the model should read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.types import Attachment, Author, Incoming, ThreadRef

PLATFORM = "slack"

# Subtypes that are still someone writing a new message (bots are marked, and the router ignores
# them); every other subtype (message_changed, message_deleted, channel_join, ...) is not a message.
MESSAGE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message", "bot_message"})
EVENT_TYPES = frozenset({"message", "app_mention"})
MAX_FILES = 10  # files read from one message (Slack allows 10 per message)

_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")
_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<((?:https?|mailto|ftp|tel):[^|>]+)(?:\|([^>]*))?>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}

# The fields read here, and the types Slack sends them as: anything else is not a message for us
# (a list ``subtype``, a string ``bot_profile``, an object ``text`` would otherwise raise).
_REQUIRED_STR = ("type", "channel", "ts")
_OPTIONAL_STR = ("subtype", "thread_ts", "user", "text", "bot_id", "username", "channel_type", "team", "user_team")


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who this app is in the workspace (from ``auth.test``)."""

    user_id: str
    bot_id: str = ""


def mention_pattern(bot_user_id: str) -> re.Pattern[str]:
    return re.compile(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>")


def is_own(event: Mapping[str, Any], bot: BotIdentity) -> bool:
    if event.get("user") and event.get("user") == bot.user_id:
        return True
    return bool(bot.bot_id) and event.get("bot_id") == bot.bot_id


def is_from_bot(event: Mapping[str, Any]) -> bool:
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message" or bool(event.get("bot_profile"))


def well_formed(event: object) -> bool:
    """The event is an object whose fields this module reads have the types Slack sends."""
    return (isinstance(event, Mapping)
            and all(isinstance(event.get(key), str) for key in _REQUIRED_STR)
            and all(isinstance(event.get(key), str | None) for key in _OPTIONAL_STR)
            and isinstance(event.get("bot_profile"), Mapping | None))


def is_message(event: Mapping[str, Any]) -> bool:
    """A new message someone (or some bot) wrote: not an edit, deletion, join, hidden or system event."""
    return (well_formed(event)
            and event.get("type") in EVENT_TYPES
            and event.get("subtype") in MESSAGE_SUBTYPES
            and not event.get("hidden")
            and "edited" not in event
            and bool(event.get("channel")) and bool(event.get("ts")))


def user_ids_to_resolve(event: object, bot: BotIdentity) -> list[str]:
    """The author and the people mentioned without a label: their names come from ``users.info``."""
    if not isinstance(event, Mapping) or not is_message(event) or is_from_bot(event) or is_own(event, bot):
        return []
    ids: list[str] = []
    author = event.get("user")
    if isinstance(author, str) and author:
        ids.append(author)
    for m in _USER_MENTION.finditer(str(event.get("text") or "")):
        if m.group(1) != bot.user_id and not m.group(2) and m.group(1) not in ids:
            ids.append(m.group(1))
    return ids


def readable_text(text: str, bot: BotIdentity, names: Mapping[str, str]) -> str:
    """Slack's wire text as a person reads it: the bot's own mention removed, ``<@U…>`` → ``@Name``,
    ``<#C…|general>`` → ``#general``, ``<url|label>`` → ``label (url)``, entities unescaped."""
    text = mention_pattern(bot.user_id).sub("", text) if bot.user_id else text

    def user(m: re.Match[str]) -> str:
        label = m.group(2) or names.get(m.group(1)) or m.group(1)
        return f"@{label.lstrip('@')}"

    def link(m: re.Match[str]) -> str:
        url, label = m.group(1), m.group(2)
        if url.startswith("mailto:"):
            return label or url.removeprefix("mailto:")
        return f"{label} ({url})" if label and label != url else url

    text = _USER_MENTION.sub(user, text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _SPECIAL.sub(lambda m: f"@{m.group(1)}", text)
    text = _SUBTEAM.sub(lambda m: m.group(1) or "@team", text)
    text = _DATE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(link, text)
    # Slack escapes only &, <, > (and nothing else: html.unescape would also turn a typed
    # "&#60;" into "<"); one pass, so "&amp;lt;" stays the "&lt;" the user typed.
    text = _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)
    # Removing a mention leaves doubled or leading spaces: tidy each line, keep line breaks.
    return "\n".join(re.sub(r"[ \t]{2,}", " ", line).strip() for line in text.split("\n")).strip()


def attachments_of(event: Mapping[str, Any]) -> tuple[Attachment, ...]:
    """The files shared with a message (``files[]``): only Slack's own download URLs, never a link in the text.

    Files Slack hides (over the free plan's limit, deleted: ``tombstone``) or keeps elsewhere
    (``external``) have no download URL the bot token opens, and are left out.
    """
    files = event.get("files")
    if not isinstance(files, list):
        return ()
    out: list[Attachment] = []
    for f in files[:MAX_FILES]:
        if not isinstance(f, Mapping) or f.get("mode") in ("tombstone", "external", "hidden_by_limit"):
            continue
        url = f.get("url_private_download") or f.get("url_private")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            continue
        name = f.get("name") or f.get("title") or "file"
        size = f.get("size")
        out.append(Attachment(str(name)[:200], url, size if isinstance(size, int) and size > 0 else 0,
                              str(f.get("mimetype") or "")[:100]))
    return tuple(out)


def is_dm(event: Mapping[str, Any]) -> bool:
    channel_type = event.get("channel_type")
    if channel_type:
        return bool(channel_type == "im")
    return str(event.get("channel", "")).startswith("D")


def thread_of(team_id: str, event: Mapping[str, Any]) -> ThreadRef:
    """Channel messages: the thread root ``ts`` (a top-level message roots its own thread).
    DMs: top-level messages are one running conversation (``thread`` = the DM's channel id, answered
    top-level); a thread inside a DM is its own conversation, like in a channel."""
    channel = str(event["channel"])
    root = event.get("thread_ts")
    if is_dm(event) and not root:
        return ThreadRef(PLATFORM, team_id, channel, channel)
    return ThreadRef(PLATFORM, team_id, channel, str(root or event["ts"]))


def team_of(body: Mapping[str, Any]) -> str:
    event = body.get("event")
    candidates = [body.get("team_id")]
    if isinstance(event, Mapping):
        candidates += [event.get("team"), event.get("user_team")]
    return next((c for c in candidates if isinstance(c, str) and c), "")


def translate(body: Mapping[str, Any], bot: BotIdentity, names: Mapping[str, str]) -> Incoming | None:
    """One Events API body (``event_callback``) → an Incoming, or None when it is not a message.

    Bots (this app included) become ``Author(is_bot=True)`` so the router ignores them visibly.
    ``event_id`` is ``channel:ts``, the message's identity: a retry, a redelivery and the
    ``app_mention`` + ``message`` pair for one mention all get the same id.
    """
    event = body.get("event")
    if not isinstance(event, Mapping) or not is_message(event):
        return None
    channel, ts = str(event["channel"]), str(event["ts"])
    text = str(event.get("text") or "")
    if is_own(event, bot) or is_from_bot(event):
        author = Author(str(event.get("user") or event.get("bot_id") or "bot"),
                        str(event.get("username") or (event.get("bot_profile") or {}).get("name") or "bot"),
                        is_bot=True)
    else:
        user_id = str(event.get("user") or "")
        author = Author(user_id, names.get(user_id) or user_id)
    mentioned = event.get("type") == "app_mention" or bool(bot.user_id and mention_pattern(bot.user_id).search(text))
    root = event.get("thread_ts")
    return Incoming(
        thread=thread_of(team_of(body), event),
        event_id=f"{channel}:{ts}",
        author=author,
        text=readable_text(text, bot, names),
        mentioned=mentioned,
        direct=is_dm(event),
        in_thread=bool(root) and root != ts,
        attachments=attachments_of(event),
        raw=body,
    )


def translate_change(body: Mapping[str, Any], bot: BotIdentity, names: Mapping[str, str]) -> Incoming | None:
    """A person's message edited (``message_changed``) or deleted (``message_deleted``) → an Incoming
    with ``change`` set and the message's own ``event_id``; relayed copies follow it. Changes to
    bots' posts (the bridge's copies included) are None."""
    event = body.get("event")
    if not isinstance(event, Mapping) or event.get("type") != "message":
        return None
    subtype = event.get("subtype")
    if subtype not in ("message_changed", "message_deleted"):
        return None
    inner = event.get("message") if subtype == "message_changed" else event.get("previous_message")
    inner = inner if isinstance(inner, Mapping) else {}
    if is_own(inner, bot) or is_from_bot(inner):
        return None
    channel = event.get("channel")
    ts = inner.get("ts") or event.get("deleted_ts")
    if not isinstance(channel, str) or not isinstance(ts, str) or not channel or not ts:
        return None
    shape = {"channel": channel, "ts": ts, "channel_type": event.get("channel_type"),
             **({"thread_ts": inner["thread_ts"]} if isinstance(inner.get("thread_ts"), str) else {})}
    user = inner.get("user") if isinstance(inner.get("user"), str) else ""
    text = inner.get("text") if isinstance(inner.get("text"), str) else ""
    return Incoming(thread=thread_of(team_of(body), shape), event_id=f"{channel}:{ts}",
                    author=Author(str(user), names.get(str(user)) or str(user)),
                    text=readable_text(str(text), bot, names), direct=is_dm(shape),
                    change="edited" if subtype == "message_changed" else "deleted", raw=body)
