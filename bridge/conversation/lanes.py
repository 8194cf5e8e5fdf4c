"""Ordered per-session work: one session's messages in arrival order, sessions side by side.

Each session with work has a queue and one worker task; the worker ends when its queue is empty,
so idle sessions cost nothing (nonebot2's single-session idea, without a lock per message).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)


class LaneSet(Protocol):
    """What the router and the app need from lanes: in-memory here, claimed across replicas in
    :mod:`bridge.replicas.lanes` (PostgreSQL)."""

    open: asyncio.Event

    def submit(self, session_id: int, message_id: int) -> None: ...

    @property
    def busy(self) -> int: ...

    async def drain(self, timeout: float) -> bool: ...


class Lanes:
    def __init__(self, handle: Callable[[int], Awaitable[None]]) -> None:
        self._handle = handle
        self._queues: dict[int, asyncio.Queue[int]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._queued: set[int] = set()
        # Closed until the platforms are up: messages left from the last run are queued first, so
        # they keep their place ahead of anything new in the same session.
        self.open = asyncio.Event()

    def submit(self, session_id: int, message_id: int) -> None:
        if message_id in self._queued:  # recovery and intake can meet on the same message
            return
        self._queued.add(message_id)
        queue = self._queues.setdefault(session_id, asyncio.Queue())
        queue.put_nowait(message_id)
        if session_id not in self._workers:
            self._workers[session_id] = asyncio.create_task(self._work(session_id, queue),
                                                            name=f"session-{session_id}")

    async def _work(self, session_id: int, queue: asyncio.Queue[int]) -> None:
        try:
            await self.open.wait()
            while not queue.empty():
                message_id = queue.get_nowait()
                try:
                    await self._handle(message_id)
                except Exception:
                    log.exception("answering message %s failed", message_id)
                finally:
                    self._queued.discard(message_id)
        finally:
            # No await between the emptiness check and this: nothing can slip in unseen.
            self._queues.pop(session_id, None)
            self._workers.pop(session_id, None)

    @property
    def busy(self) -> int:
        return len(self._queued)

    async def drain(self, timeout: float) -> bool:
        """Wait for queued work; after ``timeout`` cancel it (it stays pending in the store)."""
        if not self.open.is_set():  # never started: nothing is in flight, leave it all pending
            timeout = 0
        deadline = asyncio.get_running_loop().time() + timeout
        while self._workers:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            await asyncio.wait(list(self._workers.values()), timeout=remaining)
        leftover = list(self._workers.values())
        for task in leftover:
            task.cancel()
        if leftover:
            await asyncio.gather(*leftover, return_exceptions=True)
        return not leftover
