"""discord.py, pointed at ``api_url``: one client per adapter, nothing global changed.

discord.py builds every REST URL from the class attribute ``Route.BASE`` and opens the gateway at
the class attribute ``DiscordWebSocket.DEFAULT_GATEWAY``; setting either would affect every client
in the process. Instead this client's :class:`HTTPClient` rewrites the URLs it is asked to use:
REST calls go to ``api_url``, and the default gateway becomes the address ``GET /gateway/bot`` on
that API returns (as Discord recommends). Resume addresses sent by the gateway (READY's
``resume_gateway_url``) are used as given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://discord.com/api/v10"

# What the bridge needs from the gateway, and nothing more: guilds (channel and thread cache),
# guild and DM messages, and their text (MESSAGE CONTENT, a privileged intent). Members and
# presences are not needed: message payloads carry the author's and mentioned users' names.
INTENTS = discord.Intents(guilds=True, guild_messages=True, dm_messages=True, message_content=True)

# Nobody is pinged by what the model writes: no @everyone/@here, no roles, no users.
NO_PINGS = discord.AllowedMentions.none()


class RoutedHTTPClient(HTTPClient):
    """An :class:`HTTPClient` whose REST calls and default gateway follow ``api_url``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, api_url: str) -> None:
        super().__init__(loop)
        self.api_url = api_url.rstrip("/")
        self.gateway_url: yarl.URL | None = None

    async def request(self, route: Route, *, files: Sequence[discord.File] | None = None,
                      form: Iterable[dict[str, Any]] | None = None, **kwargs: Any) -> Any:
        if self.api_url != Route.BASE and route.url.startswith(Route.BASE):
            route.url = self.api_url + route.url[len(Route.BASE):]
        return await super().request(route, files=files, form=form, **kwargs)

    async def ws_connect(self, url: str, *, compress: int = 0) -> aiohttp.ClientWebSocketResponse:
        target = yarl.URL(url)
        default = DiscordWebSocket.DEFAULT_GATEWAY
        if (target.scheme, target.host, target.path) == (default.scheme, default.host, default.path):
            if self.gateway_url is None:
                _, address, _ = await self.get_bot_gateway()
                self.gateway_url = yarl.URL(address)
            # Keep discord.py's query (v, encoding, compress) on the address the API gave.
            target = self.gateway_url.with_query(target.query)
            log.debug("gateway: %s", target.with_query(None))
        return await super().ws_connect(str(target), compress=compress)


def _ignore(_: str) -> None:
    return None


class BridgeClient(discord.Client):
    """A :class:`discord.Client` using :class:`RoutedHTTPClient`, handing messages to a callback.

    ``on_gateway`` hears ``"ready"``/``"resumed"`` (a session began or continued) and
    ``"disconnect"``: what the adapter needs to know when to catch up on missed messages.
    """

    def __init__(self, *, api_url: str, on_message: Callable[[discord.Message], Awaitable[None]],
                 on_gateway: Callable[[str], None] = _ignore, guild_ready_timeout: float = 2.0,
                 on_interaction: Callable[[discord.Interaction], Awaitable[None]] | None = None,
                 on_change: Callable[[Any], Awaitable[None]] | None = None) -> None:
        # No voice here: spare operators discord.py's "PyNaCl/davey is not installed" warnings.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(intents=INTENTS, allowed_mentions=NO_PINGS, guild_ready_timeout=guild_ready_timeout)
        # Swap the HTTP client before anything used it: the connection state shares the same one.
        self.http = RoutedHTTPClient(self.loop, api_url)
        self._connection.http = self.http
        self._message_callback = on_message
        self._gateway_callback = on_gateway
        self._interaction_callback = on_interaction
        self._change_callback = on_change

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        if self._change_callback is not None:
            await self._change_callback(payload)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if self._change_callback is not None:
            await self._change_callback(payload)

    async def on_message(self, message: discord.Message) -> None:
        await self._message_callback(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if self._interaction_callback is not None:  # button clicks (slash commands go to the command tree)
            await self._interaction_callback(interaction)

    async def on_ready(self) -> None:
        self._gateway_callback("ready")

    async def on_resumed(self) -> None:
        self._gateway_callback("resumed")

    async def on_disconnect(self) -> None:
        self._gateway_callback("disconnect")
