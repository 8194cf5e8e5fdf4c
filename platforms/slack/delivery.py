"""Posting a Slack reply exactly once and completely, whatever Slack answers in between.

- **Once.** Every message posted carries message metadata naming the reply and the part
  (``bridge_reply``). A crash between Slack's answer and ``reply.record`` leaves a message the store
  does not know of, so a recovering reply first looks for its own in the thread (or the DM) and
  edits those instead of posting again.
- **Completely.** 429s are retried by slack_sdk's rate-limit handler (it waits ``Retry-After``), for
  as long as the caller's deadline allows rather than a fixed number of times. Edits while
  streaming are a courtesy: a refused one is skipped and the next waits out ``Retry-After``. The
  final text is then written, retried until the reply's deadline; only past it does ``send`` raise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bridge.llm.chunking import split_message
from bridge.llm.streaming import SUPERSEDED, render_stream
from bridge.types import Outgoing
from platforms.slack.formatting import neutralise
from platforms.slack.handlers import BotIdentity

log = logging.getLogger(__name__)

REPLY_EVENT = "bridge_reply"  # the metadata event_type of every message a reply posts
PLACEHOLDER = "_Thinking…_"
OUTSIDE_A_REPLY_RETRIES = 3   # calls without a deadline (auth.test, users.info) keep slack_sdk's usual count
MAX_ATTEMPTS = 90             # slack_sdk's request loop stops at 100 attempts whatever the handlers say
MAX_LOOKUP_PAGES = 10
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)

_deadline: ContextVar[float | None] = ContextVar("slack_deadline", default=None)


@contextmanager
def patience(seconds: float) -> Iterator[None]:
    """Slack calls made inside may wait out 429s for ``seconds`` (0: not at all)."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None


def retry_after(headers: Mapping[str, Any]) -> float:
    value = _header(headers, "retry-after")
    try:
        return max(float(value), 0.0) if value is not None else 1.0
    except ValueError:
        return 1.0


class UntilDeadline(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (it sleeps ``Retry-After``), retrying until the caller's deadline.

    The deadline is per call chain (a ContextVar set by :func:`patience`), so one shared client
    serves replies with different deadlines; without one, the usual few retries.
    """

    def __init__(self) -> None:
        super().__init__(max_retry_count=MAX_ATTEMPTS)

    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        deadline = _deadline.get()
        if deadline is None:
            return state.current_attempt < OUTSIDE_A_REPLY_RETRIES
        return time.monotonic() + retry_after(response.headers) < deadline


def status_of(exc: SlackApiError) -> int:
    return int(getattr(exc.response, "status_code", 0) or 0)


async def find_posted(client: AsyncWebClient, channel: str, thread_ts: str | None, *, after: str, key: str,
                      bot: BotIdentity) -> dict[int, str]:
    """Part number → ts of the messages this app already posted for ``key`` after the message ``after``."""
    found: dict[int, str] = {}
    args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": 200}
    if after:
        args["oldest"] = after
    first = (await client.conversations_replies(ts=thread_ts, **args) if thread_ts
             else await client.conversations_history(**args))
    pages = 0
    async for page in first:  # slack_sdk follows next_cursor
        for m in page.get("messages") or []:
            meta = m.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            mine = (bool(bot.bot_id) and m.get("bot_id") == bot.bot_id) or (
                bool(bot.user_id) and m.get("user") == bot.user_id)
            part = payload.get("part")
            if mine and meta.get("event_type") == REPLY_EVENT and payload.get("key") == key and isinstance(part, int):
                found.setdefault(part, str(m["ts"]))
        pages += 1
        if pages >= MAX_LOOKUP_PAGES:
            break
    return found


class Writer:
    """Posts and edits one reply's messages, and knows what each one shows."""

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str | None, key: str, deadline_s: float,
                 first_part: int, guard: Callable[[], None] = lambda: None) -> None:
        self._client, self._channel, self._thread_ts = client, channel, thread_ts
        self._guard = guard  # Outgoing.guard: asked before every write
        self._key, self._deadline_s, self._part = key, deadline_s, first_part
        self.shown: dict[str, str] = {}
        self.calls = 0
        self._blocked_until = 0.0
        self.final_blocks: list[dict[str, Any]] = []  # under the last message once final (feedback buttons)

    @property
    def all_calls(self) -> int:
        return self.calls

    @property
    def part(self) -> int:
        """The part number the next message gets."""
        return self._part

    def claim_part(self) -> None:
        """A message of this reply was posted another way (a native stream): the next part is later."""
        self._part += 1

    async def post(self, text: str) -> str:
        """A new message, tagged with the reply and part; waits out 429s until the deadline."""
        self._guard()
        self.calls += 1
        with patience(self._deadline_s):
            resp = await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, markdown_text=neutralise(text), unfurl_links=False,
                unfurl_media=False, metadata={"event_type": REPLY_EVENT,
                                              "event_payload": {"key": self._key, "part": self._part}})
        ts = str(resp["ts"])
        self._part += 1
        self.shown[ts] = text
        return ts

    async def edit(self, ts: str, text: str) -> None:
        """While streaming: one try; refused (429) or lost, it is skipped and :meth:`finish` sets it right."""
        if time.monotonic() < self._blocked_until:
            return
        self._guard()
        self.calls += 1
        try:
            with patience(0):
                await self._client.chat_update(channel=self._channel, ts=ts, markdown_text=neutralise(text))
        except SlackApiError as exc:
            if status_of(exc) != 429:
                raise
            self._blocked_until = time.monotonic() + retry_after(exc.response.headers)
            return
        except NETWORK_ERRORS:
            return
        self.shown[ts] = text

    async def finish(self, ids: list[str], final: str, limit: int) -> None:
        """Every message shows its part of the final text; retried until the deadline, then raises."""
        parts = split_message(final, limit)
        deadline = time.monotonic() + self._deadline_s
        for i, ts in enumerate(ids):
            want = parts[i] if i < len(parts) else SUPERSEDED
            with_blocks = bool(self.final_blocks) and i == len(ids) - 1
            if self.shown.get(ts) == want and not with_blocks:
                continue
            wait = self._blocked_until - time.monotonic()
            if wait > 0:  # Slack said when to come back
                await asyncio.sleep(wait)
            self._guard()
            self.calls += 1
            with patience(deadline - time.monotonic()):
                if with_blocks:  # markdown_text excludes blocks: the text goes in a markdown block
                    await self._client.chat_update(channel=self._channel, ts=ts, text=want, blocks=[
                        {"type": "markdown", "text": neutralise(want)}, *self.final_blocks])
                else:
                    await self._client.chat_update(channel=self._channel, ts=ts, markdown_text=neutralise(want))
            self.shown[ts] = want


