"""The relay outbox worker: posts every stored copy, once, in order per place.

Each place is drained by one task at a time, oldest copy first (a lease in the store keeps other
replicas off the same place meanwhile), so copies appear in the order the bridge stored their
messages. A copy is claimed (its attempt counted) before it is posted and its platform ids are
recorded as soon as they exist; a copy claimed before but never recorded is looked for on the
platform before it is posted again. Rate limits are waited out by each platform's client; a copy
that keeps failing is retried with a growing pause, then given up after ``MAX_ATTEMPTS`` (the
place then moves on: one bad copy must not silence a room).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from bridge.metrics import Metrics
from bridge.platform import Platform
from bridge.relay.copies import Copy, make_copy
from bridge.store.relays import Relay
from bridge.store.store import Store
from bridge.types import Outgoing

log = logging.getLogger(__name__)

POLL_S = 0.25        # how often stored copies are looked for without a wake-up (other replicas' rows)
LEASE_S = 90.0       # one copy's post, rate limits included, fits in this; then another replica may take it
MAX_ATTEMPTS = 8     # tries of one copy before it is given up
RETRY_S = 1.0        # the first pause after a failed try; doubled each time, at most MAX_RETRY_S
MAX_RETRY_S = 60.0

Relaying = Callable[[Copy, Outgoing], Awaitable[None]]


async def _once(text: str) -> AsyncIterator[str]:
    yield text


class RelayWorker:
    def __init__(self, store: Store, platforms: Mapping[str, Platform], metrics: Metrics, *,
                 poll_s: float = POLL_S, retry_s: float = RETRY_S) -> None:
        self._store = store
        self._platforms = platforms
        self._metrics = metrics
        self._poll_s = poll_s
        self._retry_s = retry_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """New copies were stored (or an answer released its copies): look now, not at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Begin posting. On SQLite this process is the only one: a dead process's leases are dropped
        now; on PostgreSQL they run out (``LEASE_S``), as another replica may still hold them."""
        if self._store.pg is None:
            await self._store.relay_forget_claims()
        self._task = asyncio.create_task(self._run(), name="relay")

    async def stop(self) -> None:
        """Stop posting; a copy cut short keeps its record and is looked for at the next start."""
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def idle(self) -> bool:
        """Nothing waits to be posted (tests and shutdown look at it)."""
        return not self._running and not await self._store.relay_places_due()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                places = await self._store.relay_places_due()
            except Exception as exc:
                log.warning("relay: cannot read the copies to post (%s)", type(exc).__name__)
                places = []
            for place in places:
                if place not in self._running and place.partition(":")[0] in self._platforms:
                    self._running[place] = asyncio.create_task(self._drain(place), name=f"relay {place}")
            waiter = asyncio.ensure_future(self._wake.wait())
            try:  # not wait_for: on Python 3.11 it can swallow a cancellation that races the wake-up
                await asyncio.wait({waiter}, timeout=self._poll_s)
            finally:
                waiter.cancel()

    async def _drain(self, place: str) -> None:
        pause = self._retry_s
        try:
            while True:
                relay = await self._store.claim_relay(place, self.owner, LEASE_S)
                if relay is None:
                    return
                problem = await self._post(relay)
                if problem is None:
                    await self._store.relay_done(relay.id, "delivered")
                    self._metrics.relayed.labels(platform=relay.target.platform, outcome="posted").inc()
                    pause = self._retry_s
                elif relay.attempts >= MAX_ATTEMPTS:
                    log.error("relay: giving up copy %s to %s after %d attempts (%s)", relay.id, place,
                              relay.attempts, problem)
                    await self._store.relay_done(relay.id, "failed", problem)
                    self._metrics.relayed.labels(platform=relay.target.platform, outcome="failed").inc()
                else:
                    log.info("relay: copy %s to %s failed (%s); trying again in %.0f s", relay.id, place, problem,
                             pause)
                    await self._store.relay_release(relay.id, self.owner)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, MAX_RETRY_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store failed: the next poll starts this place again
            log.warning("relay: posting to %s stopped (%s)", place, type(exc).__name__)
        finally:
            self._running.pop(place, None)

    async def _post(self, relay: Relay) -> str | None:
        """Post one copy; None when it is on the platform, else why not (never a secret: a type name)."""
        platform = self._platforms[relay.target.platform]
        target = relay.target
        threaded = bool(getattr(platform, "threads_copies", False))
        if threaded:  # one thread per share in the channel: the first one used
            thread = await self._store.relay_thread(relay.share, relay.place)
            if thread:
                target = dataclasses.replace(target, thread=thread)
        recorded: list[str] = list(relay.platform_ids)

        async def record(ids: list[str]) -> None:
            recorded[:] = ids
            await self._store.relay_posted(relay.id, ids)

        out = Outgoing(thread=target, key=f"relay:{relay.id}", posted=relay.platform_ids, record=record,
                       recovering=relay.attempts > 1)
        files = (await self._store.files([relay.message_id])).get(relay.message_id, []) \
            if relay.what in ("message", "edit") else []
        copy = make_copy(relay, files)
        if relay.copy_of is not None:
            return await self._change(platform, relay, copy)
        custom: Any = getattr(platform, "relay", None)
        try:
            if custom is not None:
                await custom(copy, out)
            else:
                await platform.send(out, _once(copy.text))
        except Exception as exc:  # its SDK's text may carry URLs or tokens: only the type is shown
            return type(exc).__name__
        if threaded and target.thread == target.channel and recorded:
            await self._store.set_relay_thread(relay.share, relay.place, recorded[0])
        return None

    async def _change(self, platform: Platform, relay: Relay, copy: Copy) -> str | None:
        """An edit or deletion of a copy already posted; a copy never posted has nothing to change."""
        assert relay.copy_of is not None
        original = await self._store.relay(relay.copy_of)
        change: Any = getattr(platform, "relay_change", None)
        if original is None or original.state != "delivered" or not original.platform_ids or change is None:
            return None
        out = Outgoing(thread=original.target, key=f"relay:{original.id}", posted=original.platform_ids)
        try:
            await change(copy, out, deleted=relay.what == "delete")
        except Exception as exc:  # its SDK's text may carry URLs or tokens: only the type is shown
            return type(exc).__name__
        return None
