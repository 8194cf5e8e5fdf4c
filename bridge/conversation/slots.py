"""Answer slots (``llm.max_concurrent``): how many answers the model writes at once.

A slot is taken before the budget check (so the check sees every answer finished before it) and
given back as soon as the model is done and the answer's cost is stored — not when the platform
has shown it. Delivery can take minutes (a platform's 429 storm); holding slots through it would
let one slow platform stop the answers of every other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Slot:
    """One held slot; :meth:`release` may be called early, and more than once."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


class Slots:
    def __init__(self, size: int) -> None:
        self._semaphore = asyncio.Semaphore(size)

    @asynccontextmanager
    async def held(self) -> AsyncIterator[Slot]:
        """Wait for a slot; it is given back on leaving, unless :meth:`Slot.release` did it earlier."""
        await self._semaphore.acquire()
        slot = Slot(self._semaphore)
        try:
            yield slot
        finally:
            slot.release()
