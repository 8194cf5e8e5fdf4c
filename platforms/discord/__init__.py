"""Discord: the gateway (discord.py) in, REST out, inside the bridge's one asyncio loop.

``start`` logs in, runs ``client.connect(reconnect=True)`` as a task (discord.py reconnects and
resumes on its own) and returns once the client is ready. Each created message is translated by
:func:`platforms.discord.handlers.to_incoming` and handed to the core's inbox, one at a time and in
arrival order. ``send`` shows the typing indicator until the first text exists, then posts and edits
in place through :func:`bridge.streaming.render_stream` (2,000 characters a message, nobody pinged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
from aiohttp import web

from bridge.config import Config, DiscordConfig
from bridge.platform import Inbox, PlatformStartError, Stopping
from bridge.streaming import render_stream
from bridge.types import ThreadRef
from platforms.discord.client import NO_PINGS, BridgeClient
from platforms.discord.handlers import to_incoming

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000  # characters per Discord message
_CHANNEL_CACHE = 1000  # channels looked up by id (threads discord.py had not cached)


class DiscordStartError(PlatformStartError):
    """Discord could not be joined; the message names the key or switch to fix, never the token."""


def _gateway_problem(exc: BaseException | None, timeout: float) -> str:
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return ("platforms.discord: Discord refused the MESSAGE CONTENT intent. In the developer portal, open "
                "your application → Bot → Privileged Gateway Intents and switch on MESSAGE CONTENT INTENT")
    if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
        return "platforms.discord.token: the gateway refused the token: copy it again (Bot → Reset Token)"
    if exc is not None:
        return f"platforms.discord: the gateway connection failed ({type(exc).__name__})"
    return f"platforms.discord: the gateway was not ready within {timeout:g} s"


class DiscordPlatform:
    name = "discord"

    def __init__(self, settings: DiscordConfig, *, ready_timeout_s: float = 60.0,
                 guild_ready_timeout_s: float = 2.0) -> None:
        self._settings = settings
        self._token = settings.token.get_secret_value() if settings.token is not None else ""
        self._ready_timeout = ready_timeout_s
        self._guild_ready_timeout = guild_ready_timeout_s  # discord.py waits this long for guilds
        self._client: BridgeClient | None = None
        self._gateway: asyncio.Task[None] | None = None
        self._inbox: Inbox | None = None
        self._intake = asyncio.Lock()
        self._accepting = False
        self._channels: dict[int, discord.abc.Snowflake] = {}
        self._warned_empty = False

    # ------------------------------------------------------------------------------- lifecycle

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        client = BridgeClient(api_url=self._settings.api_url, on_message=self._on_message,
                              guild_ready_timeout=self._guild_ready_timeout)
        self._client = client
        try:
            await client.login(self._token)
        except discord.LoginFailure:
            await client.close()
            raise DiscordStartError("platforms.discord.token: Discord refused the token (401 Unauthorized): copy it "
                                    "again from the developer portal (your application → Bot → Reset Token)") from None
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            await client.close()
            raise DiscordStartError(f"platforms.discord.api_url: cannot log in at {self._settings.api_url} "
                                    f"({type(exc).__name__})") from None
        self._accepting = True
        self._gateway = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(client.wait_until_ready())
        try:
            await asyncio.wait({ready, self._gateway}, timeout=self._ready_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not client.is_ready():
            failure = self._gateway.exception() if self._gateway.done() else None
            await self.stop()
            raise DiscordStartError(_gateway_problem(failure, self._ready_timeout))
        self._gateway.add_done_callback(self._gateway_ended)
        user = client.user
        log.info("discord: connected as %s (id %s) in %d server(s)", user, user.id if user else "?",
                 len(client.guilds))

    def _gateway_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and self._accepting:
            log.error("discord: the gateway stopped: %s", _gateway_problem(task.exception(), self._ready_timeout))

    async def stop(self) -> None:
        self._accepting = False
        client, task = self._client, self._gateway
        if client is not None:
            await client.close()
        if task is not None:
            await asyncio.wait({task}, timeout=5)  # connect() returns once the client is closed
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
            elif not task.cancelled() and task.exception() is not None:  # ended badly; stopping anyway
                log.debug("discord: the gateway task ended with %s", type(task.exception()).__name__)

    def routes(self) -> list[web.RouteDef]:
        return []  # everything arrives over the gateway

    def status(self) -> dict[str, Any]:
        client = self._client
        if client is None:
            return {"ok": False, "user": None, "latency_ms": None}
        connected = client.ws is not None and client.ws.open
        latency = client.latency
        return {
            "ok": client.is_ready() and not client.is_closed() and connected,
            "user": str(client.user) if client.user else None,
            "latency_ms": round(latency * 1000) if math.isfinite(latency) else None,
        }

    # ---------------------------------------------------------------------------------- inbound

    async def _on_message(self, message: discord.Message) -> None:
        client, inbox = self._client, self._inbox
        if not self._accepting or client is None or client.user is None or inbox is None:
            return
        async with self._intake:  # one at a time: the core sees messages in gateway order
            incoming = to_incoming(message, client.user.id, channel=await self._channel(message))
            if incoming is None:
                return
            if not incoming.text and not incoming.author.is_bot and not incoming.direct:
                self._warn_empty(message)
            try:
                await inbox(incoming)
            except Stopping:  # the gateway will not deliver it again: it is simply not answered
                log.info("discord: message %s arrived while the bridge was stopping", message.id)
            except Exception:
                log.exception("discord: delivering message %s failed", message.id)

    async def _channel(self, message: discord.Message) -> discord.abc.Snowflake | None:
        """The message's channel with its parent known: a thread discord.py had not cached is fetched."""
        channel = message.channel
        if not isinstance(channel, discord.PartialMessageable) or channel.guild_id is None:
            return None
        known = self._channels.get(channel.id)
        if known is not None:
            return known
        assert self._client is not None
        try:
            fetched: discord.abc.Snowflake = await self._client.fetch_channel(channel.id)
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            log.warning("discord: cannot look up channel %s (%s)", channel.id, type(exc).__name__)
            return None
        if len(self._channels) >= _CHANNEL_CACHE:
            self._channels.pop(next(iter(self._channels)))
        self._channels[channel.id] = fetched
        return fetched

    def _warn_empty(self, message: discord.Message) -> None:
        if self._warned_empty or message.attachments or message.embeds or message.stickers:
            return
        self._warned_empty = True
        log.warning("discord: a message in channel %s arrived with empty text. If this happens for every "
                    "message that does not mention the bot, the MESSAGE CONTENT intent is off: developer portal → "
                    "your application → Bot → Privileged Gateway Intents", message.channel.id)

    # --------------------------------------------------------------------------------- outbound

    async def send(self, thread: ThreadRef, snapshots: AsyncIterator[str]) -> None:
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        channel = self._client.get_partial_messageable(
            int(thread.thread), guild_id=int(thread.workspace) if thread.workspace else None)
        first = await self._typing_until_text(channel, snapshots)

        async def rest() -> AsyncIterator[str]:
            if first is not None:
                yield first
                async for snapshot in snapshots:
                    yield snapshot

        async def post(text: str) -> discord.Message:
            return await channel.send(text, allowed_mentions=NO_PINGS, suppress_embeds=True)

        async def edit(message: discord.Message, text: str) -> None:
            await message.edit(content=text, allowed_mentions=NO_PINGS, suppress=True)

        await render_stream(rest(), post=post, edit=edit, limit=MESSAGE_LIMIT,
                            interval=self._settings.edit_interval_s)

    @staticmethod
    async def _typing_until_text(channel: discord.PartialMessageable, snapshots: AsyncIterator[str]) -> str | None:
        """Show "Bridge is typing…" while the model thinks; the first non-blank snapshot, if any."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(channel.typing())
            except discord.HTTPException as exc:  # no typing is no reason to fail: posting will tell
                log.debug("discord: typing indicator failed (%s)", type(exc).__name__)
            async for snapshot in snapshots:
                if snapshot.strip():
                    return snapshot
        return None


def create(settings: DiscordConfig, config: Config) -> DiscordPlatform:
    """The ``bridge.platforms`` entry point."""
    return DiscordPlatform(settings)
