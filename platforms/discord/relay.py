"""Relayed copies on Discord: a person's message posted through a channel webhook, under their
name and avatar.

- **Where.** One webhook per channel, made by the bot (Manage Webhooks) and found again by its
  name; a thread's copies go through its parent channel's webhook. Without the permission the copy
  is the bot's own post, headed with the author's name in bold.
- **api_url.** discord.py executes webhooks through its own adapter, which builds URLs from the
  library's default base, not from the bot client's: :class:`RoutedWebhookAdapter` sends them to
  ``api_url`` too (only for the calls made here, through a context variable).
- **Once.** A webhook execution takes no nonce; a copy tried before is looked for in the channel's
  history (the webhook's message with the same text, since the copy was made) before posting again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import discord
from discord.http import Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from bridge.llm.chunking import split_message
from bridge.relay.copies import Copy
from bridge.types import Outgoing
from platforms.discord.catchup import snowflake_at
from platforms.discord.client import NO_PINGS
from platforms.discord.delivery import post_part

log = logging.getLogger(__name__)

WEBHOOK_NAME = "bridge relay"
MESSAGE_LIMIT = 2000
LOOKUP_LIMIT = 200        # messages read back, newest copies first, when a copy may have been posted
LOOKBACK_S = 60.0         # the lookup starts this long before the copy was made (clock skew)
THREAD_TYPES = (10, 11, 12)
# Discord refuses these in a webhook's username (and "everyone"/"here" as the whole name).
_FORBIDDEN = re.compile(r"discord|clyde|```|[@#:]", re.IGNORECASE)


class RoutedWebhookAdapter(AsyncWebhookAdapter):
    """discord.py's webhook adapter, sending its requests to ``api_url`` instead of discord.com."""

    def __init__(self, api_url: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # discord.py leaves it unannotated
        self.api_url = api_url.rstrip("/")

    async def request(self, route: Route, *args: Any, **kwargs: Any) -> Any:
        if self.api_url != Route.BASE and route.url.startswith(Route.BASE):
            route.url = self.api_url + route.url[len(Route.BASE):]
        return await super().request(route, *args, **kwargs)


@contextmanager
def routed(adapter: AsyncWebhookAdapter) -> Iterator[None]:
    token = async_context.set(adapter)
    try:
        yield
    finally:
        async_context.reset(token)


def webhook_name(name: str) -> str:
    """A username Discord accepts (1–80 characters, none of its reserved words)."""
    clean = _FORBIDDEN.sub("", name).strip()[:80]
    return clean if clean and clean.lower() not in ("everyone", "here") else "someone"


class Relayer:
    """Posts copies for one Discord client; remembers each channel's webhook (None: not allowed)."""

    def __init__(self, client: discord.Client, api_url: str) -> None:
        self._client = client
        self._adapter = RoutedWebhookAdapter(api_url)
        self._hooks: dict[int, discord.Webhook | None] = {}
        self._parents: dict[int, tuple[int, int | None]] = {}

    async def _place(self, channel_id: int) -> tuple[int, int | None]:
        """(the channel that holds webhooks, the thread id or None) for a channel or thread id."""
        if channel_id not in self._parents:
            data: Any = await self._client.http.get_channel(channel_id)
            if data.get("type") in THREAD_TYPES and data.get("parent_id"):
                self._parents[channel_id] = (int(data["parent_id"]), channel_id)
            else:
                self._parents[channel_id] = (channel_id, None)
        return self._parents[channel_id]

    async def _webhook(self, channel_id: int) -> discord.Webhook | None:
        if channel_id in self._hooks:
            return self._hooks[channel_id]
        me = self._client.user.id if self._client.user is not None else 0
        hook: Any = None
        try:
            for data in await self._client.http.channel_webhooks(channel_id):
                user: Any = data.get("user") or {}
                if data.get("name") == WEBHOOK_NAME and data.get("token") and str(user.get("id")) == str(me):
                    hook = data
                    break
            if hook is None:
                hook = await self._client.http.create_webhook(channel_id, name=WEBHOOK_NAME)
        except discord.Forbidden:
            log.warning("discord: no Manage Webhooks permission in channel %s: relayed messages are posted by "
                        "the bot, headed with their author's name", channel_id)
            self._hooks[channel_id] = None
            return None
        webhook = discord.Webhook.partial(int(hook["id"]), str(hook["token"]), client=self._client)
        self._hooks[channel_id] = webhook
        return webhook

    async def _find(self, channel_id: int, since: float, *, webhook_id: int | None, text: str) -> str | None:
        """The id of a copy an earlier attempt posted without recording it, if there is one."""
        channel = self._client.get_partial_messageable(channel_id)
        after = discord.Object(snowflake_at(since - LOOKBACK_S))
        me = self._client.user.id if self._client.user is not None else 0
        async for message in channel.history(after=after, limit=LOOKUP_LIMIT, oldest_first=True):
            mine = message.webhook_id == webhook_id if webhook_id is not None else message.author.id == me
            if mine and message.content == text:
                return str(message.id)
        return None

    @staticmethod
    def _parts(copy: Copy, webhook: discord.Webhook | None) -> list[str]:
        """The copy's text in Discord-sized parts: under the author's name with the platform below, or headed."""
        text = (f"{copy.body}\n-# {copy.platform}" if copy.platform else copy.body) if webhook is not None \
            else copy.text
        return split_message(text, MESSAGE_LIMIT) or [text[:MESSAGE_LIMIT]]

    async def change(self, copy: Copy, out: Outgoing, *, deleted: bool) -> None:
        """Edit (or delete) a copy posted before, through the webhook that posted it, else as the bot;
        parts the new text no longer needs are deleted."""
        channel_id = int(out.thread.thread)
        parent, thread = await self._place(channel_id)
        webhook = await self._webhook(parent) if copy.as_author else None
        in_thread = discord.Object(thread) if thread is not None else discord.utils.MISSING
        parts = self._parts(copy, webhook)
        for i, mid in enumerate(int(p) for p in out.posted):
            gone = deleted or i >= len(parts)
            try:
                if webhook is not None:
                    with routed(self._adapter):
                        if gone:
                            await webhook.delete_message(mid, thread=in_thread)
                        else:
                            await webhook.edit_message(mid, content=parts[i], allowed_mentions=NO_PINGS,
                                                       thread=in_thread)
                    continue
            except discord.NotFound:  # posted by the bot itself (no webhook then): changed as the bot
                pass
            message = self._client.get_partial_messageable(channel_id).get_partial_message(mid)
            try:
                if gone:
                    await message.delete()
                else:
                    await message.edit(content=parts[i], allowed_mentions=NO_PINGS)
            except discord.NotFound:  # already gone
                pass

    async def post(self, copy: Copy, out: Outgoing) -> None:
        """Post the parts not yet recorded; a part an interrupted attempt posted is adopted, not repeated."""
        channel_id = int(out.thread.thread)
        parent, thread = await self._place(channel_id)
        webhook = await self._webhook(parent) if copy.as_author else None
        parts = self._parts(copy, webhook)
        posted = list(out.posted)
        channel = self._client.get_partial_messageable(channel_id)
        for i in range(len(posted), len(parts)):
            found = await self._find(channel_id, copy.since, webhook_id=webhook.id if webhook else None,
                                     text=parts[i]) if out.recovering else None
            if found is not None:
                log.info("discord: part %d of copy %s was posted before a restart", i, out.key)
                posted.append(found)
            elif webhook is None:
                posted.append(await post_part(channel, parts[i], key=out.key, part=i, answers=None))
            else:
                with routed(self._adapter):
                    sent = await webhook.send(
                        parts[i], username=webhook_name(copy.name), avatar_url=copy.avatar or None,
                        allowed_mentions=NO_PINGS, wait=True, suppress_embeds=True,
                        thread=discord.Object(thread) if thread is not None else discord.utils.MISSING)
                posted.append(str(sent.id))
            await out.record(posted)
