"""Showing a reply while it is written: post early, edit in place, continue in new messages.

Slack and Discord both work this way, so the logic lives here once and each adapter supplies two
small functions: ``post(text) -> message id`` and ``edit(message id, text)``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from bridge.chunking import split_message

M = TypeVar("M")


async def render_stream(
    snapshots: AsyncIterator[str],
    *,
    post: Callable[[str], Awaitable[M]],
    edit: Callable[[M, str], Awaitable[None]],
    limit: int,
    interval: float,
    placeholder: str | None = None,
) -> list[M]:
    """Render cumulative snapshots as one or more messages; return the ids of the messages used.

    The first text is shown as soon as it arrives; after that, edits happen at most once per
    ``interval`` seconds (the platforms' rate limits are per channel), and always once more for the
    final text. When the text outgrows ``limit`` the current message
    is finished and the rest continues in a new one, split by :func:`split_message`.
    """
    posted: list[tuple[M, str]] = []
    if placeholder:
        posted.append((await post(placeholder), placeholder))
    last_render = float("-inf")  # the first text goes out at once

    async def render(text: str) -> None:
        for i, part in enumerate(split_message(text, limit)):
            if i < len(posted):
                if posted[i][1] != part:
                    await edit(posted[i][0], part)
                    posted[i] = (posted[i][0], part)
            else:
                posted.append((await post(part), part))

    final = ""
    async for snapshot in snapshots:
        final = snapshot
        if snapshot.strip() and time.monotonic() - last_render >= interval:
            await render(snapshot)
            last_render = float("-inf")  # the first text goes out at once
    await render(final if final.strip() else "(no reply)")
    return [m for m, _ in posted]


async def last_snapshot(snapshots: AsyncIterator[str]) -> str:
    """For platforms that post only the finished text (GitHub)."""
    final = ""
    async for snapshot in snapshots:
        final = snapshot
    return final
