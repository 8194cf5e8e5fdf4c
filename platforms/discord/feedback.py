"""👍/👎 under each final Discord answer (``feedback: true``): two buttons on the answer's last message.

Each button's ``custom_id`` carries the reply's key, so a click names the answer it rates with no
state of ours (it works after a restart too). A click arrives as a component interaction; it is
acknowledged without changing the message (a deferred update) and handed to the core as a
:class:`~bridge.types.Rating`, one per person per answer, the last click counting.
"""

from __future__ import annotations

import discord
from discord.http import handle_message_parameters

from bridge.types import Rating

PREFIX = "bridge_fb"
MAX_CUSTOM_ID = 100  # Discord's limit for a component's custom_id


def buttons(key: str) -> discord.ui.View | None:
    """The two buttons for the answer ``key``; None when the key does not fit in a custom_id."""
    up, down = f"{PREFIX}:up:{key}", f"{PREFIX}:down:{key}"
    if len(down) > MAX_CUSTOM_ID:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(style=discord.ButtonStyle.secondary, emoji="👍", custom_id=up))
    view.add_item(discord.ui.Button(style=discord.ButtonStyle.secondary, emoji="👎", custom_id=down))
    return view


async def add_buttons(channel: discord.PartialMessageable, message_id: int, view: discord.ui.View) -> None:
    """Put the buttons under a message already posted (its text is left as it is)."""
    with handle_message_parameters(view=view) as params:
        await channel._state.http.edit_message(channel.id, message_id, params=params)


def rating_of(interaction: discord.Interaction) -> Rating | None:
    """A click on one of these buttons → the rating it gives; None for any other interaction."""
    if interaction.type is not discord.InteractionType.component or not isinstance(interaction.data, dict):
        return None
    custom_id = interaction.data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id.startswith(PREFIX + ":"):
        return None
    _, verdict, key = custom_id.split(":", 2)
    if verdict not in ("up", "down") or not key:
        return None
    return Rating("discord", key, str(interaction.user.id), 1 if verdict == "up" else -1)
