"""Answering one stored message: a command, or persona + history → LLM → the platform.

Runs inside a session's lane, so it never races another answer in the same session. Every
outcome is written back to the store: answered (with the reply) or failed (with the user told).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

from bridge.commands import parse_command, run_command
from bridge.config import Config
from bridge.llm import ChatRequest, LLMClient, LLMFailure
from bridge.metrics import Metrics
from bridge.personas import Persona
from bridge.platform import Platform
from bridge.store import Message, Session, Store
from bridge.tokens import PER_MESSAGE, Turn, fit_history

log = logging.getLogger(__name__)

CONTEXT_RETRIES = 3  # halve the history budget this many times when a server says "too long"


async def _once(text: str) -> AsyncIterator[str]:
    yield text


class Responder:
    def __init__(self, config: Config, store: Store, llm: LLMClient, personas: dict[str, Persona],
                 platforms: Mapping[str, Platform], metrics: Metrics) -> None:
        self._config = config
        self._store = store
        self._llm = llm
        self._personas = personas
        self._platforms = platforms
        self._metrics = metrics

    async def handle(self, message_id: int) -> None:
        msg = await self._store.message(message_id)
        if msg is None or msg.status != "pending" or msg.thread is None:
            return  # already answered (a replay), or forgotten by /reset
        platform = self._platforms.get(msg.thread.platform)
        if platform is None:
            log.warning("message %s waits for platform %s, which is not running", msg.id, msg.thread.platform)
            return
        session = await self._store.session(msg.session_id)
        assert session is not None
        if msg.kind == "command":
            await self._command(platform, session, msg)
        else:
            await self._chat(platform, session, msg)

    def _persona(self, session: Session) -> Persona:
        return (self._personas.get(session.persona) or self._personas.get(self._config.default_persona)
                or next(iter(self._personas.values())))

    async def _command(self, platform: Platform, session: Session, msg: Message) -> None:
        cmd = parse_command(msg.content)
        assert cmd is not None
        assert msg.thread is not None
        reply = await run_command(cmd, store=self._store, session_id=session.id, message_id=msg.id,
                                  current=self._persona(session).name, personas=self._personas)
        await platform.send(msg.thread, _once(reply))
        await self._store.mark(msg.id, "answered")
        self._metrics.replies.labels(platform=platform.name).inc()

    async def _request(self, session: Session, msg: Message, budget: int) -> ChatRequest:
        persona = self._persona(session)
        assert msg.thread is not None
        system = persona.render_system(user=msg.author.name or "someone", platform=msg.thread.platform,
                                       channel=msg.thread.channel)
        named = persona.speaker_names or session.key.startswith("share:")
        # No turn costs less than PER_MESSAGE + 1 tokens, so older rows could never fit anyway.
        history = await self._store.history(session.id, msg.id, limit=budget // (PER_MESSAGE + 1) + 1)
        turns = [Turn(m.role, f"{m.author.name}: {m.content}" if named and m.role == "user" and m.author.name
                      else m.content) for m in history]
        model = persona.model or self._config.llm.model
        kept = fit_history(system, turns, budget, model)
        messages = [{"role": "system", "content": system}] + [{"role": t.role, "content": t.content} for t in kept]
        return ChatRequest(messages=messages, model=model,
                           temperature=persona.temperature if persona.temperature is not None
                           else self._config.llm.temperature,
                           max_tokens=persona.max_tokens or self._config.llm.max_tokens)

    async def _chat(self, platform: Platform, session: Session, msg: Message) -> None:
        assert msg.thread is not None
        outcome: dict[str, str | LLMFailure] = {}

        async def snapshots() -> AsyncIterator[str]:
            text = ""
            budget = self._config.llm.context_tokens
            for attempt in range(CONTEXT_RETRIES + 1):
                request = await self._request(session, msg, budget)
                try:
                    async for delta in self._llm.stream(request):
                        text += delta
                        yield text
                    break
                except LLMFailure as failure:
                    if failure.kind == "context" and not text and attempt < CONTEXT_RETRIES:
                        budget //= 2
                        log.info("session %s: context too long, retrying with %d tokens", session.id, budget)
                        continue
                    outcome["failure"] = failure
                    yield f"{text}\n\n⚠️ {failure.user_message}" if text else f"⚠️ {failure.user_message}"
                    return
            outcome["reply"] = text

        try:
            await platform.send(msg.thread, snapshots())
        except Exception as exc:  # the platform failed; its SDK's text may carry URLs, never show it
            log.error("sending to %s failed: %s", msg.thread.key, type(exc).__name__)
            self._metrics.errors.labels(platform=platform.name, kind="platform").inc()
            await self._store.mark(msg.id, "failed")
            return
        failure = outcome.get("failure")
        reply = outcome.get("reply")
        if isinstance(failure, LLMFailure):
            self._metrics.errors.labels(platform=platform.name, kind=failure.kind).inc()
            await self._store.mark(msg.id, "failed")
        elif isinstance(reply, str):
            await self._store.answer(msg.id, session.id, reply)
            self._metrics.replies.labels(platform=platform.name).inc()
        else:  # the platform stopped reading the stream early
            await self._store.mark(msg.id, "failed")
