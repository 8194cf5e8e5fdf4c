"""The single inbox every platform delivers to: rules, triggers, dedupe, store, queue.

A message is stored (with its event id, atomically) *before* it is queued for an answer, so
a crash between the two loses nothing: startup recovery answers what is still pending. While the
bridge stops, messages are still stored (not queued): the next start answers them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from bridge.config import ChannelRule, Config
from bridge.conversation.commands import parse_command
from bridge.conversation.lanes import LaneSet
from bridge.conversation.rules import match_rule, session_key, triggered
from bridge.llm.tokens import count_tokens_async
from bridge.metrics import Metrics
from bridge.platform import Stopping
from bridge.policy.access import Access
from bridge.relay.plan import plan_for, relay_share
from bridge.store.store import Store
from bridge.types import Incoming
from bridge.untrusted.text import storable_incoming

log = logging.getLogger(__name__)


class Router:
    def __init__(self, config: Config, store: Store, lanes: LaneSet, metrics: Metrics,
                 access: Access | None = None) -> None:
        self._config = config
        self._access = access or Access(config, {})  # without platforms: no team is ever confirmed
        self._store = store
        self._lanes = lanes
        self._metrics = metrics
        self.accepting = True   # False while stopping: messages are stored, answered at the next start
        self.closed = False     # True once the store is about to close: nothing can be stored
        self.on_relay: Callable[[], None] | None = None  # told when copies were stored (the relay worker)

    def _outcome(self, msg: Incoming, outcome: str) -> bool:
        self._metrics.events.labels(platform=msg.thread.platform, outcome=outcome).inc()
        log.debug("%s %s: %s", msg.thread.key, msg.event_id, outcome)
        return outcome == "accepted"

    async def receive(self, msg: Incoming) -> bool:
        """The :data:`bridge.platform.Inbox`: True when the message was stored to be answered."""
        msg = storable_incoming(msg)  # lone surrogates, NUL: a message SQLite refuses is redelivered forever
        if self.closed:
            self._outcome(msg, "stopping")
            raise Stopping("the bridge is shutting down")
        if msg.change:
            return await self._changed(msg)
        if msg.author.is_bot:
            return self._outcome(msg, "bot_author")
        text = msg.text.strip()
        if not text and not msg.attachments:  # a file alone (a mention plus a PDF) is a question about it
            return self._outcome(msg, "empty")
        rule = match_rule(self._config.channels, msg.thread, msg.category)
        if rule is None and not msg.direct:
            return self._outcome(msg, "no_rule")
        relayed = relay_share(self._config, rule, msg) is not None
        # In a relay room people talk to each other: a thread the bot is in does not make every reply a question.
        known = msg.in_thread and not relayed and await self._store.has_thread(msg.thread)
        if not triggered(rule, msg, known):
            if relayed:
                return await self._heard(msg, rule, text)
            return self._outcome(msg, "not_triggered")
        persona = (rule.persona if rule and rule.persona else None) or self._config.default_persona
        kind: Literal["chat", "command"] = "command" if parse_command(text) else "chat"
        decision = await self._access.check(rule, msg)
        if not decision.allowed:
            return await self._refuse(msg, rule, persona, text, kind, decision.why)
        tokens = await count_tokens_async(text, self._config.llm.model) if kind == "chat" else 0
        accepted = await self._store.accept(
            event_id=f"{msg.thread.platform}:{msg.event_id}",
            session_key=session_key(rule, msg),
            persona=persona,
            thread=msg.thread,
            author=msg.author,
            content=text,
            kind=kind,
            tokens=tokens,  # counted once, here, not again on every later turn (files: when read)
            attachments=msg.attachments if kind == "chat" else (),
            relay=plan_for(self._config, rule, msg, answers=True),
        )
        if accepted is None:
            return self._outcome(msg, "duplicate")
        session, message_id = accepted
        if msg.context:  # kept with the session: the persona's {channel} from now on
            await self._store.set_context(session.id, msg.context)
        if not self.accepting:  # shutting down: stored, so the next start answers it (no platform must redeliver)
            return self._outcome(msg, "stored_for_next_start") or True
        self._lanes.submit(session.id, message_id)
        self._relayed(relayed)
        return self._outcome(msg, "accepted")

    def _relayed(self, relayed: bool) -> None:
        if relayed and self.on_relay is not None:
            self.on_relay()

    async def _changed(self, msg: Incoming) -> bool:
        """An edit or deletion: the copies of a relayed message follow it (nothing else does)."""
        rule = match_rule(self._config.channels, msg.thread)
        if relay_share(self._config, rule, msg) is None:
            return self._outcome(msg, "change_ignored")
        queued = await self._store.relay_change(f"{msg.thread.platform}:{msg.event_id}", msg.text.strip(),
                                                deleted=msg.change == "deleted")
        if queued:
            self._relayed(True)
        self._outcome(msg, msg.change if queued else "change_ignored")
        return queued > 0  # the change was stored, for the copies to follow

    async def _heard(self, msg: Incoming, rule: ChannelRule | None, text: str) -> bool:
        """A relay room's message not addressed to the bot: history for the model and copies for the
        other places, never answered."""
        persona = (rule.persona if rule and rule.persona else None) or self._config.default_persona
        tokens = await count_tokens_async(text, self._config.llm.model)
        accepted = await self._store.accept(
            event_id=f"{msg.thread.platform}:{msg.event_id}", session_key=session_key(rule, msg), persona=persona,
            thread=msg.thread, author=msg.author, content=text, tokens=tokens, attachments=msg.attachments,
            heard=True, relay=plan_for(self._config, rule, msg, answers=False))
        if accepted is None:
            return self._outcome(msg, "duplicate")
        self._relayed(True)
        self._outcome(msg, "heard")
        return False

    async def _refuse(self, msg: Incoming, rule: ChannelRule | None, persona: str, text: str,
                      kind: Literal["chat", "command"], why: str) -> bool:
        """Stored as refused (never answered, never history); the author is told once per thread."""
        reason = f"access: {why}"
        accepted = await self._store.accept(
            event_id=f"{msg.thread.platform}:{msg.event_id}", session_key=session_key(rule, msg), persona=persona,
            thread=msg.thread, author=msg.author, content=text, kind=kind, refused=reason,
            relay=plan_for(self._config, rule, msg, answers=False))
        if accepted is None:
            return self._outcome(msg, "duplicate")
        session, message_id = accepted
        self._metrics.refused.labels(platform=msg.thread.platform, reason="access").inc()
        log.info("%s: not answering %s (%s)", msg.thread.key, msg.author.id, reason)
        notice = rule.refusal_message if rule is not None and rule.refusal_message is not None \
            else self._config.refusal_message
        told = bool(notice) and await self._store.refuse_telling_once(message_id, msg.thread.key, msg.author.id,
                                                                      notice)
        if told and self.accepting:  # else the next start delivers it (Store.pending)
            self._lanes.submit(session.id, message_id)
        return self._outcome(msg, "refused")
