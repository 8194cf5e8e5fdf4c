"""The bridge assembled: config → store, LLM, personas, platforms, router, server; and its lifecycle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from bridge.config import Config, ConfigError
from bridge.conversation.lanes import Lanes, LaneSet
from bridge.conversation.ratings import Ratings
from bridge.conversation.responder import Responder
from bridge.conversation.router import Router
from bridge.llm.client import LLMClient
from bridge.llm.tokens import warm_up
from bridge.metrics import Metrics
from bridge.personas import Persona, load_personas
from bridge.platform import Platform, load_factory
from bridge.policy.access import Access
from bridge.relay.worker import RelayWorker
from bridge.replicas.gateway import GatewayElection, elected
from bridge.replicas.lanes import ClaimedLanes
from bridge.server import Server, build_app
from bridge.store.files import open_store
from bridge.store.store import Store
from bridge.tools.catalog import ToolManager
from bridge.types import RatingSink

log = logging.getLogger(__name__)

EVENT_MEMORY_S = 14 * 24 * 3600  # dedupe ids older than this are forgotten (platforms redeliver within days)
PRUNE_EVERY_S = 3600.0
CHECKPOINT_EVERY_S = 1.0
# Readiness: while idle, the LLM is probed (GET /models) when nothing succeeded for this long...
LLM_PROBE_INTERVAL_S = 30.0
# ...the store gets one small real write when nothing was written for this long (or the last write failed)...
STORE_PROBE_INTERVAL_S = 10.0
# ...and a failure of these kinds, newer than the last success, makes /readyz answer 503.
_LLM_DOWN = ("unreachable", "timeout", "server", "auth", "quota")


def check_personas(config: Config, personas: dict[str, Persona]) -> None:
    """Every persona named in the config must exist: found at start, not at the first message."""
    problems = []
    if config.default_persona not in personas:
        problems.append(f"default_persona: no persona {config.default_persona!r} in {config.personas_dir}")
    for i, rule in enumerate(config.channels):
        if rule.persona and rule.persona not in personas:
            problems.append(f"channels.{i}.persona: no persona {rule.persona!r} in {config.personas_dir} "
                            f"(have: {', '.join(sorted(personas)) or 'none'})")
    for persona in (personas[n] for n in sorted(bound_personas(config)) if n in personas):
        for name in persona.tools:
            if name not in config.tools:
                problems.append(f"{config.personas_dir / persona.name}.yaml: tools: {name!r} is not under the "
                                f"top-level tools: (have: {', '.join(sorted(config.tools)) or 'none'})")
    if problems:
        raise ConfigError(config.source, problems)


def bound_personas(config: Config) -> set[str]:
    """The personas channels answer as. Another persona (chosen with /persona, or `bridge chat --persona`)
    may name a tool server this config lacks: it is then offered the tools that exist."""
    return {rule.persona or config.default_persona for rule in config.channels} | {config.default_persona}


def wired_tools(config: Config, personas: dict[str, Persona]) -> set[str]:
    """The tool servers the bound personas use: started with the bridge (the rest on first use)."""
    return {name for p in bound_personas(config) if p in personas for name in personas[p].tools}


class Bridge:
    """One running bridge. ``start`` and ``stop`` are what ``bridge run`` and the tests call."""

    def __init__(self, config: Config, *, platforms: dict[str, Platform] | None = None,
                 shutdown_grace_s: float = 20.0, serve_http: bool = True,
                 llm_probe_interval_s: float = LLM_PROBE_INTERVAL_S) -> None:
        self.config = config
        self.metrics = Metrics()
        self.personas = load_personas(config.personas_dir)
        check_personas(config, self.personas)
        if platforms is None:
            platforms = {name: load_factory(name)(settings, config)
                         for name, settings in config.platforms.enabled().items()}
        self.platforms = platforms
        self.shutdown_grace_s = shutdown_grace_s
        self.serve_http = serve_http
        self.store: Store | None = None
        self.llm: LLMClient | None = None
        self.router: Router | None = None
        self.lanes: LaneSet | None = None
        self.replica: ClaimedLanes | None = None  # PostgreSQL: this replica's share of the sessions
        self.elections: dict[str, GatewayElection] = {}  # PostgreSQL: one gateway owner among the replicas
        self.server: Server | None = None
        self.responder: Responder | None = None
        self.tools: ToolManager | None = None
        self.relay: RelayWorker | None = None  # relayed copies (shares with relay: true)
        self._started = False
        self._pruner: asyncio.Task[None] | None = None
        self._llm_probe_interval_s = llm_probe_interval_s
        self._llm_probe: asyncio.Task[None] | None = None
        self.store_probe_interval_s = STORE_PROBE_INTERVAL_S
        self._store_probe: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.store = await open_store(self.config)
        self._pruner = asyncio.create_task(self._maintain(), name="store-maintenance")
        self._store_probe = asyncio.create_task(self._probe_store(), name="store-probe")
        # Token vocabularies take a moment to load: in a thread now, not on the loop in the middle of
        # the first webhook (every other request would wait behind it).
        await asyncio.to_thread(warm_up, self.config.llm.model, *{p.model for p in self.personas.values() if p.model})
        self.llm = LLMClient(self.config.llm, self.metrics)
        if self.config.tools:  # in the background: a server that is down does not hold the bridge up
            self.tools = ToolManager(self.config.tools, self.config.base_dir)
            self.tools.start(wired_tools(self.config, self.personas))
        self.responder = Responder(self.config, self.store, self.llm, self.personas, self.platforms, self.metrics,
                                   self.tools)
        self.relay = RelayWorker(self.store, self.platforms, self.metrics)
        handle = self._handle
        if self.store.pg is not None:  # several replicas may share the database: lanes follow the leases
            self.replica = ClaimedLanes(handle, self.store.pg, lease_s=self.config.storage.lease_s,
                                        metrics=self.metrics)
            await self.replica.start()
            self.lanes = self.replica
        else:
            self.lanes = Lanes(handle)
        self.router = Router(self.config, self.store, self.lanes, self.metrics, Access(self.config, self.platforms))
        ratings = Ratings(self.store, self.metrics)
        for platform in self.platforms.values():
            accept: Callable[[RatingSink], None] | None = getattr(platform, "accept_ratings", None)
            if accept is not None:
                accept(ratings.record)
        self.router.on_relay = self.relay.wake
        routes = [r for p in self.platforms.values() for r in p.routes()]
        app = build_app(routes=routes, health=self.health, metrics=self.metrics,
                        max_body_bytes=self.config.server.max_body_bytes, ready=self.ready)
        if self.serve_http:
            self.server = Server(app, self.config.server.host, self.config.server.port)
            await self.server.start()
        pending = await self.store.pending()
        for msg in pending:  # queued before anything new can arrive; answered once platforms are up
            if msg.thread is not None and msg.thread.platform in self.platforms:
                self.lanes.submit(msg.session_id, msg.id)
        for name, platform in self.platforms.items():
            single = elected(name, platform) if self.store.pg is not None else None
            if single is not None and self.store.pg is not None:
                election = GatewayElection(name, single, self.store.pg, lease_s=self.config.storage.lease_s,
                                           metrics=self.metrics)
                self.elections[name] = election
                await election.start(self.router.receive)
            else:
                await platform.start(self.router.receive)
        self._started = True
        self.lanes.open.set()
        if any(share.relay for share in self.config.shares.values()):
            await self.relay.start()  # copies a crash left unposted go out now, in order
        if self.serve_http:
            self._llm_probe = asyncio.create_task(self._probe_llm(), name="llm-probe")
        if pending:
            log.info("answering %d message(s) left unanswered by the last run", len(pending))
        if self.server is not None:
            log.info("bridge started: platforms %s; HTTP on http://%s:%s", ", ".join(self.platforms) or "none",
                     self.config.server.host, self.server.port)

    async def _handle(self, message_id: int) -> None:
        """Answer one message; a delivered answer may have released copies for the share's other places."""
        assert self.responder is not None
        try:
            await self.responder.handle(message_id)
        finally:
            if self.relay is not None:
                self.relay.wake()

    async def _maintain(self) -> None:
        """The store's upkeep: a WAL checkpoint every second (off the loop), and old dedupe ids
        forgotten now and every hour, not only at start (a bridge may run for months)."""
        assert self.store is not None
        pruned_at = float("-inf")
        while True:
            try:
                if time.monotonic() - pruned_at >= PRUNE_EVERY_S:
                    pruned_at = time.monotonic()
                    await self.store.forget_events_before(time.time() - EVENT_MEMORY_S)
                await self.store.checkpoint()
            except Exception:
                log.exception("store maintenance failed")
            await asyncio.sleep(CHECKPOINT_EVERY_S)

    async def _probe_store(self) -> None:
        """Keep the store's write health fresh while idle, so readiness returns once writes work again."""
        assert self.store is not None
        writes = self.store.writes
        while True:
            await asyncio.sleep(self.store_probe_interval_s)
            stale = writes.last_ok is None or time.time() - writes.last_ok >= self.store_probe_interval_s
            if stale or not writes.state()[0]:
                try:
                    await self.store.probe_write()
                except Exception as exc:
                    log.warning("the store refuses writes (%s)", type(exc).__name__)

    def _status(self, name: str, platform: Platform) -> dict[str, Any]:
        election = self.elections.get(name)
        return election.status(platform.status()) if election else platform.status()

    def health(self) -> dict[str, Any]:
        platforms = {name: self._status(name, p) for name, p in self.platforms.items()}
        store_ok, store_why = self.store.writes.state() if self.store is not None else (True, "")
        ok = self._started and store_ok and all(s.get("ok", True) for s in platforms.values())
        out: dict[str, Any] = {"status": "ok" if ok else "starting" if not self._started else "degraded",
                               "platforms": platforms, "in_flight": self.lanes.busy if self.lanes else 0,
                               "store": {"ok": store_ok, **({"error": store_why} if store_why else {})}}
        if self.replica is not None:
            out["replica"] = {**self.replica.role(), "gateway_owner": sorted(n for n, e in self.elections.items()
                                                                             if e.owner)}
        return out

    # ------------------------------------------------------------------------ readiness

    async def _probe_llm(self) -> None:
        """Keep the LLM's reachability fresh while idle: answers count, a cheap probe fills the gaps."""
        assert self.llm is not None
        while True:
            last = self.llm.last_success
            if last is None or time.time() - last >= self._llm_probe_interval_s:
                await self.llm.probe()
            await asyncio.sleep(self._llm_probe_interval_s)

    def _llm_state(self) -> tuple[bool, str]:
        llm = self.llm
        if llm is None or llm.last_success is None:
            failed = llm.last_failure if llm is not None else None
            return False, f"llm: not reachable ({failed[1]})" if failed else "llm: not reached yet"
        if llm.last_failure is not None and llm.last_failure[0] > llm.last_success and llm.last_failure[1] in _LLM_DOWN:
            return False, f"llm: the last request failed ({llm.last_failure[1]})"
        age = time.time() - llm.last_success
        if age > 3 * self._llm_probe_interval_s + 10:
            return False, f"llm: no successful request for {age:.0f} s"
        return True, ""

    def ready(self) -> dict[str, Any]:
        """For ``/readyz``: ready while started, every platform connected, the LLM answering and the store
        taking writes."""
        reasons = [] if self._started else ["starting"]
        reasons += [f"{name}: not connected" for name, p in self.platforms.items()
                    if not self._status(name, p).get("ok", True)]
        llm_ok, why = self._llm_state()
        if not llm_ok:
            reasons.append(why)
        store_ok, store_why = self.store.writes.state() if self.store is not None else (True, "")
        if not store_ok:
            reasons.append(store_why)
        return {"ready": not reasons, "reasons": reasons}

    async def stop(self) -> None:
        """Stop taking events, let in-flight answers finish (or stay pending for next time), close."""
        if self._llm_probe is not None:
            self._llm_probe.cancel()
            await asyncio.gather(self._llm_probe, return_exceptions=True)
            self._llm_probe = None
        if self.router is not None:
            self.router.accepting = False
        if self.lanes is not None:
            finished = await self.lanes.drain(self.shutdown_grace_s)
            if not finished:
                log.warning("stopped before some answers were sent; they will be answered at the next start")
        if self.relay is not None:
            await self.relay.stop()
        for task in (self._pruner, self._store_probe):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.responder is not None:
            await self.responder.close()
        if self.tools is not None:
            await self.tools.stop()
            self.tools = None
        for platform in self.platforms.values():
            try:
                await platform.stop()
            except Exception:
                log.exception("stopping %s failed", platform.name)
        for election in self.elections.values():  # after its gateway stopped: the next owner takes over
            await election.stop()
        if self.router is not None:
            self.router.closed = True
        if self.server is not None:
            await self.server.stop()
        if self.llm is not None:
            await self.llm.close()
        if self.store is not None:
            await self.store.close()
        self._started = False


async def run(config: Config, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set (SIGINT/SIGTERM in ``bridge run``)."""
    bridge = Bridge(config)
    if not bridge.platforms:
        log.warning("no platform is enabled in the config: the HTTP server runs, but nobody can talk to "
                    "the bridge. Enable one under platforms:, or try `bridge chat`.")
    try:
        await bridge.start()
    except BaseException:
        await bridge.stop()
        raise
    from bridge.llm.reachable import warn_if_unreachable

    assert bridge.llm is not None
    llm_check = asyncio.create_task(warn_if_unreachable(bridge.llm, config.llm.base_url))
    try:
        await stop.wait()
    finally:
        llm_check.cancel()
        log.info("stopping")
        await bridge.stop()
