"""Answering one stored message: a command, or persona + history → LLM → the platform.

Runs inside a session's lane, so it never races another answer in the same session. Every step is
written to the store as it happens (STYLE.md, lesson 12): the attempt, each platform message posted,
the final text before it is delivered, then delivered or failed. A restart reads that record and
continues: a final text is delivered without asking the LLM again, a command is never run twice,
and messages already posted are edited, not posted again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping

from bridge.config import Config
from bridge.conversation.answering import TRUNCATED_NOTE, Answer, Budgets, Snapshots, answer
from bridge.conversation.commands import Asker, parse_command, run_command
from bridge.conversation.tooluse import ToolAnswer, answer_with_tools, history_messages, log_tokens
from bridge.llm.client import ChatRequest, LLMClient, LLMFailure
from bridge.llm.tokens import PER_MESSAGE, REPLY_PRIMING, count_tokens, count_tokens_async
from bridge.metrics import Metrics
from bridge.personas import Persona
from bridge.platform import Platform, show_progress
from bridge.policy.access import is_admin
from bridge.policy.usage import Usage
from bridge.store.store import Message, Session, Store
from bridge.tools.catalog import ToolManager
from bridge.types import Outgoing

log = logging.getLogger(__name__)

LABEL_TOKENS = 16          # what a speaker label may cost: names are cut to stay within it
NOTICE_DEADLINE_S = 600.0  # how long to keep trying to tell a thread its answer could not be posted
PLATFORM_FAILED = ("⚠️ I could not post my answer here: {platform} kept refusing messages. "
                   "Please ask again.")
PLATFORM_NAMES = {"github": "GitHub", "slack": "Slack", "discord": "Discord", "console": "terminal"}
_PLAIN_NAME = re.compile(r"^[\w .'()-]{1,32}$")


async def _once(text: str) -> AsyncIterator[str]:
    yield text


@functools.lru_cache(maxsize=256)
def _count_cached(text: str, model: str) -> int:
    return count_tokens(text, model)


def speaker_label(name: str, platform: str | None) -> str:
    """``Ann (Slack)``: who spoke, and from where. A name anyone can set is cut and quoted unless plain."""
    clean = " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())[:32] or "someone"
    shown = clean if _PLAIN_NAME.match(clean) else json.dumps(clean, ensure_ascii=False)
    return f"{shown} ({PLATFORM_NAMES.get(platform, platform)})" if platform else shown


class Responder:
    def __init__(self, config: Config, store: Store, llm: LLMClient, personas: dict[str, Persona],
                 platforms: Mapping[str, Platform], metrics: Metrics, tools: ToolManager | None = None) -> None:
        self._config = config
        self._tools = tools
        self._store = store
        self._llm = llm
        self._personas = personas
        self._platforms = platforms
        self._metrics = metrics
        self.budgets = Budgets(config.llm.context_tokens)
        self._usage = Usage(config, store, metrics)
        self._notices: set[asyncio.Task[None]] = set()
        self._answering = asyncio.Semaphore(config.llm.max_concurrent)

    async def handle(self, message_id: int) -> None:
        msg = await self._store.message(message_id)
        if msg is None or msg.thread is None or not (msg.status == "pending" or await self._notice_due(msg)):
            return  # already answered (a replay), forgotten by /reset, or refused with nothing to say
        platform = self._platforms.get(msg.thread.platform)
        if platform is None:
            log.warning("message %s waits for platform %s, which is not running", msg.id, msg.thread.platform)
            return
        session = await self._store.session(msg.session_id)
        assert session is not None
        earlier = await self._store.start_attempt(msg.id)
        reply = await self._store.reply(msg.id)
        assert reply is not None  # start_attempt made it
        out = Outgoing(thread=msg.thread, key=msg.event_id or f"message:{msg.id}",
                       answers=msg.event_id.partition(":")[2], posted=reply.platform_ids,
                       record=functools.partial(self._store.record_posted, msg.id), recovering=earlier > 0)
        started = time.monotonic()
        if reply.final:  # the text is known (a command already run, or an answer finished): deliver it
            await self._deliver(platform, out, msg, _once(reply.text))
        elif msg.kind == "command":
            text = await self._command(session, msg)
            await self._deliver(platform, out, msg, _once(text))
        else:
            refusal = await self._usage.over_budget(session, msg)
            if refusal is None:
                async with self._answering:  # a burst of answers must not starve the webhooks' acks
                    await self._chat(platform, out, session, msg, started)
            else:  # nothing goes to the LLM: the user is told which limit, and when it resets
                await self._store.refuse(msg.id, refusal.reason, refusal.text)
                await self._deliver(platform, out, msg, _once(refusal.text))

    async def _notice_due(self, msg: Message) -> bool:
        """A refused message whose notice (no access, a budget used up) is stored but not yet delivered."""
        reply = await self._store.reply(msg.id) if msg.status == "refused" else None
        return reply is not None and reply.final and reply.state == "delivering"

    def _persona(self, session: Session) -> Persona:
        return (self._personas.get(session.persona) or self._personas.get(self._config.default_persona)
                or next(iter(self._personas.values())))

    async def _command(self, session: Session, msg: Message) -> str:
        cmd = parse_command(msg.content)
        assert cmd is not None
        assert msg.thread is not None
        asker = Asker(admin=is_admin(self._config, msg.thread.platform, msg.author.id),
                      shared=session.key.startswith("share:"),
                      usage=functools.partial(self._usage.describe, session, msg))
        return await run_command(cmd, store=self._store, message_id=msg.id, current=self._persona(session).name,
                                 personas=self._personas, asker=asker)

    async def _send(self, platform: Platform, out: Outgoing, msg: Message, snapshots: AsyncIterator[str]) -> bool:
        """Hand the reply to the platform. False when it refused for good: the message is then failed."""
        try:
            await platform.send(out, snapshots)
        except Exception as exc:  # its SDK's text may carry URLs or tokens: never show or log it
            log.error("sending to %s failed: %s", out.thread.key, type(exc).__name__)
            self._metrics.errors.labels(platform=platform.name, kind="platform").inc()
            await self._store.fail(msg.id, f"platform: {type(exc).__name__}")
            self._tell_later(platform, out)
            return False
        return True

    async def _deliver(self, platform: Platform, out: Outgoing, msg: Message, snapshots: AsyncIterator[str]) -> None:
        if await self._send(platform, out, msg, snapshots):
            await self._store.delivered(msg.id)
            self._metrics.replies.labels(platform=platform.name).inc()

    def _tell_later(self, platform: Platform, out: Outgoing) -> None:
        """Once the platform accepts messages again, say in the thread that the answer was lost."""
        async def notify() -> None:
            notice = Outgoing(thread=out.thread, key=f"{out.key}:notice", answers=out.answers)
            text = PLATFORM_FAILED.format(platform=PLATFORM_NAMES.get(platform.name, platform.name))
            deadline = time.monotonic() + NOTICE_DEADLINE_S
            delay = 5.0
            while time.monotonic() < deadline:
                await asyncio.sleep(delay)
                try:
                    await platform.send(notice, _once(text))
                    return
                except Exception as exc:
                    log.info("telling %s about a lost answer failed again: %s", out.thread.key, type(exc).__name__)
                    delay = min(delay * 2, 60.0)

        task = asyncio.create_task(notify())
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def close(self) -> None:
        for task in list(self._notices):
            task.cancel()
        await asyncio.gather(*self._notices, return_exceptions=True)

    # ------------------------------------------------------------------------------- chat

    async def _request(self, session: Session, persona: Persona, msg: Message, budget: int) -> ChatRequest:
        """System prompt, then the conversation in order (each message followed by its reply), then ``msg``."""
        assert msg.thread is not None
        model = persona.model or self._config.llm.model
        # A display name is anyone's to choose: it never goes into the system prompt, only into user turns.
        system = persona.render_system(user="the user", platform=msg.thread.platform, channel=msg.thread.channel)
        shared = session.key.startswith("share:")
        named = shared or persona.speaker_names

        def content(m: Message) -> str:
            if not named:
                return m.content
            label = speaker_label(m.author.name or m.author.id, m.thread.platform if shared and m.thread else None)
            return f"{label}: {m.content}"

        current_tokens = msg.tokens or await count_tokens_async(msg.content, model)
        room = budget - REPLY_PRIMING - PER_MESSAGE - _count_cached(system, model) - current_tokens
        per_turn = PER_MESSAGE + (LABEL_TOKENS if named else 0)
        history = await self._store.history(session.id, msg.id, max(room, 0), per_turn=per_turn)
        messages = [{"role": "system", "content": system}]
        for exchange in history:
            messages.append({"role": "user", "content": content(exchange.message)})
            if exchange.reply is not None:
                messages.extend(history_messages(exchange.tool_log) if exchange.tool_log != "[]" else ())
                messages.append({"role": "assistant", "content": exchange.reply})
        messages.append({"role": "user", "content": content(msg)})
        return ChatRequest(messages=messages, model=model,
                           temperature=persona.temperature if persona.temperature is not None
                           else self._config.llm.temperature,
                           max_tokens=persona.max_tokens or self._config.llm.max_tokens)

    async def _chat(self, platform: Platform, out: Outgoing, session: Session, msg: Message,
                    started: float) -> None:
        persona = self._persona(session)
        model = persona.model or self._config.llm.model
        channel = Snapshots()
        loop = asyncio.get_running_loop()
        outcome: list[Answer | LLMFailure] = []
        requests: list[ChatRequest] = []  # the last one sent: our own token count, if the server gives none

        async def build(budget: int) -> ChatRequest:
            requests.append(await self._request(session, persona, msg, budget))
            return requests[-1]

        async def produce() -> None:
            used: ToolAnswer | None = None
            try:
                deadline = loop.time() + self._config.llm.answer_timeout_s
                if persona.tools and self._tools is not None:  # the model may look things up first
                    used = await answer_with_tools(
                        self._llm, build, toolbox=await self._tools.toolbox(persona.tools),
                        max_steps=persona.max_tool_steps, model=model, budgets=self.budgets, deadline=deadline,
                        max_retries=self._config.llm.max_retries, emit=channel.put, metrics=self._metrics,
                        progress=functools.partial(show_progress, platform, out))
                    result = used.answer
                else:
                    result = await answer(
                        self._llm, build, model=model, budgets=self.budgets, deadline=deadline,
                        max_retries=self._config.llm.max_retries, emit=channel.put, metrics=self._metrics)
            except LLMFailure as failure:
                outcome.append(failure)
                channel.put(f"⚠️ {failure.user_message}")  # in place of any half answer
            else:
                text = result.text + (TRUNCATED_NOTE if result.truncated else "")
                tokens = result.completion.completion_tokens or await count_tokens_async(text, model)
                if used is not None and used.steps:
                    log_json = used.log()
                    await self._store.save_tool_log(msg.id, log_json, await asyncio.to_thread(log_tokens, log_json,
                                                                                               model))
                await self._store.save_final(msg.id, text, tokens)
                await self._usage.record(session, msg, persona=persona.name, completion=result.completion,
                                         request=requests[-1] if requests else None, answer_tokens=tokens)
                outcome.append(result)
                channel.put(text)
            finally:
                channel.close()

        await self.budgets.discover(self._llm, model, persona.max_tokens or self._config.llm.max_tokens)
        producer = asyncio.create_task(produce())
        try:
            sent = await self._send(platform, out, msg, aiter(channel))
        finally:
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
        result = outcome[0] if outcome else None
        seconds = time.monotonic() - started
        if isinstance(result, LLMFailure):
            self._metrics.errors.labels(platform=platform.name, kind=result.kind).inc()
            if sent:  # the plain sentence was shown: the message failed, with its reason
                await self._store.fail(msg.id, f"llm: {result.kind}")
            log.info("answer failed: session=%s message=%s reason=%s seconds=%.1f", session.key, msg.id,
                     result.kind, seconds)
        elif result is None and sent:  # the platform stopped reading early (Ctrl-C in `bridge chat`)
            await self._store.fail(msg.id, "stopped before the answer was complete")
        elif isinstance(result, Answer) and sent:
            await self._store.delivered(msg.id)
            self._metrics.replies.labels(platform=platform.name).inc()
            c = result.completion
            log.info("answered: session=%s message=%s prompt_tokens=%s completion_tokens=%s attempts=%d "
                     "seconds=%.1f%s", session.key, msg.id, c.prompt_tokens, c.completion_tokens, result.attempts,
                     seconds, " (cut at the length limit)" if result.truncated else "")
