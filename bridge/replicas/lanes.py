"""Session lanes shared by several replicas on one PostgreSQL database.

The same promise as :class:`bridge.conversation.lanes.Lanes` — one session's messages in arrival order,
sessions side by side — but a session's lane runs on whichever replica holds its lease
(:mod:`bridge.store.claims`), and its queue is the database: the worker answers the session's oldest
pending message, then the next, and releases the lease when none is left.

Work is found without polling: :meth:`submit` (a message this replica stored) and ``NOTIFY
bridge_pending`` (one any replica stored, sent by :meth:`bridge.store.store.Store.accept` on commit)
wake the claimer at once. A slow safety sweep, timed to the next lease that runs out, takes over
the sessions of a replica that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from prometheus_client import Gauge

from bridge.metrics import Metrics
from bridge.store.claims import CHANNEL, Claims
from bridge.store.fencing import CURRENT, PROOF_SHARE, Lease, LeaseLost
from bridge.store.postgres import PgDatabase

log = logging.getLogger(__name__)

MAX_SESSIONS = 64  # sessions one replica works on at once; the rest are left for the others


def replica_id() -> str:
    """Unique per process, readable in ``claimed_by``: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class ClaimedLanes:
    """:class:`bridge.conversation.lanes.Lanes` for PostgreSQL: claim, work in order, renew, release."""

    def __init__(self, handle: Callable[[int], Awaitable[None]], pg: PgDatabase, *, lease_s: float,
                 metrics: Metrics, me: str | None = None, max_sessions: int = MAX_SESSIONS) -> None:
        self._handle = handle
        self._pg = pg
        self.me = me or replica_id()
        self.claims = Claims(pg, self.me, lease_s)
        self.lease_s = lease_s
        self._max = max_sessions
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._leases: dict[int, Lease] = {}  # the claim each worker works under (its fencing token)
        self._wanted: set[int] = set()
        self._sweep = True
        self._wake = asyncio.Event()
        self._stopping = False
        self._in_flight = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self.open = asyncio.Event()
        self._claimed = Gauge("bridge_sessions_claimed", "Sessions whose lease this replica holds",
                              registry=metrics.registry)
        self._claimed.set_function(lambda: len(self._workers))
        Gauge("bridge_replica_info", "This replica (PostgreSQL lanes)", ["replica"],
              registry=metrics.registry).labels(replica=self.me).set(1)

    # ---------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """LISTEN before anything can be missed; claim once :attr:`open` is set."""
        await self._listen()
        self._tasks = [asyncio.create_task(self._claimer(), name="claimer"),
                       asyncio.create_task(self._renewer(), name="lease-renewer"),
                       asyncio.create_task(self._keep_listening(), name="pending-listener")]

    async def _listen(self) -> None:
        conn = await self._pg.dedicated()
        await conn.add_listener(CHANNEL, self._notified)
        self._listener = conn
        self._sweep = True  # anything sent while we were not listening
        self._wake.set()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self._wanted.add(int(payload))
        else:
            self._sweep = True
        self._wake.set()

    async def _keep_listening(self) -> None:
        """The LISTEN connection is checked every few seconds and reopened if it was lost."""
        while True:
            await asyncio.sleep(min(5.0, self.lease_s / 3))
            conn = self._listener
            if conn is not None and not conn.is_closed():
                continue
            try:
                await self._listen()
                log.info("listening for new work again")
            except Exception as exc:
                log.warning("cannot listen for new work (%s); retrying", type(exc).__name__)

    def submit(self, session_id: int, message_id: int) -> None:
        """A message was stored (here, or found at start): try to claim its session."""
        self._wanted.add(session_id)
        self._wake.set()

    @property
    def busy(self) -> int:
        return self._in_flight

    @property
    def claimed(self) -> int:
        return len(self._workers)

    def role(self) -> dict[str, Any]:
        return {"replica": self.me, "sessions_claimed": len(self._workers), "lease_s": self.lease_s}

    # ------------------------------------------------------------------------------ claiming

    async def _claimer(self) -> None:
        await self.open.wait()
        while not self._stopping:
            try:
                expiry = await self.claims.next_expiry_s()
            except Exception as exc:
                log.warning("looking for expired leases failed (%s)", type(exc).__name__)
                expiry = None
            timeout = self.lease_s / 3 if expiry is None else max(0.05, min(self.lease_s / 3, expiry + 0.05))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            if self._stopping:
                return
            if not self._wake.is_set():
                self._sweep = True  # the safety sweep: a dead replica's leases ran out
            self._wake.clear()
            await self._claim_now()

    async def _claim_now(self) -> None:
        sweep, wanted = self._sweep, self._wanted - self._workers.keys()
        self._sweep, self._wanted = False, set()
        room = self._max - len(self._workers)
        if room <= 0:
            self._sweep = True  # full: look again when a lane ends
            return
        sent_at = time.monotonic()  # the lease is proven from when the claim was sent, not answered
        try:
            got = await self.claims.claim(None if sweep else wanted, room, busy=self._workers.keys())
        except Exception as exc:
            log.warning("claiming sessions failed (%s); retrying", type(exc).__name__)
            self._sweep = True
            await asyncio.sleep(1.0)
            self._wake.set()
            return
        for session_id, generation in got.items():
            if session_id not in self._workers:
                lease = Lease(session_id, self.me, generation, sent_at + self.lease_s * PROOF_SHARE)
                self._leases[session_id] = lease
                self._workers[session_id] = asyncio.create_task(self._work(lease), name=f"session-{session_id}")
        if len(got) == room:  # maybe more: keep going while there is room
            self._sweep = True
            self._wake.set()

    # ------------------------------------------------------------------------------- working

    async def _work(self, lease: Lease) -> None:
        """Answer the session's work in order while the lease is ours. Everything done from here (store
        writes, platform calls, tasks started) carries the lease and stops once it is lost."""
        session_id = lease.session_id
        CURRENT.set(lease)
        tried: set[int] = set()
        try:
            while not self._stopping:
                message_id = await self.claims.next_pending(session_id, tried)
                if message_id is None:
                    if await self.claims.release(session_id, generation=lease.generation):
                        self._workers.pop(session_id, None)  # at once: a new claim may start a new lane
                        if self._leases.get(session_id) is lease:
                            del self._leases[session_id]
                        # Stored between our last look and the release? Then claim it again.
                        if await self.claims.has_pending(session_id):
                            self._wanted.add(session_id)
                            self._wake.set()
                        return
                    if await self.claims.next_pending(session_id, tried) is None:
                        # Only messages this claim could not finish are left: the safety sweep retries them.
                        await self.claims.release(session_id, force=True, generation=lease.generation)
                        return
                    continue
                tried.add(message_id)
                self._in_flight += 1
                try:
                    await self._handle(message_id)
                except LeaseLost:
                    raise
                except Exception:
                    log.exception("answering message %s failed", message_id)
                finally:
                    self._in_flight -= 1
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            log.warning("session %s: the lease could not be proven; stopped working on it (another replica "
                        "continues it)", session_id)
        except Exception as exc:
            log.warning("session %s: lost the database (%s); its lease will run out", session_id, type(exc).__name__)
        finally:
            if self._workers.get(session_id) is asyncio.current_task():
                del self._workers[session_id]
            if self._leases.get(session_id) is lease:
                del self._leases[session_id]
            if self._sweep or len(self._workers) == self._max - 1:
                self._sweep = True
                self._wake.set()

    async def _renewer(self) -> None:
        """Renew every lease_s/3, each renew bounded by lease_s/3: a hung renew (a half-open connection,
        a frozen VM) cannot outlast the lease. Work whose lease is taken over, or can no longer be proven
        (:class:`~bridge.store.fencing.Lease`), is stopped."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            held = {sid: lease.generation for sid, lease in self._leases.items() if sid in self._workers}
            sent_at = time.monotonic()
            try:
                kept = await self.claims.renew(held, timeout=self.lease_s / 3)
            except Exception as exc:
                log.warning("renewing leases failed (%s)", type(exc).__name__)
                now = time.monotonic()
                kept = {sid for sid in held if (lease := self._leases.get(sid)) and lease.proven_until > now}
            else:
                for session_id in kept:
                    if (lease := self._leases.get(session_id)) is not None and lease.generation == held[session_id]:
                        lease.prove(sent_at, self.lease_s)
            for session_id in held.keys() - kept:
                task = self._workers.get(session_id)
                lease = self._leases.get(session_id)
                if task is not None and lease is not None and lease.generation == held[session_id]:
                    log.warning("session %s: lease lost or unproven; another replica continues it", session_id)
                    task.cancel()

    async def drain(self, timeout: float) -> bool:
        """Finish the answers in flight (up to ``timeout``), then give every lease back for the others."""
        self._stopping = True
        self._wake.set()
        if not self.open.is_set():
            timeout = 0
        workers = list(self._workers.values())
        if workers:
            await asyncio.wait(workers, timeout=timeout)
        leftover = [t for t in self._workers.values() if not t.done()]
        for task in leftover:
            task.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*leftover, *self._tasks, return_exceptions=True)
        try:
            released = await self.claims.release_all()
            if released:
                log.info("gave %d session(s) back to the other replicas", released)
        except Exception as exc:
            log.warning("could not give the leases back (%s); they run out in %g s", type(exc).__name__,
                        self.lease_s)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
        return not leftover
