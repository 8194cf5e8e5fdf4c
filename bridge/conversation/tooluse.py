"""The tool loop: the model calls tools, sees their results, and answers.

Each round asks the model (through :func:`~bridge.conversation.answering.answer`, so retries and the
deadline work as for any answer) with the persona's tools offered. When it asks for tools, every
call of that round runs at once, each bounded by its server's ``timeout_s``, and every call id gets
a ``tool`` message back, whatever happened (an invented name, a failing or hanging server: the
model reads why). After ``max_tool_steps`` rounds the model is asked to answer with what it has,
with tools no longer callable. Tokens of every round are summed, so budgets count them all.

What happened comes back as values (:class:`ToolAnswer`): the caller stores the steps with the
reply, and :func:`history_messages` turns them back into messages for later turns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bridge.conversation.answering import Answer, Budgets, Spent, answer
from bridge.llm.client import ChatRequest, Completion, LLMClient, ToolCall
from bridge.llm.tokens import PER_MESSAGE, REPLY_PRIMING, count_tokens
from bridge.metrics import Metrics
from bridge.tools.catalog import Toolbox
from bridge.tools.results import ToolResult

LAST_ROUND_NOTE = ("You have used every tool call allowed for this answer. Do not call tools now: answer the "
                   "question with what you have found so far, and say what you could not check.")
MIN_HISTORY_BUDGET = 256  # what the conversation keeps however long the tool results grow


@dataclass(frozen=True, slots=True)
class ToolStep:
    """One call and its result, as stored with the reply and shown by ``bridge sessions show``."""

    round: int
    id: str
    name: str
    arguments: str
    outcome: str
    result: str
    seconds: float


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    answer: Answer                 # the final text; its completion sums the tokens of every round
    steps: tuple[ToolStep, ...]

    def log(self) -> str:
        return json.dumps([dataclasses.asdict(s) for s in self.steps], ensure_ascii=False)


def _request_tokens(request: ChatRequest) -> int:
    total = REPLY_PRIMING
    for m in request.messages:
        total += PER_MESSAGE + count_tokens(str(m.get("content") or ""), request.model)
        for call in m.get("tool_calls") or ():
            total += count_tokens(call["function"]["name"] + call["function"]["arguments"], request.model)
    if request.tools:
        total += count_tokens(json.dumps(request.tools), request.model)
    return total


def _call_message(text: str, calls: tuple[ToolCall, ...]) -> dict[str, Any]:
    return {"role": "assistant", "content": text or None,
            "tool_calls": [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                           for c in calls]}


def history_messages(log: str) -> list[dict[str, Any]]:
    """An earlier answer's tool calls and results, as the messages the model saw (for later turns)."""
    try:
        steps = json.loads(log)
    except ValueError:
        return []
    out: list[dict[str, Any]] = []
    rounds: dict[int, list[dict[str, Any]]] = {}
    for s in steps if isinstance(steps, list) else ():
        rounds.setdefault(int(s["round"]), []).append(s)
    for _, calls in sorted(rounds.items()):
        out.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls]})
        out.extend({"role": "tool", "tool_call_id": c["id"], "content": c["result"]} for c in calls)
    return out


SHOWN_RESULT_CHARS = 300  # `bridge sessions show`: the beginning of each result


def describe_tool_log(log: str) -> list[str]:
    """``bridge sessions show``: each call with its arguments, outcome, time and the start of its result."""
    try:
        steps = json.loads(log)
    except ValueError:
        return []
    lines = []
    for s in steps if isinstance(steps, list) else ():
        result = str(s.get("result", ""))
        shown = result[:SHOWN_RESULT_CHARS] + ("…" if len(result) > SHOWN_RESULT_CHARS else "")
        lines.append(f"--- tool {s.get('name')}({s.get('arguments')}) → {s.get('outcome')} "
                     f"in {float(s.get('seconds', 0)):.2f} s (round {s.get('round')})")
        lines.extend("    " + line for line in shown.splitlines() or [""])
    return lines


