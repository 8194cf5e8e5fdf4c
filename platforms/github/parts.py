"""Posting a reply as numbered parts, each exactly once, wherever GitHub keeps the conversation.

Issue comments (:mod:`.delivery`), discussion comments and review-thread replies all end every
part with the same hidden marker. A recovering reply (a crash between GitHub's answer and
``reply.record``) first asks ``find`` which parts are already there, records them, and posts only
the missing ones.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from bridge.llm.chunking import split_message
from bridge.llm.streaming import last_snapshot
from bridge.types import Outgoing
from platforms.github.delivery import Eyes, final_text, marker
from platforms.github.formatting import neutralise_mentions

log = logging.getLogger(__name__)

Post = Callable[[str], Awaitable[str]]                  # body -> the new comment's id
Find = Callable[[int], Awaitable[dict[int, str]]]       # how many parts -> {part: comment id} found


async def post_parts(reply: Outgoing, snapshots: AsyncIterator[str], *, limit: int, post: Post,
                     find: Find, eyes: Eyes | None = None) -> list[str]:
    """Post the finished text, one comment per part, each part once; the ids of all parts.

    ``eyes``: a 👀 on the message answered while a slow answer is written (where GitHub has reactions).
    """
    if eyes is None:
        return await _post_parts(reply, await last_snapshot(snapshots), limit=limit, post=post, find=find)
    async with eyes.around(recovering=reply.recovering):
        return await _post_parts(reply, await final_text(snapshots, eyes), limit=limit, post=post, find=find)


async def _post_parts(reply: Outgoing, text: str, *, limit: int, post: Post, find: Find) -> list[str]:
    text = neutralise_mentions(text)  # before splitting: it adds characters
    parts = split_message(text, limit)
    posted = list(reply.posted)
    if reply.recovering and len(posted) < len(parts):
        found = await find(len(parts))
        before = len(posted)
        while len(posted) < len(parts) and len(posted) in found:
            posted.append(found[len(posted)])
        if len(posted) > before:
            log.info("github: %d part(s) of %s were posted before a restart; not posting them again",
                     len(posted) - before, reply.key)
            await reply.record(posted)
    for i in range(len(posted), len(parts)):
        posted.append(await post(parts[i] + marker(reply.key, i)))
        await reply.record(posted)
    return posted
