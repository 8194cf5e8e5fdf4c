"""The LLM client: the ``openai`` async SDK against any OpenAI-compatible ``base_url``.

Retries with exponential backoff, honouring ``Retry-After``, are the SDK's (``max_retries``); this
module adds streaming as plain text deltas, metrics, and the translation of every failure into a
short sentence a user can read in their thread — never an exception text, never a key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import openai
from openai import AsyncOpenAI

from bridge.config import LLMConfig
from bridge.metrics import Metrics

log = logging.getLogger(__name__)

FailureKind = Literal["timeout", "rate_limited", "quota", "context", "auth", "model", "unreachable",
                      "server", "error"]

USER_MESSAGES: dict[FailureKind, str] = {
    "timeout": "The language model took too long to answer. Please try again in a moment.",
    "rate_limited": "The language model is getting too many requests right now. Please try again in a minute.",
    "quota": "The language model's usage quota is used up. The bridge's operator needs to check the "
             "account's plan or billing.",
    "context": "This conversation is too long for the language model, even after leaving out older "
               "messages. Send /reset to start afresh, or send a shorter message.",
    "auth": "The bridge could not sign in to the language model. The operator needs to check llm.api_key.",
    "model": "The language model server does not know the configured model. The operator needs to check "
             "llm.model.",
    "unreachable": "The bridge could not reach the language model server. Please try again later.",
    "server": "The language model server had an internal error. Please try again in a moment.",
    "error": "Something went wrong while asking the language model. Please try again.",
}


class LLMFailure(Exception):
    """A failed LLM call, reduced to a kind and a sentence that is safe to show anyone."""

    def __init__(self, kind: FailureKind, status: int | None = None) -> None:
        self.kind = kind
        self.status = status
        super().__init__(f"LLM call failed: {kind}" + (f" (HTTP {status})" if status else ""))

    @property
    def user_message(self) -> str:
        return USER_MESSAGES[self.kind]


_CONTEXT_MARKERS = ("context_length", "context length", "context window", "exceed_context", "maximum context",
                    "too many tokens", "n_ctx")


def classify(exc: BaseException) -> LLMFailure:
    """Map an ``openai`` exception to an :class:`LLMFailure` (its text is read, never repeated)."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.APITimeoutError):
        return LLMFailure("timeout")
    if isinstance(exc, openai.APIConnectionError):
        return LLMFailure("unreachable")
    if isinstance(exc, openai.RateLimitError):
        code = str(getattr(exc, "code", "") or "")
        return LLMFailure("quota" if "quota" in code or "quota" in str(exc).lower() else "rate_limited", 429)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMFailure("auth", status)
    if isinstance(exc, openai.NotFoundError):
        return LLMFailure("model", status)
    if isinstance(exc, openai.APIStatusError):
        text = f"{getattr(exc, 'code', '')} {exc.message} {exc.body}".lower()
        if status in (400, 413, 422) and any(m in text for m in _CONTEXT_MARKERS):
            return LLMFailure("context", status)
        if status is not None and status >= 500:
            return LLMFailure("server", status)
        return LLMFailure("error", status)
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        text = str(exc).lower()
        if any(m in text for m in _CONTEXT_MARKERS):
            return LLMFailure("context")
        return LLMFailure("server")
    return LLMFailure("error")


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: list[dict[str, str]]
    model: str
    temperature: float | None = None
    max_tokens: int | None = None


class LLMClient:
    def __init__(self, config: LLMConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            # Local servers (llama.cpp, Ollama) need no key, but the SDK insists on one.
            api_key=config.api_key.get_secret_value() or "no-key",
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )

    async def close(self) -> None:
        await self._client.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[str]:
        """Yield the reply as text deltas; raise :class:`LLMFailure` on any failure."""
        started = time.monotonic()
        kwargs: dict[str, Any] = {"model": request.model, "messages": request.messages}
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        try:
            if self._config.stream:
                chunks = await self._client.chat.completions.create(
                    stream=True, stream_options={"include_usage": True}, **kwargs)
                async for chunk in chunks:
                    if chunk.usage is not None:
                        self._metrics.count_tokens(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield choice.delta.content
            else:
                completion = await self._client.chat.completions.create(**kwargs)
                if completion.usage is not None:
                    self._metrics.count_tokens(completion.usage.prompt_tokens,
                                               completion.usage.completion_tokens)
                yield completion.choices[0].message.content or "" if completion.choices else ""
        except openai.OpenAIError as exc:
            failure = classify(exc)
            self._metrics.llm_errors.labels(kind=failure.kind).inc()
            log.warning("LLM request failed: %s (%s)", failure.kind, type(exc).__name__)
            raise failure from None
        finally:
            self._metrics.llm_latency.observe(time.monotonic() - started)
