"""Showing a reply while it is written: post early, edit in place, continue in new messages.

Slack and Discord both work this way, so the logic lives here once and each adapter supplies two
small functions: ``post(text) -> message id`` and ``edit(message id, text)``.

Reading the model and writing to the platform run side by side: the reader keeps only the newest
snapshot, the writer shows it at most once per ``interval`` (the platforms' edit limits are per
channel: Slack ~1 edit/s, Discord 5 edits/5 s), so a slow or rate-limited edit never holds the
model's stream back, and a fast stream never floods the platform.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from bridge.llm.chunking import split_message

EMPTY_REPLY = "(no reply)"
SUPERSEDED = "…"  # a message a restarted answer no longer needs


class _Latest:
    """The newest snapshot and whether the stream has ended; the writer waits on ``changed``, or
    only on ``ended`` while it waits out the interval (not woken for every chunk in between)."""

    def __init__(self) -> None:
        self.text = ""
        self.done = False
        self.error: BaseException | None = None
        self.changed = asyncio.Event()
        self.ended = asyncio.Event()


async def _read(snapshots: AsyncIterator[str], latest: _Latest) -> None:
    try:
        async for snapshot in snapshots:
            latest.text = snapshot
            latest.changed.set()
    except Exception as exc:  # handed to the writer, which re-raises it in the caller's task
        latest.error = exc
    finally:
        latest.done = True
        latest.changed.set()
        latest.ended.set()


async def render_stream(
    snapshots: AsyncIterator[str],
    *,
    post: Callable[[str], Awaitable[str]],
    edit: Callable[[str, str], Awaitable[None]],
    limit: int,
    interval: float,
    placeholder: str | None = None,
    posted: Sequence[str] = (),
    record: Callable[[list[str]], Awaitable[None]] | None = None,
    final: Callable[[str], None] | None = None,
) -> list[str]:
    """Render cumulative snapshots as one or more messages; return the ids of the messages used.

    The first text is shown as soon as it arrives; after that at most one render per ``interval``
    seconds, and always one more for the final text. When the text outgrows ``limit`` the current
    message is finished and the rest continues in a new one, split by :func:`split_message`.
    ``posted`` are messages an earlier attempt already posted: they are edited, not posted again.
    ``record`` is told the full list of ids each time a message is posted; ``final``, the final
    text as rendered (:data:`EMPTY_REPLY` for an empty answer).
    """
    shown: list[tuple[str, str | None]] = [(mid, None) for mid in posted]  # (id, text shown; None: unknown)

    async def add(text: str) -> None:
        shown.append((await post(text), text))
        if record is not None:
            await record([mid for mid, _ in shown])

    async def render(text: str, *, final: bool) -> None:
        parts = split_message(text, limit)
        for i, part in enumerate(parts):
            if i < len(shown):
                if shown[i][1] != part:
                    await edit(shown[i][0], part)
                    shown[i] = (shown[i][0], part)
            else:
                await add(part)
        if final:  # a restarted answer can be shorter than what an earlier attempt showed
            for i in range(len(parts), len(shown)):
                if shown[i][1] != SUPERSEDED:
                    await edit(shown[i][0], SUPERSEDED)
                    shown[i] = (shown[i][0], SUPERSEDED)

    if placeholder and not shown:
        await add(placeholder)
    latest = _Latest()
    reader = asyncio.create_task(_read(snapshots, latest))
    loop = asyncio.get_running_loop()
    try:
        last_render = float("-inf")  # the first text goes out at once
        rendered = ""
        while not latest.done:
            await latest.changed.wait()
            latest.changed.clear()
            wait = last_render + interval - loop.time()
            if wait > 0 and not latest.done:  # too soon: wait out the interval, or the end of the stream
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await latest.ended.wait()
            if latest.done:
                break
            if latest.text.strip() and latest.text != rendered:
                await render(latest.text, final=False)
                rendered = latest.text
                last_render = loop.time()
        await reader
        if latest.error is not None:
            raise latest.error
        text = latest.text if latest.text.strip() else EMPTY_REPLY
        await render(text, final=True)
        if final is not None:
            final(text)
    finally:
        if not reader.done():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    return [mid for mid, _ in shown]


async def last_snapshot(snapshots: AsyncIterator[str]) -> str:
    """For platforms that post only the finished text (GitHub)."""
    final = ""
    async for snapshot in snapshots:
        final = snapshot
    return final
