"""One gateway owner among the replicas, elected through a PostgreSQL advisory lock.

Discord allows a bot one gateway connection (per shard): with several replicas, the one holding a
session-level advisory lock — on a connection of its own, so the lock lives exactly as long as that
connection — runs the gateway; the others sign in over REST only (replies go out from whichever
replica answers) and try for the lock every ``lease_s / 3``. When the owner dies its connection
closes, PostgreSQL frees the lock, and the next try wins: failover within the lease. An owner that
loses its database connection stops its gateway first, so there are never two for long (and the
events table stores a message once even then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol, cast

import asyncpg
from prometheus_client import Gauge

from bridge.metrics import Metrics
from bridge.platform import Inbox, Platform
from bridge.store.postgres import PgDatabase

log = logging.getLogger(__name__)

ELECTED = {"discord": 0x6272_6964_6701}  # platforms with one connection per bot → their lock key


class RestCapable(Platform, Protocol):
    async def login(self) -> None:
        """Sign in for sending only, without taking events."""


def elected(name: str, platform: Platform) -> RestCapable | None:
    """The platform, when it takes a single connection per bot and can send without it."""
    return cast(RestCapable, platform) if name in ELECTED and hasattr(platform, "login") else None


class GatewayElection:
    """Run ``platform``'s gateway on this replica while it holds the lock; REST only otherwise."""

    def __init__(self, name: str, platform: RestCapable, pg: PgDatabase, *, lease_s: float, metrics: Metrics) -> None:
        self.name = name
        self._platform = platform
        self._pg = pg
        self._key = ELECTED[name]
        self._retry_s = max(0.2, lease_s / 3)
        self.owner = False
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._inbox: Inbox | None = None
        self._gauge = Gauge("bridge_gateway_owner", "1 while this replica runs the platform's gateway",
                            ["platform"], registry=metrics.registry)
        self._gauge.labels(platform=name).set_function(lambda: 1 if self.owner else 0)

    async def start(self, inbox: Inbox) -> None:
        """Sign in (a refused token fails ``bridge run`` as usual), try once now, then keep trying."""
        self._inbox = inbox
        await self._platform.login()
        with contextlib.suppress(Exception):
            await self._try_once()
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-gateway-election")

    async def _try_once(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._pg.dedicated()
        if not await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
            return
        assert self._inbox is not None
        try:
            await self._platform.start(self._inbox)
        except Exception:
            await self._conn.execute("SELECT pg_advisory_unlock($1)", self._key)
            raise
        self.owner = True
        log.info("%s: this replica owns the gateway", self.name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._retry_s)
            try:
                if self.owner:
                    assert self._conn is not None
                    await self._conn.fetchval("SELECT 1", timeout=self._retry_s)  # still holding it?
                else:
                    await self._try_once()
            except Exception as exc:
                log.warning("%s gateway election: %s", self.name, type(exc).__name__)
                await self._step_down()

    async def _step_down(self) -> None:
        """Lost the database (and so, maybe, the lock): stop the gateway, keep sending over REST."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
        if not self.owner:
            return
        self.owner = False
        log.warning("%s: gave up the gateway (database connection lost)", self.name)
        try:
            await self._platform.stop()
            await self._platform.login()
        except Exception as exc:
            log.warning("%s: signing in again failed (%s)", self.name, type(exc).__name__)

    def status(self, inner: dict[str, Any]) -> dict[str, Any]:
        """The platform's ``/healthz`` entry, with this replica's role."""
        if self.owner:
            return {**inner, "gateway": "owner"}
        return {"ok": True, "gateway": "standby (sends over REST; another replica owns the gateway)"}

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
        self.owner = False
