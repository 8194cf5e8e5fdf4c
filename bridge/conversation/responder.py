"""Answering one stored message: a command, or persona + history → LLM → the platform.

Runs inside a session's lane, so it never races another answer in the same session. Every step is
written to the store as it happens, so a crash loses no step: the attempt, each platform message posted,
the final text before it is delivered, then delivered or failed. A restart reads that record and
continues: a final text is delivered without asking the LLM again, a command is never run twice,
and messages already posted are edited, not posted again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from bridge.attachments.prompt import FILE_ONLY, fit_files, images_kept, user_content
from bridge.attachments.turns import SharedFiles, hosts_of
from bridge.config import Config
from bridge.conversation.answering import TRUNCATED_NOTE, Answer, Budgets, Snapshots, Spent, answer
from bridge.conversation.commands import Asker, parse_command, run_command
from bridge.conversation.persisting import RETRY_FOR_S, StoreFailed, until_settled
from bridge.conversation.slots import Slot, Slots
from bridge.conversation.tooluse import ToolAnswer, answer_with_tools, history_messages, log_tokens
from bridge.llm.client import ChatRequest, LLMClient, LLMFailure
from bridge.llm.tokens import PER_MESSAGE, REPLY_PRIMING, count_tokens, count_tokens_async
from bridge.metrics import Metrics
from bridge.personas import Persona
from bridge.platform import Platform, show_progress
from bridge.policy.access import is_admin
from bridge.policy.usage import Usage
from bridge.store import fencing
from bridge.store.attachments import StoredFile
from bridge.store.fencing import LeaseLost
from bridge.store.store import Message, Session, Store
from bridge.tools.catalog import ToolManager
from bridge.types import Outgoing

log = logging.getLogger(__name__)

LABEL_TOKENS = 16          # what a speaker label may cost: names are cut to stay within it
NOTICE_DEADLINE_S = 600.0  # how long to keep trying to tell a thread its answer could not be posted
PLATFORM_FAILED = ("⚠️ I could not post my answer here: {platform} kept refusing messages. "
                   "Please ask again.")
STORE_FAILED = ("⚠️ I could not answer this: my storage kept failing, so the conversation could not be saved. "
                "Please ask again later.")
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
        self._slots = Slots(config.llm.max_concurrent)
        self.files = SharedFiles(config.attachments, store, metrics)
        self.store_retry_s = RETRY_FOR_S
        # The reply being answered per message, with the platform ids posted so far (known even when
        # the store could not record them): to tell the user in place if the store keeps failing.
        self._replying: dict[int, tuple[Platform, Outgoing]] = {}

    async def handle(self, message_id: int) -> None:
        """Answer one message; through store failures, retried in its place (:mod:`.persisting`)."""
        try:
            await until_settled(message_id, functools.partial(self._handle, message_id),
                                tell=functools.partial(self._store_failed, message_id),
                                settle=functools.partial(self._store.fail, message_id, "store: kept failing"),
                                retry_for_s=self.store_retry_s)
        finally:
            self._replying.pop(message_id, None)

    async def _store_failed(self, message_id: int, _exc: BaseException) -> None:
        """The store kept failing: say so in the thread, as the reply itself (a "_Thinking…_" placeholder
        already posted is edited into this sentence). Called once per message (:func:`until_settled`)."""
        known = self._replying.get(message_id) or await self._where(message_id)
        if known is None:
            log.warning("message %s: the store failed before its thread was known; nobody can be told", message_id)
            return
        platform, out = known

        async def ignore(_ids: list[str]) -> None:
            return None

        notice = dataclasses.replace(out, record=ignore, recovering=True)
        try:
            await platform.send(notice, _once(STORE_FAILED))
        except LeaseLost:
            raise
        except Exception as exc:
            log.warning("telling %s that the store failed did not work either: %s", out.thread.key,
                        type(exc).__name__)

    async def _where(self, message_id: int) -> tuple[Platform, Outgoing] | None:
        """Where a message's reply goes, when the store failed before an attempt could start: its
        message is read on its own (a write failed; reads often still work)."""
        try:
            msg = await self._store.message(message_id)
        except Exception as exc:
            log.warning("message %s: reading it failed too: %s", message_id, type(exc).__name__)
            return None
        platform = self._platforms.get(msg.thread.platform) if msg is not None and msg.thread is not None else None
        return (platform, self._outgoing(msg)) if platform is not None and msg is not None else None

    @staticmethod
    def _outgoing(msg: Message) -> Outgoing:
        assert msg.thread is not None
        return Outgoing(thread=msg.thread, key=msg.event_id or f"message:{msg.id}",
                        answers=msg.event_id.partition(":")[2], guard=fencing.guard, asker=msg.author.id)

    async def _handle(self, message_id: int) -> None:
        attempt = await self._store.start_attempt(message_id, self._platforms.keys())
        if attempt is None:
            return  # already answered (a replay), forgotten by /reset, or refused with nothing to say
        msg, session, reply = attempt.message, attempt.session, attempt.reply
        assert msg.thread is not None  # start_attempt answers only messages of a running platform
        platform = self._platforms[msg.thread.platform]
        known = self._replying.get(msg.id)
        base = known[1] if known is not None else self._outgoing(msg)
        self._replying[msg.id] = (platform, base)  # where to tell the user, should the store keep failing
        # Posted by a try whose record failed: the platform said so, the store did not.
        posted = base.posted if len(base.posted) > len(reply.platform_ids) else reply.platform_ids
        out = dataclasses.replace(base, posted=posted, record=functools.partial(self._store.record_posted, msg.id),
                                  recovering=attempt.earlier > 0)
        self._replying[msg.id] = (platform, out)
        started = time.monotonic()
        if reply.final:  # the text is known (a command already run, or an answer finished): deliver it
            await self._deliver(platform, out, msg, _once(reply.text))
        elif msg.kind == "command":
            text = await self._command(session, msg)
            await self._deliver(platform, out, msg, _once(text))
        else:
            persona = self._persona(session)  # its files are fetched before an LLM slot is taken
            attached = attempt.files
            if any(f.state == "pending" for f in attached):  # most messages have none: nothing to describe
                attached = await self.files.prepare(msg, attached, hosts_of(self._platforms, platform.name, out.thread),
                                                    persona.model or self._config.llm.model)
            # A burst of answers must not starve the webhooks' acks. The budget is checked once a slot
            # is held, so every answer that held one before has recorded what it cost.
            async with self._slots.held() as slot:
                refusal = await self._usage.over_budget(session, msg)
                if refusal is None:
                    await self._chat(platform, out, session, msg, started, attached, slot, attempt.context)
            if refusal is not None:  # nothing goes to the LLM: the user is told which limit, and when it resets
                await self._store.refuse(msg.id, refusal.reason, refusal.text)
                await self._deliver(platform, out, msg, _once(refusal.text))

    def _persona(self, session: Session) -> Persona:
        return (self._personas.get(session.persona) or self._personas.get(self._config.default_persona)
                or next(iter(self._personas.values())))

    async def _command(self, session: Session, msg: Message) -> str:
        cmd = parse_command(msg.content)
        assert cmd is not None
        assert msg.thread is not None
        asker = Asker(admin=is_admin(self._config, msg.thread.platform, msg.author.id, msg.author.name),
                      shared=session.key.startswith("share:"),
                      usage=functools.partial(self._usage.describe, session, msg))
        return await run_command(cmd, store=self._store, message_id=msg.id, current=self._persona(session).name,
                                 personas=self._personas, asker=asker)

    async def _send(self, platform: Platform, out: Outgoing, msg: Message, snapshots: AsyncIterator[str]) -> bool:
        """Hand the reply to the platform. False when it refused for good: the message is then failed.

        ``record`` (the store) runs inside the platform's call: when it fails, the store is to blame,
        not the platform — :class:`StoreFailed` is raised for the lane to retry, and nobody is told the
        platform refused. A lost lease passes through as it is.
        """
        unrecorded: list[BaseException] = []
        record = out.record

        async def recording(ids: list[str]) -> None:
            known = self._replying.get(msg.id)
            if known is not None:
                self._replying[msg.id] = (known[0], dataclasses.replace(known[1], posted=tuple(ids)))
            try:
                await record(ids)
            except LeaseLost:
                raise
            except Exception as exc:
                unrecorded.append(exc)
                raise

        try:
            await platform.send(dataclasses.replace(out, record=recording), snapshots)
        except LeaseLost:
            raise
        except Exception as exc:  # its SDK's text may carry URLs or tokens: never show or log it
            if unrecorded:
                raise StoreFailed(f"recording a posted message failed ({type(unrecorded[0]).__name__})") \
                    from unrecorded[0]
            log.error("sending to %s failed: %s", out.thread.key, type(exc).__name__)
            self._metrics.errors.labels(platform=platform.name, kind="platform").inc()
            await self._store.fail(msg.id, f"platform: {type(exc).__name__}")
            self._tell_later(platform, out)
            return False
        if unrecorded:  # the platform went on without the record: the store still lacks those ids
            raise StoreFailed(f"recording a posted message failed ({type(unrecorded[0]).__name__})") \
                from unrecorded[0]
        return True

    async def _deliver(self, platform: Platform, out: Outgoing, msg: Message, snapshots: AsyncIterator[str]) -> None:
        if await self._send(platform, out, msg, snapshots):
            await self._store.delivered(msg.id)
            self._metrics.replies.labels(platform=platform.name).inc()

    def _tell_later(self, platform: Platform, out: Outgoing) -> None:
        """Once the platform accepts messages again, say in the thread that the answer was lost."""
        async def notify() -> None:
            notice = Outgoing(thread=out.thread, key=f"{out.key}:notice", answers=out.answers, guard=out.guard)
            text = PLATFORM_FAILED.format(platform=PLATFORM_NAMES.get(platform.name, platform.name))
            deadline = time.monotonic() + NOTICE_DEADLINE_S
            delay = 5.0
            while time.monotonic() < deadline:
                await asyncio.sleep(delay)
                try:
                    await platform.send(notice, _once(text))
                    return
                except LeaseLost:
                    return  # the session's new holder answers it
                except Exception as exc:
                    log.info("telling %s about a lost answer failed again: %s", out.thread.key, type(exc).__name__)
                    delay = min(delay * 2, 60.0)

        task = asyncio.create_task(notify())
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def close(self) -> None:
        await self.files.close()
        for task in list(self._notices):
            task.cancel()
        await asyncio.gather(*self._notices, return_exceptions=True)
        await self.budgets.close()

    # ------------------------------------------------------------------------------- chat

    async def _request(self, session: Session, persona: Persona, msg: Message, budget: int,
                       context: str) -> ChatRequest:
        """System prompt, then the conversation in order (each message followed by its reply), then ``msg``."""
        assert msg.thread is not None
        model = persona.model or self._config.llm.model
        # A display name is anyone's to choose: it never goes into the system prompt, only into user turns.
        channel = context or msg.thread.channel  # the Slack pane: where they look
        system = persona.render_system(user="the user", platform=msg.thread.platform, channel=channel)
        shared = session.key.startswith("share:")
        named = shared or persona.speaker_names

        def content(m: Message) -> str:
            words = m.content or (FILE_ONLY if files.get(m.id) else "")  # a file alone is a question about it
            if not named:
                return words
            label = speaker_label(m.author.name or m.author.id, m.thread.platform if shared and m.thread else None)
            return f"{label}: {words}"

        current_tokens = msg.tokens or await count_tokens_async(msg.content, model)
        room = budget - REPLY_PRIMING - PER_MESSAGE - _count_cached(system, model) - current_tokens
        per_turn = PER_MESSAGE + (LABEL_TOKENS if named else 0)
        history, files = await self._store.conversation(session.id, msg.id, max(room, 0), per_turn=per_turn)
        if room < 0 and files.get(msg.id):  # its files alone are more than the budget: cut them to fit
            attached = sum(f.tokens for f in files[msg.id])
            files[msg.id] = await fit_files(files[msg.id], attached + room, model)
            room = 0
        used = sum(e.message.tokens + per_turn + (e.reply_tokens + per_turn if e.reply is not None else 0)
                   for e in history)
        kept = images_kept(files, [msg.id, *(e.message.id for e in reversed(history))], room - used)

        def turn(m: Message) -> Any:
            return user_content(content(m), files.get(m.id, []), vision=persona.vision, kept=kept)

        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for exchange in history:
            messages.append({"role": "user", "content": turn(exchange.message)})
            if exchange.reply is not None:
                messages.extend(history_messages(exchange.tool_log) if exchange.tool_log != "[]" else ())
                messages.append({"role": "assistant", "content": exchange.reply})
        messages.append({"role": "user", "content": turn(msg)})
        return ChatRequest(messages=messages, model=model,
                           temperature=persona.temperature if persona.temperature is not None
                           else self._config.llm.temperature,
                           max_tokens=persona.max_tokens or self._config.llm.max_tokens)

    async def _chat(self, platform: Platform, out: Outgoing, session: Session, msg: Message,
                    started: float, attached: list[StoredFile], slot: Slot, context: str) -> None:
        """Ask the model while the platform shows the answer; ``slot`` is given back once the model is done.
        ``context``: what the person looks at beside the conversation (the persona's ``{channel}``)."""
        persona = self._persona(session)
        model = persona.model or self._config.llm.model
        notice = await self.files.notices(msg, attached, vision=persona.vision) if attached else ""
        if attached:  # its files' tokens were just added to it
            msg = await self._store.message(msg.id) or msg
        channel = Snapshots()
        loop = asyncio.get_running_loop()
        outcome: list[Answer | LLMFailure] = []
        unsaved: list[BaseException] = []  # save_final failed: the answer is shown, the lane tries again

        async def build(budget: int) -> ChatRequest:
            return await self._request(session, persona, msg, budget, context)

        async def spent(attempt: Spent) -> None:  # a cut or failed attempt: paid for before the next starts
            try:
                await self._usage.record_attempt(session, msg, persona=persona.name, request=attempt.request,
                                                 text=attempt.text)
            except Exception as exc:  # the answer goes on: the store's own failure shows where it is written
                log.error("recording the cost of message %s failed: %s", msg.id, type(exc).__name__)

        async def produce() -> None:
            used: ToolAnswer | None = None
            try:
                deadline = loop.time() + self._config.llm.answer_timeout_s

                def emit(text: str) -> None:
                    channel.put(notice + text)

                if persona.tools and self._tools is not None:  # the model may look things up first
                    used = await answer_with_tools(
                        self._llm, build, toolbox=await self._tools.toolbox(persona.tools),
                        max_steps=persona.max_tool_steps, model=model, budgets=self.budgets, deadline=deadline,
                        max_retries=self._config.llm.max_retries, emit=emit, metrics=self._metrics,
                        progress=functools.partial(show_progress, platform, out), spent=spent)
                    result = used.answer
                else:
                    result = await answer(
                        self._llm, build, model=model, budgets=self.budgets, deadline=deadline,
                        max_retries=self._config.llm.max_retries, emit=emit, metrics=self._metrics, spent=spent)
            except LLMFailure as failure:
                outcome.append(failure)
                channel.put(f"{notice}⚠️ {failure.user_message}")  # in place of any half answer
            else:
                text = notice + result.text + (TRUNCATED_NOTE if result.truncated else "")
                tokens = result.completion.completion_tokens or await count_tokens_async(text, model)
                usage = await self._usage.row(session, msg, persona=persona.name, request=result.request,
                                              completion=result.completion, text=text, answer_tokens=tokens)
                try:
                    if used is not None and used.steps:
                        log_json = used.log()
                        await self._store.save_tool_log(msg.id, log_json,
                                                        await asyncio.to_thread(log_tokens, log_json, model))
                    await self._store.save_final(msg.id, text, tokens, usage)  # one transaction: a crash keeps both
                except Exception as exc:  # never close the channel on a half answer as if it were whole
                    unsaved.append(exc)
                    if isinstance(exc, LeaseLost):
                        raise
                    outcome.append(result)
                    channel.put(text)
                    return
                self._usage.counted(usage)
                outcome.append(result)
                channel.put(text)
            finally:
                slot.release()  # the model is done and its cost stored: delivery needs no slot
                channel.close()

        await self.budgets.discover(self._llm, model, persona.max_tokens or self._config.llm.max_tokens)
        producer = asyncio.create_task(produce())
        try:
            sent = await self._send(platform, dataclasses.replace(out, rateable=True), msg, aiter(channel))
        finally:
            if not producer.done():
                producer.cancel()
            [crashed] = await asyncio.gather(producer, return_exceptions=True)
        if unsaved:
            if isinstance(unsaved[0], LeaseLost):
                raise unsaved[0]
            raise StoreFailed(f"saving the answer failed ({type(unsaved[0]).__name__})") from unsaved[0]
        if isinstance(crashed, Exception):  # e.g. the store refused the answer: say so, never silently
            log.error("answering message %s failed: %s", msg.id, type(crashed).__name__)
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
