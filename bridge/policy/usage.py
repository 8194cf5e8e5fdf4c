"""What answers cost: recorded per message that reached the model, checked against ``limits:``,
shown by ``/usage``.

The responder calls :meth:`Usage.over_budget` once it holds an answer slot, right before asking the
LLM; :meth:`Usage.record_attempt` for every attempt that was cut or failed, as it ends; and
:meth:`Usage.row` for the answer that completes, written with the answer itself. Tokens are the
LLM server's report (prompt + completion); when a server reports none (it never does for a cut
stream), the bridge's own offline count of the request and of the text received stands in.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bridge.attachments.prompt import content_tokens
from bridge.config import Config
from bridge.conversation.rules import match_rule
from bridge.llm.client import ChatRequest, Completion
from bridge.llm.tokens import PER_MESSAGE, REPLY_PRIMING, count_tokens_async
from bridge.metrics import Metrics
from bridge.policy.access import is_admin
from bridge.policy.budgets import DAY_S, Budget, Scope, budgets, first_exceeded, sentence, when, window_start
from bridge.policy.config import Limits
from bridge.store.store import Message, Session, Store
from bridge.store.usage import UsageRow, user_scope


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # stored with the message, e.g. "budget: user_tokens_per_day"
    text: str    # what the user is told


def _request_tokens(request: ChatRequest) -> int:
    return REPLY_PRIMING + sum(PER_MESSAGE + content_tokens(m.get("content"), request.model)
                               for m in request.messages)


class Usage:
    def __init__(self, config: Config, store: Store, metrics: Metrics) -> None:
        self._config = config
        self._store = store
        self._metrics = metrics

    def limits_for(self, msg: Message) -> Limits:
        rule = match_rule(self._config.channels, msg.thread) if msg.thread is not None else None
        return self._config.limits.over(rule.limits if rule is not None else None)

    @staticmethod
    def scope(session: Session, msg: Message) -> Scope:
        thread = msg.thread
        return Scope(thread.platform if thread else "", msg.author.id, thread.channel if thread else "", session.key)

    async def over_budget(self, session: Session, msg: Message) -> Refusal | None:
        """A refusal when a limit in force is used up; None when the LLM may be asked."""
        now = time.time()
        budget = await first_exceeded(self._store, self.limits_for(msg), self.scope(session, msg), now)
        if budget is None:
            return None
        platform = msg.thread.platform if msg.thread else ""
        self._metrics.refused.labels(platform=platform, reason=budget.key).inc()
        return Refusal(f"budget: {budget.key}", sentence(budget, now))

    async def row(self, session: Session, msg: Message, *, persona: str, request: ChatRequest | None,
                  completion: Completion | None, text: str, answer_tokens: int | None = None) -> UsageRow:
        """What one attempt cost: the server's report where it gave one, else our own count of the request
        and of ``text``, what was received (``answer_tokens``: already counted)."""
        reported = completion or Completion()
        model = request.model if request is not None else self._config.llm.model
        prompt = reported.prompt_tokens
        if prompt is None:
            prompt = await asyncio.to_thread(_request_tokens, request) if request is not None else msg.tokens
        done = reported.completion_tokens
        if done is None:
            done = answer_tokens if answer_tokens is not None else await count_tokens_async(text, model)
        scope = self.scope(session, msg)
        return UsageRow(msg.id, scope.platform, scope.channel, scope.session_key, scope.user_id, persona, model,
                        prompt, done)

    def counted(self, row: UsageRow) -> None:
        """The metrics' share of a row once it is stored."""
        for kind, n in (("prompt", row.prompt_tokens), ("completion", row.completion_tokens)):
            self._metrics.tokens.labels(platform=row.platform, persona=row.persona, model=row.model, kind=kind).inc(n)

    async def record_attempt(self, session: Session, msg: Message, *, persona: str, request: ChatRequest,
                             text: str) -> None:
        """An attempt that reached the model and was cut or failed: its prompt and the text received."""
        row = await self.row(session, msg, persona=persona, request=request, completion=None, text=text)
        await self._store.record_usage(row)
        self.counted(row)

    async def describe(self, session: Session, msg: Message, everyone: bool = False) -> str:
        """``/usage``: the asker's own usage today and what is left; ``/usage all`` (admins): everyone's."""
        now = time.time()
        scope = self.scope(session, msg)
        if everyone:
            if not is_admin(self._config, scope.platform, scope.user_id, msg.author.name):
                return "Sorry, only the bot's admins can see everyone's usage. `/usage` shows yours."
            return await self._everyone(now)
        day = await self._store.day_totals(window_start(now, DAY_S), user_scope(scope.platform, scope.user_id))
        lines = [f"Your usage today (UTC): {day.messages} answer(s), {day.tokens:,} tokens "
                 f"({day.prompt_tokens:,} prompt + {day.completion_tokens:,} completion)."]
        limits = await budgets(self._store, self.limits_for(msg), scope, now)
        if not limits:
            lines.append("No limits are set here.")
        for b in limits:
            lines.append(_budget_line(b, now))
        return "\n".join(lines)

    async def _everyone(self, now: float) -> str:
        lines = await self._store.usage_report(window_start(now, DAY_S), "user")
        per_user: dict[str, list[int]] = {}
        for line in lines:
            acc = per_user.setdefault(line.key, [0, 0])
            acc[0] += line.totals.messages
            acc[1] += line.totals.tokens
        if not per_user:
            return "Nobody has used the bot today (UTC)."
        total = sum(v[1] for v in per_user.values())
        out = [f"Usage today (UTC): {sum(v[0] for v in per_user.values())} answer(s), {total:,} tokens."]
        for user, (messages, tokens) in sorted(per_user.items(), key=lambda kv: -kv[1][1])[:20]:
            out.append(f"- {user}: {messages} answer(s), {tokens:,} tokens")
        return "\n".join(out)


def _budget_line(b: Budget, now: float) -> str:
    unit = "messages" if b.key.endswith("messages_per_hour") else "tokens"
    return (f"- {b.key}: {b.used:,} of {b.limit:,} {unit} used, {b.remaining:,} left "
            f"(resets at {when(b.resets_at, now)})")
