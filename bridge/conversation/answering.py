"""Getting one answer from the LLM, whatever fails: the one place LLM calls are retried.

- Retries (tenacity) with exponential backoff and jitter, or the server's ``Retry-After``; a
  stream broken half-way is restarted from the beginning (the platform then shows the new text in
  place of the partial one).
- One deadline for the whole answer (``llm.answer_timeout_s``): no retry starts that could not end
  before it, and a stream still running at the deadline is cut.
- "Context too long" is not a retry: the history budget is halved and the request sent again,
  and the budget that worked is remembered for that model, so the next turn does not fail first.

Snapshots (the whole text so far) go to a :class:`Snapshots` channel the platform reads from.

Every attempt that reached the model is paid for, not only the one that completes: a cut, failed,
timed-out or cancelled attempt is handed to ``spent`` (what was asked, and the text received)
before the next one starts, so a slow model cut by the deadline cannot be asked again for free.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from bridge.llm.client import ChatRequest, Completion, LLMClient, LLMFailure
from bridge.metrics import Metrics

log = logging.getLogger(__name__)

CONTEXT_RETRIES = 3       # halve the history budget at most this many times when a server says "too long"
MIN_BUDGET = 256          # and never below this
TRUNCATED_NOTE = "\n\n_(This answer was cut off at the length limit.)_"
_backoff = wait_exponential_jitter(multiplier=0.5, max=8, jitter=0.5)


class Snapshots:
    """A one-slot channel of cumulative text: the reader gets the newest snapshot, never a backlog."""

    def __init__(self) -> None:
        self._text: str | None = None
        self._closed = False
        self._changed = asyncio.Event()

    def put(self, text: str) -> None:
        self._text = text
        self._changed.set()

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    async def __aiter__(self) -> AsyncIterator[str]:
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._text is not None:
                text, self._text = self._text, None
                yield text
            if self._closed and self._text is None:
                return


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    completion: Completion
    attempts: int
    request: ChatRequest | None = None  # the request that got this answer (its prompt, for our own count)

    @property
    def truncated(self) -> bool:
        return self.completion.finish_reason == "length"


@dataclass(frozen=True, slots=True)
class Spent:
    """An attempt that reached the model but did not complete: the request and the text received."""

    request: ChatRequest
    text: str


def charged(exc: BaseException, text: str) -> bool:
    """Whether a failed attempt cost anything: not when the server refused it outright (a 4xx: rate
    limit, quota, context, auth) or never got it (unreachable before any text came)."""
    if isinstance(exc, LLMFailure):
        if exc.status is not None and 400 <= exc.status < 500:
            return False
        if exc.kind == "unreachable" and not text:
            return False
    return True


class Budgets:
    """The history budget per model: ``llm.context_tokens``, capped by the window the server reports
    (leaving room for the answer) and lowered to what a server accepted after a "too long"."""

    def __init__(self, configured: int) -> None:
        self.configured = configured
        self._by_model: dict[str, int] = {}
        self._asked: dict[str, asyncio.Task[int | None]] = {}

    async def discover(self, llm: LLMClient, model: str, answer_tokens: int | None) -> None:
        """Ask the server for the model's window once per model (llama.cpp ``/props``, vLLM ``/models``).

        Every answer for the model waits on the one question: it is shielded, so an answer stopped
        while waiting does not cancel it for all the others; a question that failed is asked again.
        """
        task = self._asked.get(model)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._asked[model] = asyncio.ensure_future(llm.context_window(model))
        window = await asyncio.shield(task)
        if window:
            room = window - (answer_tokens or window // 4)
            if room >= MIN_BUDGET and room < self.get(model):
                log.info("model %s: the server's window is %d tokens; history budget %d", model, window, room)
                self._by_model[model] = room

    def get(self, model: str) -> int:
        return self._by_model.get(model, self.configured)

    async def close(self) -> None:
        """Stop questions still running (at shutdown, when nobody waits for them any more)."""
        for task in self._asked.values():
            task.cancel()
        await asyncio.gather(*self._asked.values(), return_exceptions=True)

    def worked(self, model: str, budget: int) -> None:
        if budget < self.get(model):
            log.info("model %s: remembering a context budget of %d tokens", model, budget)
            self._by_model[model] = budget


async def answer(llm: LLMClient, build: Callable[[int], Awaitable[ChatRequest]], *, model: str, budgets: Budgets,
                 deadline: float, max_retries: int, emit: Callable[[str], None], metrics: Metrics,
                 spent: Callable[[Spent], Awaitable[None]] | None = None) -> Answer:
    """Ask until an answer is complete, the retries are spent, or the deadline would pass.

    ``build(budget)`` makes the request with a history of at most ``budget`` tokens. ``spent`` is
    awaited for each attempt that reached the model without completing (see :func:`charged`), before
    anything else happens. Raises the last :class:`LLMFailure` when giving up (``timeout`` when the
    deadline cut the answer).
    """
    loop = asyncio.get_running_loop()
    attempts = 0

    async def attempt() -> Answer:
        nonlocal attempts
        budget = budgets.get(model)
        halvings = 0
        while True:
            attempts += 1
            text = ""
            request: ChatRequest | None = None
            try:
                try:
                    async with asyncio.timeout_at(deadline):
                        request = await build(budget)
                        async for item in llm.stream(request):
                            if isinstance(item, Completion):
                                budgets.worked(model, budget)
                                return Answer(text, item, attempts, request)
                            text += item
                            emit(text)
                    raise LLMFailure("error")  # the stream ended without saying how: a broken server
                except BaseException as exc:  # cancelled included: what the model wrote was still spent
                    if spent is not None and request is not None and charged(exc, text):
                        await spent(Spent(request, text))
                    raise
            except TimeoutError:
                raise LLMFailure("timeout") from None
            except LLMFailure as failure:
                if failure.kind == "context" and halvings < CONTEXT_RETRIES and budget // 2 >= MIN_BUDGET:
                    budget //= 2
                    halvings += 1
                    log.info("context too long for %s: retrying with a %d-token history", model, budget)
                    continue
                raise

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = exc.retry_after if isinstance(exc, LLMFailure) else None
        return after if after is not None else float(_backoff(state))

    def stop(state: RetryCallState) -> bool:
        return state.attempt_number > max_retries or loop.time() + (state.upcoming_sleep or 0) >= deadline

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        kind = exc.kind if isinstance(exc, LLMFailure) else "error"
        metrics.llm_retries.labels(kind=kind).inc()
        log.info("LLM %s: retrying in %.1f s", kind, state.upcoming_sleep or 0)

    retrying = AsyncRetrying(retry=retry_if_exception(lambda e: isinstance(e, LLMFailure) and e.retryable),
                             wait=wait, stop=stop, before_sleep=before_sleep, reraise=True)
    result: Answer = await retrying(attempt)
    return result
