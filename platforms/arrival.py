"""Arrival order per conversation, kept across the slow steps between receiving an event and storing it.

Slack and GitHub deliver events concurrently (one HTTP request or Socket Mode envelope each), and
some need the network before they can be stored: a Slack name lookup (up to 2 s), a GitHub team
check (up to 5 s). Without this, a follow-up whose lookup was quick was stored before the question
it refers to, and the model read them the wrong way round. An adapter takes a :class:`Place` the
moment an event arrives (no ``await`` in between), does its slow work concurrently with the others,
then waits for its :meth:`Place.turn` before handing the message to the core and
:meth:`Place.release`\\ s it once the core has it (or it was dropped). Different conversations never
wait for each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from types import TracebackType


class Place:
    """One event's place in its conversation's queue."""

    def __init__(self, before: asyncio.Future[None] | None, done: asyncio.Future[None]) -> None:
        self._before = before
        self._done = done

    async def turn(self) -> None:
        """Wait until every event that arrived earlier in this conversation is handed over (or dropped)."""
        if self._before is not None and not self._before.done():
            await asyncio.shield(self._before)  # a cancelled waiter must not cancel the one before it

    def release(self) -> None:
        """Let the next event go; idempotent. Released before its turn (cancelled, failed early), the
        next one still waits for every earlier one."""
        if self._done.done():
            return
        before = self._before
        if before is None or before.done():
            self._done.set_result(None)
        else:
            before.add_done_callback(self._after_before)

    def _after_before(self, _: asyncio.Future[None]) -> None:
        if not self._done.done():
            self._done.set_result(None)

    async def __aenter__(self) -> Place:
        await self.turn()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()


class Arrivals:
    """The queues, one per conversation key; a key is forgotten once its last event is released."""

    def __init__(self) -> None:
        self._last: dict[Hashable, asyncio.Future[None]] = {}
        self.waiting = 0  # places taken and not yet released, in every conversation

    def place(self, key: Hashable) -> Place:
        """Take the next place for ``key``; call this before anything that can wait."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        before = self._last.get(key)
        self._last[key] = done
        self.waiting += 1

        def forget(_: asyncio.Future[None]) -> None:
            self.waiting -= 1
            if self._last.get(key) is done:
                del self._last[key]

        done.add_done_callback(forget)
        return Place(before, done)
