"""Discord application commands (``commands: true``): ``/ask``, ``/reset``, ``/persona``, ``/personas``,
``/usage``, ``/help``, with discord.py's own :class:`app_commands.CommandTree`.

- **Registered at start** for each guild the bot is in (guild commands take effect at once; global
  ones can take an hour to appear).
- **Acknowledged at once**: every command defers first (Discord shows "Bridge is thinking…"), well
  within the 3 s Discord allows; the answer then arrives as the interaction's own response, edited
  while it streams like a mention's reply, continued in follow-up messages past 2,000 characters.
- **The same rules as a mention**: a command becomes an ordinary :class:`~bridge.types.Incoming`
  (``/ask`` the question, the others the in-chat command text, e.g. ``/persona NAME``), so channel
  rules, ``allow``/``deny``, budgets, history and the in-chat commands all apply unchanged.
  Something the core does not answer (no rule for the channel, someone not allowed) gets a plain
  sentence instead of a response that stays "thinking" forever.
- ``/persona`` completes persona names as the person types.

Interaction tokens live 15 minutes and are kept in memory only: an answer still pending after a
restart is posted in the channel the ordinary way.

discord.py sends interaction responses through its webhook adapter, which builds URLs from
discord.com itself; :class:`RoutedWebhookAdapter` sends them to ``api_url`` like every other call.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.http import Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from bridge.llm.streaming import render_stream
from bridge.platform import Inbox, Stopping
from bridge.types import Author, Incoming, Outgoing
from platforms.discord.client import NO_PINGS
from platforms.discord.handlers import thread_ref

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
MAX_CHOICES = 25   # Discord shows at most 25 autocomplete choices
MAX_KEPT = 1000    # interactions awaiting their answer (each token lives 15 minutes anyway)
NOT_ANSWERED = "I don't answer here, or you may not ask me here. Mention me in a channel I'm set up for."
RESTARTING = "I am restarting; please ask again in a moment."


class RoutedWebhookAdapter(AsyncWebhookAdapter):
    """discord.py's webhook adapter, sending to ``api_url`` instead of discord.com."""

    def __init__(self, api_url: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # discord.py leaves it unannotated
        self.api_url = api_url.rstrip("/")

    async def request(self, route: Route, session: aiohttp.ClientSession, **kwargs: Any) -> Any:
        if self.api_url != Route.BASE and route.url.startswith(Route.BASE):
            route.url = self.api_url + route.url[len(Route.BASE):]
        return await super().request(route, session, **kwargs)


def routed_context(api_url: str) -> contextvars.Context:
    """A context whose tasks (the gateway, and every handler it starts) answer through ``api_url``."""
    context = contextvars.copy_context()
    context.run(async_context.set, RoutedWebhookAdapter(api_url))
    return context


@contextlib.contextmanager
def routed(api_url: str) -> Iterator[None]:
    token = async_context.set(RoutedWebhookAdapter(api_url))
    try:
        yield
    finally:
        async_context.reset(token)


class SlashCommands:
    """The command tree of one client, and the interactions waiting for their answer."""

    def __init__(self, client: discord.Client, *, api_url: str, inbox: Callable[[], Inbox | None],
                 personas: Callable[[], list[str]], interval: float) -> None:
        self._client, self._api_url, self._inbox, self._personas = client, api_url, inbox, personas
        self._interval = interval
        self._waiting: dict[str, discord.Interaction] = {}  # interaction id → the interaction
        self._turns: dict[str, asyncio.Lock] = {}
        self.tree = app_commands.CommandTree(client)
        self._define()

    # ---------------------------------------------------------------------------- the commands

    def _define(self) -> None:
        tree = self.tree

        @tree.command(name="ask", description="Ask the bot; the channel's conversation continues")
        @app_commands.describe(question="What you want to ask")
        async def ask(interaction: discord.Interaction, question: str) -> None:
            await self._run(interaction, question)

        @tree.command(name="reset", description="Forget this conversation's history")
        async def reset(interaction: discord.Interaction) -> None:
            await self._run(interaction, "/reset")

        @tree.command(name="persona", description="Switch who answers in this conversation")
        @app_commands.describe(name="A persona's name")
        async def persona(interaction: discord.Interaction, name: str) -> None:
            await self._run(interaction, f"/persona {name}")

        @persona.autocomplete("name")
        async def persona_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            typed = current.lower()
            names = [n for n in sorted(self._personas()) if typed in n.lower()]
            return [app_commands.Choice(name=n, value=n) for n in names[:MAX_CHOICES]]

        @tree.command(name="personas", description="List the personas")
        async def personas(interaction: discord.Interaction) -> None:
            await self._run(interaction, "/personas")

        @tree.command(name="usage", description="Your usage and budget")
        async def usage(interaction: discord.Interaction) -> None:
            await self._run(interaction, "/usage")

        @tree.command(name="help", description="What the bot can do")
        async def help_(interaction: discord.Interaction) -> None:
            await self._run(interaction, "/help")

    async def sync(self, guilds: list[discord.Guild]) -> None:
        """Register the commands in every guild the bot is in (they appear at once)."""
        for guild in guilds:
            self.tree.copy_global_to(guild=guild)
            try:
                await self.tree.sync(guild=guild)
            except (discord.HTTPException, aiohttp.ClientError) as exc:
                log.warning("discord: could not register commands in server %s (%s): mentions still work",
                            guild.id, type(exc).__name__)

    # ---------------------------------------------------------------------------- inbound

    async def _run(self, interaction: discord.Interaction, text: str) -> None:
        """Acknowledge first (Discord's 3 s), then hand the command to the core like a mention."""
        await interaction.response.defer(thinking=True)
        inbox, user = self._inbox(), interaction.user
        if inbox is None or interaction.channel is None:
            await self._plain(interaction, RESTARTING)
            return
        channel: Any = interaction.channel
        roles = tuple(str(r.id) for r in user.roles) if isinstance(user, discord.Member) else ()
        msg = Incoming(thread=thread_ref(channel, interaction.guild), event_id=str(interaction.id),
                       author=Author(str(user.id), user.display_name, is_bot=user.bot), text=text.strip(),
                       mentioned=True, direct=interaction.guild is None,
                       in_thread=isinstance(channel, discord.Thread), roles=roles)
        self._keep(interaction)
        try:
            accepted = await inbox(msg)
        except Stopping:  # not stored: Discord does not send it again, so the person is asked to
            self._waiting.pop(str(interaction.id), None)
            await self._plain(interaction, RESTARTING)
            return
        if not accepted:
            async with self._turn(interaction):  # never after a notice the core sends meanwhile
                if not self._answered(interaction):  # a notice delivered later replaces this sentence
                    await self._plain(interaction, NOT_ANSWERED)

    def _keep(self, interaction: discord.Interaction) -> None:
        self._waiting[str(interaction.id)] = interaction
        self._turns[str(interaction.id)] = asyncio.Lock()
        while len(self._waiting) > MAX_KEPT:
            del self._waiting[next(iter(self._waiting))]
        while len(self._turns) > MAX_KEPT:
            del self._turns[next(iter(self._turns))]

    def _turn(self, interaction: discord.Interaction) -> asyncio.Lock:
        """One writer at a time per interaction: the plain sentence, or the core's reply."""
        return self._turns.setdefault(str(interaction.id), asyncio.Lock())

    def _answered(self, interaction: discord.Interaction) -> bool:
        return str(interaction.id) not in self._waiting

    async def _plain(self, interaction: discord.Interaction, text: str) -> None:
        try:
            with routed(self._api_url):
                await interaction.edit_original_response(content=text, allowed_mentions=NO_PINGS)
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            log.info("discord: could not answer a command (%s)", type(exc).__name__)

    # ---------------------------------------------------------------------------- outbound

    def owns(self, reply: Outgoing) -> bool:
        return reply.answers in self._waiting

    async def send(self, reply: Outgoing, snapshots: AsyncIterator[str], *,
                   view: discord.ui.View | None = None) -> None:
        """The answer as the interaction's response (edited while it streams), then follow-ups."""
        interaction = self._waiting.pop(reply.answers)
        async with self._turn(interaction):
            await self._answer(interaction, reply, snapshots, view)
        self._turns.pop(reply.answers, None)

    async def _answer(self, interaction: discord.Interaction, reply: Outgoing, snapshots: AsyncIterator[str],
                      view: discord.ui.View | None) -> None:
        original: list[str] = list(reply.posted[:1])  # an earlier attempt's response is edited
        # Outgoing.guard, where the core fences writes (several replicas); none otherwise.
        guard = reply.guard

        async def post(text: str) -> str:
            guard()
            if not original:  # the deferred "thinking…" response becomes the answer
                message = await interaction.edit_original_response(content=text, allowed_mentions=NO_PINGS)
                original.append(str(message.id))
                return original[0]
            follow = await interaction.followup.send(text, wait=True, allowed_mentions=NO_PINGS)
            return str(follow.id)

        async def edit(message_id: str, text: str) -> None:
            guard()
            if original and message_id == original[0]:
                await interaction.edit_original_response(content=text, allowed_mentions=NO_PINGS)
            else:
                await interaction.followup.edit_message(int(message_id), content=text, allowed_mentions=NO_PINGS)

        with routed(self._api_url):
            ids = await render_stream(snapshots, post=post, edit=edit, limit=MESSAGE_LIMIT, interval=self._interval,
                                      posted=reply.posted, record=reply.record)
            if view is not None and ids:  # the 👍/👎 buttons under the last message
                if ids[-1] == original[0]:
                    await interaction.edit_original_response(view=view)
                else:
                    await interaction.followup.edit_message(int(ids[-1]), view=view)
