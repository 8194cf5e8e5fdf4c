"""``bridge check --online`` for Discord: log in over REST (``GET /users/@me``, then the application,
whose flags say whether the MESSAGE CONTENT intent is switched on) without opening the gateway."""

from __future__ import annotations

import aiohttp
import discord

from bridge.config import DiscordConfig
from bridge.diagnosis import Finding
from platforms.discord.client import BridgeClient

MAX_GUILDS = 200  # servers looked at; a bridge bot is in a handful


async def _ignore(_: discord.Message) -> None:
    return None


async def diagnose_discord(settings: DiscordConfig, places: list[tuple[int, str]] | None = None) -> list[Finding]:
    """Sign in over REST; with ``places``, look those channels up instead (see places.py)."""
    client = BridgeClient(api_url=settings.api_url, on_message=_ignore)
    token = settings.token.get_secret_value() if settings.token is not None else ""
    try:
        await client.login(token)  # GET /users/@me, then GET /oauth2/applications/@me
        if places is not None:
            from platforms.discord.places import check_discord_places

            return await check_discord_places(client, places)
        found = [Finding("ok", f"discord: signed in as {client.user} (id {client.user.id if client.user else '?'})")]
        app = client.application
        if app is None:
            found.append(Finding("warning", "discord: Discord did not tell the application's settings"))
        elif app.flags.gateway_message_content or app.flags.gateway_message_content_limited:
            found.append(Finding("ok", "discord: the MESSAGE CONTENT intent is on"))
        else:
            found.append(Finding("missing", "discord: the MESSAGE CONTENT intent is off: developer portal → your "
                                            "application → Bot → Privileged Gateway Intents"))
        if settings.commands and app is not None:
            found.extend(await _commands(client, app.id))
        if settings.feedback:
            found.append(Finding("ok", "discord: feedback buttons on (they need no extra permission)"))
        return found
    except discord.LoginFailure:
        return [Finding("missing", "discord: Discord refused platforms.discord.token (401): Bot → Reset Token")]
    except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
        return [Finding("missing", f"discord: cannot reach {settings.api_url} ({type(exc).__name__})")]
    finally:
        await client.close()


async def _commands(client: BridgeClient, app_id: int) -> list[Finding]:
    """Whether the bot may manage its commands in each server (the invite's ``applications.commands`` scope)."""
    refused: list[str] = []
    guilds = [guild async for guild in client.fetch_guilds(limit=MAX_GUILDS)]
    for guild in guilds:
        try:
            await client.http.get_guild_commands(app_id, guild.id)
        except discord.Forbidden:
            refused.append(f"{guild.name} ({guild.id})")
    if refused:
        return [Finding("warning", f"discord: commands: true, but the bot may not add commands in "
                                   f"{', '.join(refused)}: invite it again with the applications.commands scope "
                                   "(mentions still work)")]
    return [Finding("ok", f"discord: application commands allowed in {len(guilds)} server(s)")]