async def _recover(client: AsyncWebClient, reply: Outgoing, channel: str, thread_ts: str | None,
                   bot: BotIdentity, deadline_s: float) -> list[str]:
    """``reply.posted`` plus what an interrupted attempt posted without recording it (recorded now)."""
    posted = list(reply.posted)
    try:
        with patience(deadline_s):
            found = await find_posted(client, channel, thread_ts, after=reply.answers.partition(":")[2],
                                      key=reply.key, bot=bot)
    except (SlackApiError, *NETWORK_ERRORS) as exc:  # cannot look: better a duplicate than no answer
        error = exc.response.get("error") if isinstance(exc, SlackApiError) and exc.response is not None else None
        log.warning("slack: could not look for messages of %s posted before a restart (%s)", reply.key,
                    error or type(exc).__name__)
        return posted
    before = len(posted)
    while len(posted) in found:
        posted.append(found[len(posted)])
    if len(posted) > before:
        log.info("slack: %d message(s) of %s were posted before a restart; editing them", len(posted) - before,
                 reply.key)
        await reply.record(posted)
    return posted


class Streaming(Protocol):
    """What :func:`deliver` drives: the edit :class:`Writer` itself, or a native stream wrapping it."""

    @property
    def all_calls(self) -> int: ...
    async def post(self, text: str) -> str: ...
    async def edit(self, ts: str, text: str) -> None: ...
    async def finish(self, ids: list[str], final: str, limit: int) -> None: ...


async def deliver(client: AsyncWebClient, reply: Outgoing, snapshots: AsyncIterator[str], *, bot: BotIdentity,
                  limit: int, interval: float, deadline_s: float,
                  native: Callable[[Writer, str | None], Streaming | None] | None = None,
                  final_blocks: list[dict[str, Any]] | None = None) -> int:
    """Stream the reply into a placeholder edited in place; return the number of Slack write calls.

    ``native(writer, thread_ts)`` may return a writer that streams with Slack's own methods instead
    (it then starts with the first text: no placeholder). ``final_blocks`` go under the last message.
    """
    thread = reply.thread
    channel = thread.channel
    thread_ts = None if thread.thread == thread.channel else thread.thread  # DM top level
    posted = await _recover(client, reply, channel, thread_ts, bot, deadline_s) if reply.recovering \
        else list(reply.posted)
    writer = Writer(client, channel, thread_ts, reply.key, deadline_s, first_part=len(posted), guard=reply.guard)
    writer.final_blocks = list(final_blocks or [])
    streaming = native(writer, thread_ts) if native is not None else None
    chosen: Streaming = streaming or writer
    shown: list[str] = []
    ids = await render_stream(snapshots, post=chosen.post, edit=chosen.edit, limit=limit, interval=interval,
                              placeholder=None if streaming else PLACEHOLDER, posted=posted, record=reply.record,
                              final=shown.append)
    await chosen.finish(ids, shown[0], limit)
    return chosen.all_calls
