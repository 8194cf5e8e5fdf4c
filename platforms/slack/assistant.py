"""Slack's assistant pane (``assistant: true``): Bolt's own :class:`AsyncAssistant` middleware, given
the persona that answers the DM.

- ``assistant_thread_started`` (someone opened the pane): the persona's greeting in the new thread,
  and its suggested prompts (at most four) as buttons;
- the first question of such a thread becomes its title in the pane's history;
- while an answer is written the thread shows a status ("is thinking…"), cleared when the
  answer is complete or has failed (:meth:`AssistantPane.thinking`);
- the channel the person looks at (``assistant_thread_started`` and
  ``assistant_thread_context_changed``) rides along with their next question into the session,
  where the persona's system prompt reads it as ``{channel}``.

User messages in the pane go through the adapter's ordinary message handler, so they are stored,
deduplicated and answered like every DM.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.context.say.async_say import AsyncSay
from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import AsyncSetSuggestedPrompts
from slack_bolt.context.set_title.async_set_title import AsyncSetTitle
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import is_assistant_event, is_other_message_sub_event_in_assistant_thread
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.config import Config
from bridge.conversation.rules import match_rule
from bridge.personas import Persona, load_personas
from bridge.types import Incoming, Outgoing, ThreadRef
from platforms.slack.delivery import NETWORK_ERRORS, patience

log = logging.getLogger(__name__)

DEFAULT_GREETING = "Hi! Ask me anything: I answer in this thread."
THINKING = "is thinking…"
TITLE_CHARS = 60  # the pane's history shows about this much of a title
MAX_UNTITLED = 10_000  # threads opened and not yet asked anything, remembered for their title
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")

MessageHandler = Callable[[dict[str, Any], AsyncBoltContext], Awaitable[None]]


def title_of(question: str) -> str:
    """The first line of the first question, cut to what the pane shows."""
    line = next((ln.strip() for ln in question.splitlines() if ln.strip()), "") or "Conversation"
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS - 1].rstrip() + "…"


class _Assistant(AsyncAssistant):
    """Bolt's assistant middleware, asked only about the events it handles.

    For every request it tries each of its listeners, and each try builds every argument Bolt can
    give a listener: a fifth of Bolt's dispatch of a channel mention, which none of them takes
    (``python -m bench.bench_slack --profile``). Its listeners' own matchers are Bolt's payload
    predicates, asked here once, first; whatever they all refuse goes on as it did.
    """

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        if is_assistant_event(req.body) or is_other_message_sub_event_in_assistant_thread(req.body):
            return await super().async_process(req=req, resp=resp, next=next)
        await next()
        return None


class AssistantPane:
    """The greeting, prompts, titles and status of Slack's assistant threads."""

    def __init__(self, client: AsyncWebClient, config: Config, on_message: MessageHandler) -> None:
        self._client, self._config, self._on_message = client, config, on_message
        self._personas: dict[str, Persona] = {}
        self._untitled: dict[tuple[str, str], None] = {}  # opened, no question yet (insertion-ordered)
        self.middleware = _Assistant(logger=logging.getLogger(f"{__name__}.bolt"))
        self._contexts: dict[tuple[str, str], str] = {}  # pane thread → channel the person looks at
        self.middleware.thread_started(self._started)
        self.middleware.thread_context_changed(self._context_changed)
        self.middleware.user_message(self._user_message)

    async def load(self) -> None:
        """The persona files, read off the event loop (they were checked at start)."""
        self._personas = await asyncio.to_thread(load_personas, self._config.personas_dir)

    def persona_for(self, thread: ThreadRef) -> Persona | None:
        """The persona of the rule matching the DM, else ``default_persona``."""
        rule = match_rule(self._config.channels, thread)
        name = (rule.persona if rule is not None and rule.persona else None) or self._config.default_persona
        return self._personas.get(name)

    async def _started(self, payload: dict[str, Any], body: dict[str, Any], say: AsyncSay,
                       set_suggested_prompts: AsyncSetSuggestedPrompts) -> None:
        thread = payload.get("assistant_thread") or {}
        channel, thread_ts = str(thread.get("channel_id") or ""), str(thread.get("thread_ts") or "")
        team = str(body.get("team_id") or "")
        persona = self.persona_for(ThreadRef("slack", team, channel, thread_ts))
        await say(text=(persona.greeting if persona is not None and persona.greeting else DEFAULT_GREETING))
        if persona is not None and persona.suggested_prompts:
            await set_suggested_prompts(prompts=[{"title": p.title, "message": p.message}
                                                 for p in persona.suggested_prompts])
        self._untitled[(channel, thread_ts)] = None
        while len(self._untitled) > MAX_UNTITLED:
            del self._untitled[next(iter(self._untitled))]
        self._keep_context(thread)

    async def _context_changed(self, payload: dict[str, Any]) -> None:
        self._keep_context(payload.get("assistant_thread") or {})

    def _keep_context(self, thread: dict[str, Any]) -> None:
        """Until the next question carries it to the session (bounded like the titles)."""
        context = thread.get("context") or {}
        looked_at = context.get("channel_id") if isinstance(context, dict) else None
        where = (str(thread.get("channel_id") or ""), str(thread.get("thread_ts") or ""))
        if isinstance(looked_at, str) and _CHANNEL_ID.match(looked_at):
            self._contexts.pop(where, None)
            self._contexts[where] = looked_at
            while len(self._contexts) > MAX_UNTITLED:
                del self._contexts[next(iter(self._contexts))]

    def with_context(self, msg: Incoming) -> Incoming:
        """A pane question carries the channel the person looks at, which the core keeps with the session."""
        looked_at = self._contexts.get((msg.thread.channel, msg.thread.thread))
        return dataclasses.replace(msg, context=looked_at) if looked_at else msg

    async def _user_message(self, payload: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext,
                            set_title: AsyncSetTitle) -> None:
        """Answered like any DM; the first question of a pane thread also titles it."""
        await self._on_message(body, context)
        where = (str(payload.get("channel") or ""), str(payload.get("thread_ts") or ""))
        if where in self._untitled and str(payload.get("text") or "").strip():
            del self._untitled[where]
            try:
                await set_title(title_of(str(payload["text"])))
            except (SlackApiError, *NETWORK_ERRORS) as exc:
                log.info("slack: could not title an assistant thread (%s)", type(exc).__name__)

    @asynccontextmanager
    async def thinking(self, reply: Outgoing) -> AsyncIterator[None]:
        """A status in the thread while the answer is written; cleared however it ends."""
        thread = reply.thread
        pane = thread.channel.startswith("D") and thread.thread != thread.channel
        if pane:
            await self._status(thread, THINKING)
        try:
            yield
        finally:
            if pane:
                await self._status(thread, "")

    async def _status(self, thread: ThreadRef, status: str) -> None:
        """One try: a status is a courtesy, never a reason to hold an answer back."""
        try:
            with patience(0):
                await self._client.assistant_threads_setStatus(channel_id=thread.channel, thread_ts=thread.thread,
                                                               status=status)
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            log.debug("slack: assistant status not set (%s)", type(exc).__name__)
