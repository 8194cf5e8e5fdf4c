"""A loopback OpenAI-compatible server: ``POST /v1/chat/completions``, streamed (SSE) or not.

Tests script it: ``reply`` decides the answer from the request (text, or :class:`Calls`: tool calls in
OpenAI's format, streamed in fragments or whole); ``fail_next`` queues HTTP errors
(with optional ``Retry-After``) returned before any answer; ``cut_next`` breaks a streamed answer
half-way (the connection is closed mid-stream); ``hang_next`` answers nothing for a while. Every
request body is recorded.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import serve


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None   # a stream broken after this many chunks (status unused)
    hang_s: float = 0.0            # wait this long before answering normally


@dataclass
class Calls:
    """The model asks for tools: ``(name, arguments)`` pairs (arguments a dict, or raw text), with optional text."""

    calls: list[tuple[str, Any]]
    text: str = ""

    def wire(self) -> list[dict[str, Any]]:
        return [{"id": f"call_{i}_{name}", "type": "function",
                 "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
                for i, (name, args) in enumerate(self.calls)]


def echo_reply(request: dict[str, Any]) -> str:
    last = request["messages"][-1]["content"]
    return f"You said: {last}"


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply: Callable[[dict[str, Any]], str | Calls] = echo_reply
        self.failures: list[Failure] = []
        self.chunk_delay = 0.0
        self.chunk_size = 8
        self.hold: asyncio.Event | None = None  # when set by a test, answers wait for it
        self.models: list[dict[str, Any]] = [{"id": "fake", "object": "model"}]  # GET /v1/models entries
        self.props: dict[str, Any] | None = None  # llama.cpp's GET /props, when set (else 404)
        self.model_requests = 0
        self.props_requests = 0
        self.props_hold: asyncio.Event | None = None  # when set by a test, GET /props waits for it
        self._chaos: tuple[float, random.Random, float] | None = None
        self.chaos_faults: dict[str, int] = {}
        self.report_usage = True  # False: a server that never says how many tokens it used
        self.latency = 0.0  # seconds before answering (a slow model), for load benchmarks
        self.finish_reason = "stop"  # "length": an answer cut off at max_tokens
        self.url = ""
        self._runner: web.AppRunner | None = None

    def fail_next(self, status: int, message: str = "error", *, code: str | None = None,
                  retry_after: str | None = None, times: int = 1) -> None:
        body = {"error": {"message": message, "type": "error", "code": code}}
        headers = {"Retry-After": retry_after} if retry_after else {}
        self.failures.extend(Failure(status, body, headers) for _ in range(times))

    def chaos(self, rate: float, *, seed: int, hang_s: float = 3.0) -> None:
        """From now on a seeded ``rate`` of requests fail, in every way a real server fails: 500, 503,
        429 with ``Retry-After``, a connection cut mid-stream, or a hang longer than the client waits."""
        self._chaos = (rate, random.Random(seed), hang_s)

    def _chaos_failure(self) -> Failure | None:
        if self._chaos is None:
            return None
        rate, rng, hang_s = self._chaos
        if rng.random() >= rate:
            return None
        kind = rng.choice(["500", "503", "429", "cut", "hang"])
        self.chaos_faults[kind] = self.chaos_faults.get(kind, 0) + 1
        if kind == "cut":
            return Failure(200, {}, cut_after=rng.randint(0, 3))
        if kind == "hang":
            return Failure(200, {}, hang_s=hang_s)
        body = {"error": {"message": "chaos", "type": "error", "code": None}}
        return Failure(int(kind), body, {"Retry-After": "0.2"} if kind == "429" else {})

    def cut_next(self, after_chunks: int = 2, *, times: int = 1) -> None:
        """The next streamed answers stop after ``after_chunks`` chunks: the connection is dropped."""
        self.failures.extend(Failure(200, {}, cut_after=after_chunks) for _ in range(times))

    def hang_next(self, seconds: float, *, times: int = 1) -> None:
        """The next requests get no answer for ``seconds`` (then a normal one, if anyone still waits)."""
        self.failures.extend(Failure(200, {}, hang_s=seconds) for _ in range(times))

    async def start(self) -> FakeOpenAI:
        app = web.Application()
        app.add_routes([web.post("/v1/chat/completions", self._completions),
                        web.get("/v1/models", self._models), web.get("/props", self._props)])
        self._runner, base_url = await serve(app)
        self.url = f"{base_url}/v1"
        return self

    async def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()  # let held requests finish, or the server waits for them
        if self.props_hold is not None:
            self.props_hold.set()
        if self._runner:
            await self._runner.cleanup()

    async def _models(self, _: web.Request) -> web.Response:
        self.model_requests += 1
        return web.json_response({"object": "list", "data": self.models})

    async def _props(self, _: web.Request) -> web.Response:
        self.props_requests += 1
        if self.props_hold is not None:
            await self.props_hold.wait()
        if self.props is None:
            return web.json_response({"error": {"message": "File Not Found", "type": "not_found_error"}}, status=404)
        return web.json_response(self.props)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        cut_after: int | None = None
        f = self.failures.pop(0) if self.failures else self._chaos_failure()
        if f is not None:
            if f.hang_s:
                await asyncio.sleep(f.hang_s)
            elif f.cut_after is not None:
                cut_after = f.cut_after
            else:
                return web.json_response(f.body, status=f.status, headers=f.headers)
        if self.hold is not None:
            await self.hold.wait()
        if self.latency:
            await asyncio.sleep(self.latency)
        answer = self.reply(body)
        calls = answer if isinstance(answer, Calls) else None
        text = calls.text if calls is not None else str(answer)
        created = int(time.time())
        base = {"id": "chatcmpl-fake", "created": created, "model": body.get("model", "fake")}
        if not body.get("stream"):
            return web.json_response({
                **base, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text or None,
                                                     **({"tool_calls": calls.wire()} if calls else {})}
                             if calls else {"role": "assistant", "content": text},
                             "finish_reason": "tool_calls" if calls else self.finish_reason}],
                **({"usage": {"prompt_tokens": 10, "completion_tokens": len(text) // 4,
                              "total_tokens": 10 + len(text) // 4}} if self.report_usage else {}),
            })
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def event(data: dict[str, Any]) -> None:
            await resp.write(f"data: {json.dumps(data)}\n\n".encode())

        await event({**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        for n, i in enumerate(range(0, len(text), self.chunk_size)):
            if cut_after is not None and n >= cut_after:
                assert request.transport is not None
                request.transport.close()  # the connection drops mid-answer, as a crashing server's would
                return resp
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await event({**base, "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": {"content": text[i:i + self.chunk_size]},
                                      "finish_reason": None}]})
        for i, call in enumerate(calls.wire() if calls else []):  # the id and name first, the arguments in pieces
            args = call["function"]["arguments"]
            await event({**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": i, "id": call["id"], "type": "function",
                 "function": {"name": call["function"]["name"], "arguments": ""}}]}, "finish_reason": None}]})
            for j in range(0, len(args), 5):
                await event({**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {
                    "tool_calls": [{"index": i, "function": {"arguments": args[j:j + 5]}}]}, "finish_reason": None}]})
        await event({**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": {},
                                  "finish_reason": "tool_calls" if calls else self.finish_reason}]})
        if (body.get("stream_options") or {}).get("include_usage") and self.report_usage:
            await event({**base, "object": "chat.completion.chunk", "choices": [],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
