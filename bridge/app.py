"""The bridge assembled: config → store, LLM, personas, platforms, router, server; and its lifecycle."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bridge.config import Config, ConfigError
from bridge.lanes import Lanes
from bridge.llm import LLMClient
from bridge.metrics import Metrics
from bridge.personas import Persona, load_personas
from bridge.platform import Platform, load_factory
from bridge.responder import Responder
from bridge.router import Router
from bridge.server import Server, build_app
from bridge.store import Store
from bridge.tokens import warm_up

log = logging.getLogger(__name__)

EVENT_MEMORY_S = 14 * 24 * 3600  # dedupe ids older than this are forgotten at startup


def check_personas(config: Config, personas: dict[str, Persona]) -> None:
    """Every persona named in the config must exist: found at start, not at the first message."""
    problems = []
    if config.default_persona not in personas:
        problems.append(f"default_persona: no persona {config.default_persona!r} in {config.personas_dir}")
    for i, rule in enumerate(config.channels):
        if rule.persona and rule.persona not in personas:
            problems.append(f"channels.{i}.persona: no persona {rule.persona!r} in {config.personas_dir} "
                            f"(have: {', '.join(sorted(personas)) or 'none'})")
    if problems:
        raise ConfigError(config.source, problems)


class Bridge:
    """One running bridge. ``start`` and ``stop`` are what ``bridge run`` and the tests call."""

    def __init__(self, config: Config, *, platforms: dict[str, Platform] | None = None,
                 shutdown_grace_s: float = 20.0, serve_http: bool = True) -> None:
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
        self.lanes: Lanes | None = None
        self.server: Server | None = None
        self._started = False

    async def start(self) -> None:
        self.store = await Store.open(self.config.db_path)
        # Token vocabularies load in ~0.2 s each: in a thread now, not on the loop at the first message.
        await asyncio.to_thread(warm_up, self.config.llm.model, *{p.model for p in self.personas.values() if p.model})
        await self.store.forget_events_before(time.time() - EVENT_MEMORY_S)
        self.llm = LLMClient(self.config.llm, self.metrics)
        responder = Responder(self.config, self.store, self.llm, self.personas, self.platforms, self.metrics)
        self.lanes = Lanes(responder.handle)
        self.router = Router(self.config, self.store, self.lanes, self.metrics)
        routes = [r for p in self.platforms.values() for r in p.routes()]
        app = build_app(routes=routes, health=self.health, metrics=self.metrics,
                        max_body_bytes=self.config.server.max_body_bytes)
        if self.serve_http:
            self.server = Server(app, self.config.server.host, self.config.server.port)
            await self.server.start()
        pending = await self.store.pending()
        for msg in pending:  # queued before anything new can arrive; answered once platforms are up
            if msg.thread is not None and msg.thread.platform in self.platforms:
                self.lanes.submit(msg.session_id, msg.id)
        for platform in self.platforms.values():
            await platform.start(self.router.receive)
        self._started = True
        self.lanes.open.set()
        if pending:
            log.info("answering %d message(s) left unanswered by the last run", len(pending))
        if self.server is not None:
            log.info("bridge started: platforms %s; HTTP on http://%s:%s", ", ".join(self.platforms) or "none",
                     self.config.server.host, self.server.port)

    def health(self) -> dict[str, Any]:
        platforms = {name: p.status() for name, p in self.platforms.items()}
        ok = self._started and all(s.get("ok", True) for s in platforms.values())
        return {"status": "ok" if ok else "starting" if not self._started else "degraded",
                "platforms": platforms, "in_flight": self.lanes.busy if self.lanes else 0}

    async def stop(self) -> None:
        """Stop taking events, let in-flight answers finish (or stay pending for next time), close."""
        if self.router is not None:
            self.router.accepting = False
        if self.lanes is not None:
            finished = await self.lanes.drain(self.shutdown_grace_s)
            if not finished:
                log.warning("stopped before some answers were sent; they will be answered at the next start")
        for platform in self.platforms.values():
            try:
                await platform.stop()
            except Exception:
                log.exception("stopping %s failed", platform.name)
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
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await bridge.stop()
