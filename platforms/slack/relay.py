"""Relayed copies on Slack: a person's message posted under their name and icon.

``chat:write.customize`` lets the app post with ``username``/``icon_url``; without it Slack would
show the app's own name, so the copy is headed with the author's name in bold instead. Every copy
carries the same message metadata as a reply (``bridge_reply``, the copy's key, part 0), so a copy
posted just before a crash is found in the thread and not posted twice. Slack shows copies in one
thread per share in each channel (the core chooses it: ``threads_copies``).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.relay.copies import Copy
from bridge.types import Outgoing
from platforms.slack.delivery import REPLY_EVENT, find_posted, patience
from platforms.slack.formatting import neutralise
from platforms.slack.handlers import BotIdentity

log = logging.getLogger(__name__)

CUSTOMIZE_SCOPE = "chat:write.customize"
RELAY_DEADLINE_S = 60.0   # 429s (about one post a second per channel) are waited out this long
MAX_NAME = 80             # Slack cuts longer usernames


def scopes_of(headers: Any) -> set[str]:
    """The bot token's scopes, from auth.test's ``X-OAuth-Scopes`` header."""
    for key, value in dict(headers or {}).items():
        if str(key).lower() == "x-oauth-scopes":
            text = value[0] if isinstance(value, list) else value
            return {s.strip() for s in str(text).split(",") if s.strip()}
    return set()


def shown(copy: Copy, customize: bool, limit: int) -> str:
    """The copy's text on Slack: the body under the author's own name, else headed with it."""
    text = copy.body if customize and copy.as_author else copy.text
    if customize and copy.as_author and copy.platform:
        text = f"{text}\n_({copy.platform})_"
    return neutralise(text if len(text) <= limit else text[:limit - 1] + "…")


async def change_copy(client: AsyncWebClient, copy: Copy, out: Outgoing, *, deleted: bool, customize: bool,
                      limit: int) -> None:
    """Edit (or delete) the messages of a copy posted before; one already gone is no failure."""
    with patience(RELAY_DEADLINE_S):
        for ts in out.posted:
            try:
                if deleted:
                    await client.chat_delete(channel=out.thread.channel, ts=ts)
                else:
                    await client.chat_update(channel=out.thread.channel, ts=ts,
                                             markdown_text=shown(copy, customize, limit))
            except SlackApiError as exc:
                if (exc.response.get("error") if exc.response is not None else "") != "message_not_found":
                    raise


async def post_copy(client: AsyncWebClient, copy: Copy, out: Outgoing, *, bot: BotIdentity, customize: bool,
                    limit: int) -> None:
    """Post one copy once: recorded through ``out.record``; an earlier unrecorded post is adopted."""
    if out.posted:
        return
    thread = out.thread
    thread_ts = None if thread.thread == thread.channel else thread.thread
    with patience(RELAY_DEADLINE_S):
        if out.recovering:
            found = await find_posted(client, thread.channel, thread_ts, after="", key=out.key, bot=bot)
            if 0 in found:
                log.info("slack: copy %s was posted before a restart", out.key)
                await out.record([found[0]])
                return
        as_author = customize and copy.as_author
        extra: dict[str, Any] = {"username": copy.name[:MAX_NAME] or "someone"} if as_author else {}
        if as_author and copy.avatar:
            extra["icon_url"] = copy.avatar
        resp = await client.chat_postMessage(
            channel=thread.channel, thread_ts=thread_ts, markdown_text=shown(copy, customize, limit),
            unfurl_links=False,
            unfurl_media=False, metadata={"event_type": REPLY_EVENT, "event_payload": {"key": out.key, "part": 0}},
            **extra)
    await out.record([str(resp["ts"])])
