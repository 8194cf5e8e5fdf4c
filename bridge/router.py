"""The single inbox every platform delivers to: rules, triggers, dedupe, store, queue.

A message is stored (with its event id, atomically) *before* it is queued for an answer, so
a crash between the two loses nothing: startup recovery answers what is still pending.
"""

from __future__ import annotations

import logging

from bridge.commands import parse_command
from bridge.config import Config
from bridge.lanes import Lanes
from bridge.metrics import Metrics
from bridge.platform import Stopping
from bridge.rules import match_rule, session_key, triggered
from bridge.store import Store
from bridge.text import storable_incoming
from bridge.types import Incoming

log = logging.getLogger(__name__)


class Router:
    def __init__(self, config: Config, store: Store, lanes: Lanes, metrics: Metrics) -> None:
        self._config = config
        self._store = store
        self._lanes = lanes
        self._metrics = metrics
        self.accepting = True

    def _outcome(self, msg: Incoming, outcome: str) -> bool:
        self._metrics.events.labels(platform=msg.thread.platform, outcome=outcome).inc()
        log.debug("%s %s: %s", msg.thread.key, msg.event_id, outcome)
        return outcome == "accepted"

    async def receive(self, msg: Incoming) -> bool:
        """The :data:`bridge.platform.Inbox`: True when the message was stored to be answered."""
        msg = storable_incoming(msg)  # lone surrogates, NUL: a message SQLite refuses is redelivered forever
        if not self.accepting:
            self._outcome(msg, "stopping")
            raise Stopping("the bridge is shutting down")
        if msg.author.is_bot:
            return self._outcome(msg, "bot_author")
        text = msg.text.strip()
        if not text:
            return self._outcome(msg, "empty")
        rule = match_rule(self._config.channels, msg.thread)
        if rule is None and not msg.direct:
            return self._outcome(msg, "no_rule")
        known = msg.in_thread and await self._store.has_thread(msg.thread)
        if not triggered(rule, msg, known):
            return self._outcome(msg, "not_triggered")
        persona = (rule.persona if rule and rule.persona else None) or self._config.default_persona
        accepted = await self._store.accept(
            event_id=f"{msg.thread.platform}:{msg.event_id}",
            session_key=session_key(rule, msg),
            persona=persona,
            thread=msg.thread,
            author=msg.author,
            content=text,
            kind="command" if parse_command(text) else "chat",
        )
        if accepted is None:
            return self._outcome(msg, "duplicate")
        session, message_id = accepted
        self._lanes.submit(session.id, message_id)
        return self._outcome(msg, "accepted")
