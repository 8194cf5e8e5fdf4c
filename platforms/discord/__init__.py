"""Discord: the gateway (discord.py) in, REST out, inside the bridge's one asyncio loop.

``start`` logs in, runs ``client.connect(reconnect=True)`` as a task (discord.py reconnects and
resumes on its own) and returns once the client is ready and has caught up. Each created message is
translated by :func:`platforms.discord.handlers.to_incoming` and handed to the core's inbox, one at a
time and in arrival order. Discord never redelivers what a bot missed, so after every (re)connection
the channels the rules bind are read back (:mod:`platforms.discord.catchup`); gateway messages wait
until that is done, so each channel's messages reach the core in order. A message the store could
not take is tried again (later ones wait behind it), and if it still cannot be stored the next
catch-up reads from before it. ``send`` shows the typing
indicator until the first text exists, then posts and edits in place through
:func:`bridge.llm.streaming.render_stream` (2,000 characters a message, nobody pinged), each post
recognisable after a crash (:mod:`platforms.discord.delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import discord
from aiohttp import web

from bridge.attachments.hosts import FileHosts, api_origin
from bridge.config import ChannelRule, Config, DiscordConfig
from bridge.diagnosis import Finding
from bridge.llm.streaming import render_stream
from bridge.personas import load_personas
from bridge.platform import Inbox, PlatformStartError, Stopping
from bridge.relay.copies import Copy
from bridge.types import Author, Incoming, Outgoing, RatingSink, ThreadRef
from platforms.discord import catchup
from platforms.discord.client import BridgeClient
from platforms.discord.commands import SlashCommands, routed_context
from platforms.discord.delivery import edit_part, find_first_part, post_part
from platforms.discord.feedback import add_buttons, buttons, rating_of
from platforms.discord.handlers import to_incoming
from platforms.discord.relay import Relayer

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000  # characters per Discord message
_CHANNEL_CACHE = 1000  # channels looked up by id (threads discord.py had not cached)
STORE_RETRY_FIRST_S = 0.05  # a message the store refused is tried again after this, doubling...
STORE_RETRY_MAX_S = 5.0     # ... up to this between attempts,
STORE_RETRY_S = 300.0       # ... for this long; then it waits for the next catch-up


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

    def __init__(self, settings: DiscordConfig, *, rules: Sequence[ChannelRule] = (),
                 ready_timeout_s: float = 60.0, guild_ready_timeout_s: float = 2.0,
                 store_retry_s: float = STORE_RETRY_S, personas_dir: Path | None = None) -> None:
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
        self._rules = rules
        # Catch-up: gateway messages wait at the gate while missed ones are read back.
        self._gate = asyncio.Event()
        self._connected = False
        self._sessions = 0  # READY/RESUMED seen; a catch-up runs again if one came while it ran
        self._catchup: asyncio.Task[None] | None = None
        self._seen: dict[int, int] = {}  # channel id → newest message id delivered (or read back)
        self._holes: dict[int, int] = {}  # channel id → oldest message id the store could not take
        self._store_retry_s = store_retry_s
        self._stopped = asyncio.Event()
        self._started_id = 0  # bot messages older than this were posted by an earlier run
        self._personas_dir = personas_dir
        self._persona_names: list[str] = []
        self._commands: SlashCommands | None = None
        self._ratings: RatingSink | None = None
        self._relayer: Relayer | None = None  # relayed copies (shares with relay: true)

    # ------------------------------------------------------------------------------- lifecycle

    async def login(self) -> None:
        """Sign in over REST only: ``send`` works, no events arrive. Several replicas on PostgreSQL
        (bridge/replicas/gateway.py): only the gateway owner calls :meth:`start`; the others answer through this."""
        if self._client is not None and not self._client.is_closed():
            return
        client = BridgeClient(api_url=self._settings.api_url, on_message=self._on_message,
                              on_gateway=self._on_gateway, guild_ready_timeout=self._guild_ready_timeout,
                              on_interaction=self._on_interaction, on_change=self._on_change)
        self._client = client
        if self._settings.commands:
            self._commands = SlashCommands(client, api_url=self._settings.api_url, inbox=lambda: self._inbox,
                                           personas=lambda: self._persona_names,
                                           interval=self._settings.edit_interval_s)
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

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        self._stopped.clear()
        self._started_id = catchup.snowflake_at(time.time())
        await self.login()
        client = self._client
        assert client is not None
        self._accepting = True
        if self._commands is not None and self._personas_dir is not None:
            self._persona_names = sorted(await asyncio.to_thread(load_personas, self._personas_dir))
        # Interaction responses go through discord.py's webhook adapter: routed to api_url for the
        # gateway task and every handler it starts.
        self._gateway = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway",
                                            context=routed_context(self._settings.api_url))
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
        if self._commands is not None:
            await self._commands.sync(list(client.guilds))
        user = client.user
        log.info("discord: connected as %s (id %s) in %d server(s)", user, user.id if user else "?",
                 len(client.guilds))
        try:  # what was written while the bridge was down goes in before anything new
            await asyncio.wait_for(self._gate.wait(), self._ready_timeout)
        except TimeoutError:
            log.warning("discord: still catching up on missed messages after %g s; continuing in the background",
                        self._ready_timeout)

    def _gateway_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and self._accepting:
            log.error("discord: the gateway stopped: %s", _gateway_problem(task.exception(), self._ready_timeout))

    async def stop(self) -> None:
        self._accepting = False
        self._stopped.set()  # a message being retried gives up: the next start reads it back
        self._gate.set()  # messages waiting for a catch-up see that the adapter stopped
        if self._catchup is not None:
            self._catchup.cancel()
            await asyncio.gather(self._catchup, return_exceptions=True)
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

    def file_hosts(self, thread: ThreadRef | None = None) -> FileHosts:
        """Discord's CDN (its URLs are signed: no token is sent); an overridden ``api_url``'s origin too."""
        default = DiscordConfig.model_fields["api_url"].default
        return FileHosts("discord", ("https://cdn.discordapp.com", "https://media.discordapp.net",
                                     *api_origin(self._settings.api_url, default)))

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
        await self._gate.wait()  # a catch-up delivers older messages first
        await self._deliver(message)

    def accept_ratings(self, sink: RatingSink) -> None:
        self._ratings = sink

    async def _on_interaction(self, interaction: discord.Interaction) -> None:
        """A 👍/👎 click: acknowledged (the message stays as it is), then recorded."""
        rating = rating_of(interaction)
        if rating is None:
            return
        try:
            await interaction.response.defer()
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            log.info("discord: could not acknowledge a rating (%s)", type(exc).__name__)
        if self._ratings is not None:
            await self._ratings(rating)

    async def _deliver(self, message: discord.Message) -> None:
        client, inbox = self._client, self._inbox
        if not self._accepting or client is None or client.user is None or inbox is None:
            return
        async with self._intake:  # one at a time: the core sees messages in gateway order
            channel_id = message.channel.id
            incoming = to_incoming(message, client.user.id, channel=await self._channel(message))
            if incoming is not None:
                if not incoming.text and not incoming.author.is_bot and not incoming.direct:
                    self._warn_empty(message)
                if not await self._hand_over(inbox, incoming, message):
                    # Not stored: the next catch-up must read from before it, whatever arrives later.
                    self._holes[channel_id] = min(self._holes.get(channel_id, message.id), message.id)
                    return
            # Only now is the message behind us: a catch-up reads from the newest one handed over.
            self._seen[channel_id] = max(self._seen.get(channel_id, 0), message.id)

    async def _on_change(self, payload: discord.RawMessageUpdateEvent | discord.RawMessageDeleteEvent) -> None:
        """A message edited or deleted: relayed copies follow it (nothing else does). Not retried: a
        change the store could not take leaves the copies as they were."""
        client, inbox = self._client, self._inbox
        if not self._accepting or client is None or client.user is None or inbox is None:
            return
        if isinstance(payload, discord.RawMessageUpdateEvent):
            if "content" not in payload.data:  # an embed appeared: not an edit of the text
                return
            incoming = to_incoming(payload.message, client.user.id)
            if incoming is None or incoming.author.is_bot:
                return
            incoming = dataclasses.replace(incoming, change="edited")
        else:
            channel = str(payload.channel_id)
            incoming = Incoming(thread=ThreadRef("discord", str(payload.guild_id or ""), channel, channel),
                                event_id=str(payload.message_id), author=Author("", ""), text="",
                                direct=payload.guild_id is None, change="deleted")
        try:
            await inbox(incoming)
        except Exception as exc:  # the store's text may quote the message: its class name only
            log.warning("discord: a change to message %s was not relayed (%s)", payload.message_id,
                        type(exc).__name__)

    async def _hand_over(self, inbox: Inbox, incoming: Incoming, message: discord.Message) -> bool:
        """Give the message to the core until the store takes it; False when it could not be stored.

        Discord never sends a message again, so a store that fails (a full disk, a locked file) is
        retried with backoff, holding the intake lock: later messages wait instead of overtaking it.
        """
        started = time.monotonic()
        delay = STORE_RETRY_FIRST_S
        while True:
            try:
                await inbox(incoming)
                return True
            except Stopping:  # not stored: the next start's catch-up reads it back
                log.info("discord: message %s arrived while the bridge was stopping", message.id)
                return False
            except Exception as exc:  # the store's text may quote the message: its class name only
                waited = time.monotonic() - started
                if not self._accepting or waited >= self._store_retry_s:
                    log.error("discord: message %s in channel %s could not be stored (%s) after %.0f s; it is "
                              "read back at the next catch-up", message.id, message.channel.id,
                              type(exc).__name__, waited)
                    return False
                log.warning("discord: storing message %s failed (%s); trying again in %g s", message.id,
                            type(exc).__name__, delay)
            with contextlib.suppress(TimeoutError):  # stop() ends the wait at once
                await asyncio.wait_for(self._stopped.wait(), delay)
            delay = min(delay * 2, STORE_RETRY_MAX_S)

    # --------------------------------------------------------------------------------- catch-up

    def _on_gateway(self, event: str) -> None:
        """READY/RESUMED: read back what was missed, then open the gate; a disconnect closes it."""
        if not self._accepting:  # stopping: nothing may wait at a gate no catch-up will open
            self._gate.set()
            return
        if event == "disconnect":
            self._connected = False
            self._gate.clear()
            return
        self._connected = True
        self._sessions += 1
        if self._catchup is None or self._catchup.done():
            self._catchup = asyncio.create_task(self._catch_up_all(), name="discord-catch-up")

    async def _catch_up_all(self) -> None:
        try:
            while True:
                sessions = self._sessions
                await self._catch_up()
                if sessions == self._sessions:
                    break
        except Exception:
            log.exception("discord: catching up on missed messages failed")
        finally:
            if self._connected:
                self._gate.set()

    async def _catch_up(self) -> None:
        client, settings = self._client, self._settings
        if client is None or client.user is None or not settings.catchup_max_age_s or not settings.catchup_max_messages:
            return
        floor = catchup.oldest_id(settings.catchup_max_age_s)
        delivered = 0
        for channel in catchup.channels(client, self._rules):
            seen = self._seen.get(channel.id)
            after = max(seen or 0, floor)
            hole = self._holes.get(channel.id)
            if hole is not None:
                after = min(after, hole - 1)
            try:
                found = await catchup.missed(channel, after=after, limit=settings.catchup_max_messages)
            except (discord.HTTPException, aiohttp.ClientError) as exc:
                log.warning("discord: cannot read back channel %s (%s)", channel.id, type(exc).__name__)
                continue
            self._holes.pop(channel.id, None)  # read back: _deliver puts it back if storing fails again
            newest = max([after, *(m.id for m in found)])
            if seen is None:  # first look since the start: an earlier run saw what came before its last reply
                found = catchup.after_last_reply(found, client.user.id, before=self._started_id)
            for message in found:
                await self._deliver(message)
            delivered += len(found)
            self._seen[channel.id] = max(self._seen.get(channel.id, 0), newest)
        if delivered:
            log.info("discord: read back %d message(s) the gateway had not delivered", delivered)

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

    async def send(self, reply: Outgoing, snapshots: AsyncIterator[str]) -> None:
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        view = buttons(reply.key) if self._settings.feedback and reply.rateable else None
        if self._commands is not None and self._commands.owns(reply):  # the answer to a slash command
            await self._commands.send(reply, snapshots, view=view)
            return
        thread = reply.thread
        channel = self._client.get_partial_messageable(
            int(thread.thread), guild_id=int(thread.workspace) if thread.workspace else None)
        answers = int(reply.answers) if reply.answers.isdigit() else None
        posted = list(reply.posted)
        if reply.recovering and not posted and answers is not None and self._client.user is not None:
            # An earlier attempt may have posted without recording it, longer ago than Discord keeps nonces.
            found = await find_first_part(channel, answers, self._client.user.id)
            if found is not None:
                posted = [found]
                await reply.record(posted)
        first = await self._typing_until_text(channel, snapshots)

        async def rest() -> AsyncIterator[str]:
            if first is not None:
                yield first
                async for snapshot in snapshots:
                    yield snapshot

        parts = len(posted)

        async def post(text: str) -> str:
            nonlocal parts
            parts += 1
            reply.guard()
            return await post_part(channel, text, key=reply.key, part=parts - 1, answers=answers)

        async def edit(message_id: str, text: str) -> None:
            reply.guard()
            await edit_part(channel, int(message_id), text)

        ids = await render_stream(rest(), post=post, edit=edit, limit=MESSAGE_LIMIT,
                                  interval=self._settings.edit_interval_s, posted=posted, record=reply.record)
        if view is not None and ids:
            await add_buttons(channel, int(ids[-1]), view)

    async def progress(self, reply: Outgoing, activity: str) -> None:
        """A tool started: "Bridge is typing…" at once (Discord shows it for about 10 s)."""
        if self._client is None:
            return
        thread = reply.thread
        channel = self._client.get_partial_messageable(
            int(thread.thread), guild_id=int(thread.workspace) if thread.workspace else None)
        await channel.typing()

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


    async def relay(self, copy: Copy, out: Outgoing) -> None:
        """A relayed copy: through the channel's webhook under its author's name and avatar (see :mod:`.relay`)."""
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        if self._relayer is None:
            self._relayer = Relayer(self._client, self._settings.api_url)
        await self._relayer.post(copy, out)

    async def relay_change(self, copy: Copy, out: Outgoing, *, deleted: bool) -> None:
        """A relayed message was edited or deleted: its copy here follows."""
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        if self._relayer is None:
            self._relayer = Relayer(self._client, self._settings.api_url)
        await self._relayer.change(copy, out, deleted=deleted)

    # ------------------------------------------------------------------------------- diagnosis

    async def diagnose(self) -> list[Finding]:
        """``bridge check --online``: the bot user and the MESSAGE CONTENT intent (see diagnose.py)."""
        from platforms.discord.diagnose import diagnose_discord

        return await diagnose_discord(self._settings)

    async def check_places(self, places: list[tuple[int, str]]) -> list[Finding]:
        """``bridge check --online``: each channel a rule names, visible and writable? (see places.py)."""
        from platforms.discord.diagnose import diagnose_discord

        return await diagnose_discord(self._settings, places)


def create(settings: DiscordConfig, config: Config) -> DiscordPlatform:
    """The ``bridge.platforms`` entry point."""
    return DiscordPlatform(settings, rules=config.channels, personas_dir=config.personas_dir)
