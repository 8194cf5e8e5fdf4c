"""``bridge check --online``: whether the bot can see each Discord channel a rule names, and post there.

Over REST only (the gateway stays closed): the channel (``GET /channels/ID``; Discord answers 403 or
404 when the bot cannot see it), then the server's roles and the bot's own, and the permissions
worked out as Discord does — roles, then the channel's overwrites for @everyone, the bot's roles
and the bot itself. A thread takes its parent channel's overwrites and needs *Send Messages in
Threads*.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import discord

from bridge.diagnosis import Finding, place_label

ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_IN_THREADS = 1 << 38
_THREADS = (10, 11, 12)


def permissions(guild_id: str, roles: list[dict[str, Any]], member_roles: list[str], bot_id: str,
                overwrites: list[dict[str, Any]]) -> int:
    """The bot's permissions in a channel, computed the way Discord documents it."""
    by_id = {str(r["id"]): int(r.get("permissions") or 0) for r in roles}
    perms = by_id.get(guild_id, 0)
    for rid in member_roles:
        perms |= by_id.get(str(rid), 0)
    if perms & ADMINISTRATOR:
        return -1  # every bit
    by_target = {str(o["id"]): (int(o.get("allow") or 0), int(o.get("deny") or 0)) for o in overwrites}
    allow, deny = by_target.get(guild_id, (0, 0))
    perms = (perms & ~deny) | allow
    allow = deny = 0
    for rid in member_roles:
        a, d = by_target.get(str(rid), (0, 0))
        allow, deny = allow | a, deny | d
    perms = (perms & ~deny) | allow
    a, d = by_target.get(bot_id, (0, 0))
    return (perms & ~d) | a


async def _one(http: Any, bot_id: str, label: str, cid: int) -> Finding:
    try:
        channel: dict[str, Any] = dict(await http.get_channel(cid))
    except (discord.NotFound, discord.Forbidden):
        return Finding("missing", f"{label}: the bot cannot see this channel (a wrong id, a server the bot is not "
                                  "in, or no View Channel permission there)")
    name = f"#{channel['name']}" if channel.get("name") else str(cid)
    guild_id = channel.get("guild_id")
    if guild_id is None:  # a DM: the bot is in it by definition
        return Finding("ok", f"{label}: a direct message channel the bot is in")
    thread = channel.get("type") in _THREADS
    overwrites = channel.get("permission_overwrites") or []
    if thread and channel.get("parent_id"):
        overwrites = (await http.get_channel(int(channel["parent_id"]))).get("permission_overwrites") or []
    guild = await http.get_guild(int(guild_id), with_counts=False)
    member = await http.get_member(int(guild_id), int(bot_id))
    perms = permissions(str(guild_id), guild.get("roles") or [], member.get("roles") or [], bot_id, overwrites)
    send, send_name = (SEND_IN_THREADS, "Send Messages in Threads") if thread else (SEND_MESSAGES, "Send Messages")
    if not perms & VIEW_CHANNEL:
        return Finding("missing", f"{label}: the bot cannot see {name}: give its role View Channel there")
    if not perms & send:
        return Finding("missing", f"{label}: the bot can see {name} but not post: give its role {send_name} there")
    return Finding("ok", f"{label}: the bot can see {name} and post there")


async def check_discord_places(client: discord.Client, places: list[tuple[int, str]]) -> list[Finding]:
    bot_id = str(client.user.id) if client.user else ""
    found: list[Finding] = []
    for index, where in places:
        label = place_label(index, "discord", where)
        try:
            found.append(await _one(client.http, bot_id, label, int(where)))
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            found.append(Finding("missing", f"{label}: the lookup failed ({type(exc).__name__})"))
    return found
