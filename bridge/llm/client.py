"""The LLM client: the ``openai`` async SDK against any OpenAI-compatible ``base_url``.

One request per call, no retries here: the SDK retries only until a response starts, so a stream
broken half-way would escape it. Retries live in one place, :mod:`bridge.conversation.answering`, which also
restarts broken streams. This module streams plain text deltas, ends with a :class:`Completion`
(why the model stopped, the tokens it reports), and turns every failure into an
:class:`LLMFailure`: a kind, a ``Retry-After`` if the server gave one, and a sentence a user can
read in their thread — never an exception text, never a key.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import openai
import orjson
from openai import AsyncOpenAI, AsyncStream

from bridge.config import LLMConfig
from bridge.llm.models import model_ids, window_from_models, window_from_props
from bridge.llm.toolcalls import ToolCalls
from bridge.metrics import Metrics

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0  # discovery and readiness requests

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


RETRYABLE: frozenset[FailureKind] = frozenset({"timeout", "rate_limited", "unreachable", "server"})


class LLMFailure(Exception):
    """A failed LLM call, reduced to a kind and a sentence that is safe to show anyone."""

    def __init__(self, kind: FailureKind, status: int | None = None, retry_after: float | None = None) -> None:
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"LLM call failed: {kind}" + (f" (HTTP {status})" if status else ""))

    @property
    def user_message(self) -> str:
        return USER_MESSAGES[self.kind]

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE


def _retry_after(exc: BaseException) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms`` from an error response."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


_CONTEXT_MARKERS = ("context_length", "context length", "context window", "exceed_context", "maximum context",
                    "too many tokens", "n_ctx")


def _refused(exc: BaseException) -> bool:
    """Whether a connection was refused (or the host unknown) somewhere in the exception's causes."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, aiohttp.ClientConnectorError | ConnectionRefusedError) and not isinstance(
                seen, aiohttp.ServerTimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def classify(exc: BaseException) -> LLMFailure:
    """Map an ``openai`` exception to an :class:`LLMFailure` (its text is read, never repeated)."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.APITimeoutError):
        # The aiohttp transport reports a refused connection as a connect *timeout*: look underneath.
        return LLMFailure("unreachable" if _refused(exc) else "timeout")
    if isinstance(exc, openai.APIConnectionError):
        return LLMFailure("unreachable")
    if isinstance(exc, openai.RateLimitError):
        code = str(getattr(exc, "code", "") or "")
        if "quota" in code or "quota" in str(exc).lower():
            return LLMFailure("quota", 429)
        return LLMFailure("rate_limited", 429, _retry_after(exc))
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMFailure("auth", status)
    if isinstance(exc, openai.NotFoundError):
        return LLMFailure("model", status)
    if isinstance(exc, openai.APIStatusError):
        text = f"{getattr(exc, 'code', '')} {exc.message} {exc.body}".lower()
        if status in (400, 413, 422) and any(m in text for m in _CONTEXT_MARKERS):
            return LLMFailure("context", status)
        if status is not None and status >= 500:
            return LLMFailure("server", status, _retry_after(exc))
        return LLMFailure("error", status)
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        text = str(exc).lower()
        if any(m in text for m in _CONTEXT_MARKERS):
            return LLMFailure("context")
        return LLMFailure("server")
    if isinstance(exc, OSError | EOFError) or type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore",
                                                                                    "httpcore2", "h11"):
        return LLMFailure("unreachable")  # the connection broke while a stream was being read
    return LLMFailure("error")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the model asked to run (OpenAI format): its call id, the tool's name, JSON arguments."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Completion:
    """How an answer ended: the model's ``finish_reason``, the tokens the server reported, and the
    tools it asked to run (then the answer is not finished: :mod:`bridge.conversation.tooluse`)."""

    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: list[dict[str, Any]]  # content: text, or parts (text, image_url)
    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None  # OpenAI function tools the model may call


_JSON: Any = {"headers": {"Content-Type": "application/json"}}


class LLMClient:
    def __init__(self, config: LLMConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            # Local servers (llama.cpp, Ollama) need no key, but the SDK insists on one.
            api_key=config.api_key.get_secret_value() or "no-key",
            timeout=config.timeout_s,
            max_retries=0,  # retried in bridge.conversation.answering, mid-stream failures included
            # The SDK's aiohttp transport: its connection pool costs a fraction of httpcore's per
            # request under load (python -m bench.bench_load).
            http_client=openai.DefaultAioHttpClient(),
        )
        # Reachability, for /readyz: when a call last succeeded, and the last failure (time, kind).
        self.last_success: float | None = None
        self.last_failure: tuple[float, FailureKind] | None = None

    async def close(self) -> None:
        await self._client.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[str | Completion]:
        """Yield the reply as text deltas, then one :class:`Completion`; raise :class:`LLMFailure`.

        The request goes through the SDK's ``post`` (its auth, errors, SSE parsing) with a body
        serialised once by orjson, and responses stay plain dicts: building the SDK's typed request
        and pydantic objects for every answer and chunk was most of the bridge's CPU per message
        (``python -m bench.bench_load --profile``).
        """
        started = time.monotonic()
        body: dict[str, Any] = {"model": request.model, "messages": request.messages}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.tools:
            body["tools"] = request.tools
        if self._config.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        finish: str | None = None
        usage: dict[str, Any] = {}
        calls = ToolCalls()
        try:
            response: Any = await self._client.post(
                "/chat/completions", cast_to=object, content=orjson.dumps(body), options=_JSON,
                stream=self._config.stream, stream_cls=AsyncStream[object] if self._config.stream else None)
            if self._config.stream:
                async for chunk in response:
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        content = delta.get("content")
                        if content:
                            yield content
                        calls.add_deltas(delta.get("tool_calls"))
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
            else:
                usage = response.get("usage") or {}
                choices = response.get("choices") or []
                if choices:
                    finish = choices[0].get("finish_reason")
                    message = choices[0].get("message") or {}
                    calls.add_whole(message.get("tool_calls"))
                    yield message.get("content") or ""
            self.last_success = time.time()
        except (openai.OpenAIError, OSError, EOFError) as exc:
            raise self._failed(exc) from None
        except Exception as exc:
            if type(exc).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore", "httpcore2", "h11"):
                raise
            raise self._failed(exc) from None
        finally:
            self._metrics.llm_latency.observe(time.monotonic() - started)
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if usage:
            self._metrics.count_tokens(prompt, completion)
        self._metrics.llm_attempts.labels(outcome="ok").inc()
        yield Completion(finish, prompt, completion, calls.done())

    def _failed(self, exc: BaseException) -> LLMFailure:
        failure = classify(exc)
        self.last_failure = (time.time(), failure.kind)
        self._metrics.llm_errors.labels(kind=failure.kind).inc()
        self._metrics.llm_attempts.labels(outcome=failure.kind).inc()
        log.warning("LLM request failed: %s (%s)", failure.kind, type(exc).__name__)
        return failure

    # ---------------------------------------------------------------- discovery and reachability
    # What the server says about itself: `bridge check --online`, the readiness probe (/readyz)
    # and the context budget. Short timeouts and no retries: these are questions, not answers.

    async def _get_json(self, path: str) -> Any:
        return await self._client.get(path, cast_to=object,
                                      options={"timeout": min(self._config.timeout_s, PROBE_TIMEOUT_S),
                                               "max_retries": 0})

    async def models(self) -> list[str]:
        """The model ids the server lists (``GET /models``); raises :class:`LLMFailure`."""
        try:
            listing = await self._get_json("/models")
        except openai.OpenAIError as exc:
            failure = classify(exc)
            self.last_failure = (time.time(), failure.kind)
            raise failure from None
        self.last_success = time.time()
        return model_ids(listing)

    async def probe(self) -> bool:
        """A cheap reachability check: the server answered ``GET /models`` (a 404 still means it is up)."""
        try:
            await self.models()
        except LLMFailure as failure:
            if failure.kind == "model":  # no /models route, but a server answered
                self.last_success = time.time()
                return True
            return False
        return True

    async def context_window(self, model: str) -> int | None:
        """The model's context window in tokens where the server tells it, else None.

        llama.cpp ``GET /props`` (the running server's ``n_ctx``) first, then the ``GET /models``
        entry (vLLM ``max_model_len``, ``context_length``, ...). Never raises.
        """
        root = self._config.base_url.rstrip("/").removesuffix("/v1")
        try:
            if (window := window_from_props(await self._get_json(f"{root}/props"))) is not None:
                return window
        except openai.OpenAIError:
            pass  # not llama.cpp
        try:
            return window_from_models(await self._get_json("/models"), model)
        except openai.OpenAIError:
            return None
