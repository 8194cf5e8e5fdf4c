"""Crashing a Bridge in the window that matters: the platform accepted a post, the store never heard.

A SIGKILL there is what duplicates replies; here the Bridge hangs in ``record`` and is then stopped
(its work cancelled, as a killed process's would be lost), and a new Bridge on the same file is the
restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bridge.app import Bridge
from bridge.store.store import Store


def crash_on_record(bridge: Bridge, *, after: int = 0) -> asyncio.Event:
    """Let ``after`` records through, then hang in ``record`` as a killed process would never return.

    Returns an event set when the hang begins (the platform has accepted the post by then).
    """
    assert bridge.store is not None
    real: Callable[[int, list[str]], Awaitable[None]] = bridge.store.record_posted
    hanging = asyncio.Event()
    calls = 0

    async def record(message_id: int, ids: list[str]) -> None:
        nonlocal calls
        calls += 1
        if calls > after:
            hanging.set()
            await asyncio.Event().wait()
        await real(message_id, ids)

    bridge.store.record_posted = record  # type: ignore[method-assign]
    return hanging


async def statuses(store: Store) -> list[str]:
    return [m.status for s in await store.sessions() for m in await store.messages(s.session.id)]


async def settled(bridge: Bridge, done: Callable[[list[str]], bool], timeout: float = 10) -> list[str]:
    """The statuses of every stored message, once ``done(statuses)``; fails after ``timeout`` seconds."""
    assert bridge.store is not None
    store = bridge.store
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done(now := await statuses(store)):
        if loop.time() > deadline:
            raise AssertionError(f"messages did not settle within {timeout} s: {now}")
        await asyncio.sleep(0.02)
    return now


async def answered(bridge: Bridge, count: int = 1) -> None:
    await settled(bridge, lambda now: now.count("answered") >= count)