def log_tokens(log: str, model: str) -> int:
    """What an answer's tool messages cost in a later prompt (counted once, stored with the reply)."""
    return sum(PER_MESSAGE + count_tokens(json.dumps(m.get("tool_calls") or m.get("content")), model)
               for m in history_messages(log))


async def answer_with_tools(llm: LLMClient, build: Callable[[int], Awaitable[ChatRequest]], *, toolbox: Toolbox,
                            max_steps: int, model: str, budgets: Budgets, deadline: float, max_retries: int,
                            emit: Callable[[str], None], metrics: Metrics,
                            progress: Callable[[str], Awaitable[None]],
                            spent: Callable[[Spent], Awaitable[None]] | None = None) -> ToolAnswer:
    """Rounds of model → tools → model until it answers, or ``max_steps`` rounds were used."""
    extra: list[dict[str, Any]] = []
    extra_tokens = 0
    steps: list[ToolStep] = []
    prompt_total = completion_total = 0
    attempts = 0
    rounds = 0
    while True:
        last = rounds >= max_steps or not toolbox.specs
        sent: list[ChatRequest] = []
        tail = extra + ([{"role": "system", "content": LAST_ROUND_NOTE}] if last and rounds else [])

        async def build_round(budget: int, last: bool = last, sent: list[ChatRequest] = sent,
                              tail: list[dict[str, Any]] = tail, used: int = extra_tokens) -> ChatRequest:
            base = await build(max(budget - used, MIN_HISTORY_BUDGET))
            request = dataclasses.replace(base, messages=base.messages + tail, tools=None if last else toolbox.specs)
            sent.append(request)
            return request

        result = await answer(llm, build_round, model=model, budgets=budgets, deadline=deadline,
                              max_retries=max_retries, emit=emit, metrics=metrics, spent=spent)
        attempts += result.attempts
        c = result.completion
        calls = () if last else c.tool_calls
        prompt_total += c.prompt_tokens if c.prompt_tokens is not None else \
            await asyncio.to_thread(_request_tokens, sent[-1])
        completion_total += c.completion_tokens if c.completion_tokens is not None else await asyncio.to_thread(
            count_tokens, result.text + "".join(t.name + t.arguments for t in c.tool_calls), model)
        if not calls:
            total = Completion(c.finish_reason, prompt_total, completion_total)
            return ToolAnswer(Answer(result.text, total, attempts), tuple(steps))
        rounds += 1
        extra.append(_call_message(result.text, calls))
        results = await asyncio.gather(*(_run(toolbox, call, progress) for call in calls))
        for call, (outcome, seconds) in zip(calls, results, strict=True):
            metrics.tool_calls.labels(tool=call.name if call.name in toolbox.offered else "(unknown)",
                                      outcome=outcome.outcome).inc()
            steps.append(ToolStep(rounds, call.id, call.name, call.arguments, outcome.outcome, outcome.text,
                                  round(seconds, 3)))
            extra.append({"role": "tool", "tool_call_id": call.id, "content": outcome.text})
        extra_tokens = await asyncio.to_thread(
            lambda: sum(PER_MESSAGE + count_tokens(json.dumps(m), model) for m in extra))


async def _run(toolbox: Toolbox, call: ToolCall, progress: Callable[[str], Awaitable[None]]
               ) -> tuple[ToolResult, float]:
    started = time.monotonic()
    # The thread shows the tool at once, beside the call (a name the model invented is not shown).
    shown = asyncio.ensure_future(progress(call.name) if call.name in toolbox.offered else asyncio.sleep(0))
    try:
        result = await toolbox.call(call.name, call.arguments)
    except Exception as exc:  # a defect, not the tool's: the model is still answered, and the answer goes on
        result = ToolResult("error", f"The tool failed unexpectedly ({type(exc).__name__}).")
    finally:
        await asyncio.gather(shown, return_exceptions=True)
    return result, time.monotonic() - started
