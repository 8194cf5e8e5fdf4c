"""Slack's native streaming: one message that grows with ``chat.startStream`` / ``appendStream`` / ``stopStream``.

An edit (``chat.update``) resends the whole text each time; a streamed message is sent only what is
new, and Slack renders the Markdown as it arrives. :class:`NativeWriter` gives
:func:`~bridge.llm.streaming.render_stream` the same ``post``/``edit`` it gets from the edit writer,
so pacing (``edit_interval_s``) and splitting past the size limit stay in one place:

- ``post`` starts a stream (the previous part's stream is stopped first);
- ``edit`` of the streaming message appends the new text; anything else (a text that does not
  extend what is shown, a message already stopped) stops the stream and edits the old way;
- ``finish`` stops the stream with the rest of the final text (and the feedback buttons), and
  leaves the other parts to the edit writer.

Where answers arrive whole (``llm.stream: false``) there is nothing to stream: the writer posts
each message as it is (``chat.postMessage``, one call), where a stream of it would take two (start,
stop), and still without a placeholder.

Where Slack refuses to start a stream (a workspace or token without the feature, a DM's top level
that is no thread), the reply continues through the edit writer and the adapter remembers the
workspace, so the person sees an ordinary answer and never an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.llm.chunking import split_message
from bridge.llm.streaming import SUPERSEDED
from bridge.types import Outgoing
from platforms.slack.delivery import (
    MAX_LOOKUP_PAGES,
    NETWORK_ERRORS,
    REPLY_EVENT,
    Writer,
    patience,
    retry_after,
    status_of,
)
from platforms.slack.formatting import neutralise
from platforms.slack.handlers import BotIdentity

log = logging.getLogger(__name__)


def _unguarded() -> None:
    return None


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") if exc.response is not None else "error")


class NativeWriter:
    """Streams one reply's messages natively, handing over to ``edits`` where Slack will not stream."""

    def __init__(self, client: AsyncWebClient, edits: Writer, *, channel: str, thread_ts: str, team: str,
                 recipient: str, key: str, deadline_s: float, refused: Callable[[str], None],
                 final_blocks: Sequence[dict[str, Any]] = (), guard: Callable[[], None] = _unguarded,
                 whole: bool = False) -> None:
        self._client, self._edits = client, edits
        self._channel, self._thread_ts, self._team, self._recipient = channel, thread_ts, team, recipient
        self._key, self._deadline_s, self._refused = key, deadline_s, refused
        self._final_blocks = list(final_blocks)
        self._guard = guard  # asked before every write (a replica that lost its lease must not write)
        self.native = not whole  # False: every message goes through the edit writer
        self._ts = ""     # the message now streaming ("" when none)
        self._sent = ""   # what that stream shows, as sent (mentions made inert)
        self._blocked_until = 0.0
        self.calls = 0

    @property
    def shown(self) -> dict[str, str]:
        return self._edits.shown

    @property
    def all_calls(self) -> int:
        return self.calls + self._edits.calls

    def _part(self) -> int:
        return self._edits.part

    async def post(self, text: str) -> str:
        """A new message: a stream while Slack accepts them, else an ordinary post."""
        if self.native:
            await self._stop()
            ts = await self._start(text)
            if ts:
                return ts
        return await self._edits.post(text)

    async def _start(self, text: str) -> str:
        args: dict[str, Any] = {"channel": self._channel, "thread_ts": self._thread_ts}
        if not self._channel.startswith("D"):  # outside DMs Slack streams to one recipient
            args.update(recipient_user_id=self._recipient, recipient_team_id=self._team)
        sent = neutralise(text)
        self._guard()
        self.calls += 1
        try:
            with patience(self._deadline_s):
                resp = await self._client.chat_startStream(markdown_text=sent, **args)
        except SlackApiError as exc:
            if status_of(exc) == 429:
                raise  # refused past the reply's deadline: the core marks it failed
            self.native = False
            self._refused(_error(exc))
            return ""
        self._ts, self._sent = str(resp["ts"]), sent
        self._edits.claim_part()
        self.shown[self._ts] = text
        return self._ts

    async def edit(self, ts: str, text: str) -> None:
        """Append what is new to the streaming message; anything else is an ordinary edit."""
        new = neutralise(text)
        if ts != self._ts or not new.startswith(self._sent):
            if ts == self._ts:
                await self._stop()
            await self._edits.edit(ts, text)
            return
        delta = new[len(self._sent):]
        if not delta or time.monotonic() < self._blocked_until:
            return
        self._guard()
        self.calls += 1
        try:
            with patience(0):  # a courtesy while streaming, as edits are: the rest comes with the next one
                await self._client.chat_appendStream(channel=self._channel, ts=ts, markdown_text=delta)
        except SlackApiError as exc:
            if status_of(exc) != 429:  # the stream ended on Slack's side (expired): edits from here on
                log.info("slack: a stream of %s ended early (%s); continuing with edits", self._key, _error(exc))
                await self._stop()
                await self._edits.edit(ts, text)
                return
            self._blocked_until = time.monotonic() + retry_after(exc.response.headers)
            return
        self._sent = new
        self.shown[ts] = text

    async def _stop(self, rest: str = "", *, last: bool = False) -> bool:
        """Stop the streaming message, adding ``rest``; the last one carries the metadata and blocks.

        False when Slack had already ended the stream: the edit writer then sets the text."""
        ts, self._ts = self._ts, ""
        if not ts:
            return False
        wait = self._blocked_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        args: dict[str, Any] = {"metadata": {"event_type": REPLY_EVENT,
                                             "event_payload": {"key": self._key, "part": self._part() - 1}}}
        if last and self._final_blocks:
            args["blocks"] = self._final_blocks
        if rest:
            args["markdown_text"] = rest
        self._guard()
        self.calls += 1
        try:
            with patience(self._deadline_s):
                await self._client.chat_stopStream(channel=self._channel, ts=ts, **args)
        except SlackApiError as exc:
            if status_of(exc) == 429:
                raise  # refused past the reply's deadline: the core marks it failed
            log.info("slack: a stream of %s could not be stopped (%s); finishing it with an edit", self._key,
                     _error(exc))
            return False
        return True

    async def finish(self, ids: list[str], final: str, limit: int) -> None:
        """The streaming part is stopped with the rest of its text; the others are edited if needed."""
        if self._ts in ids:
            parts = split_message(final, limit)
            i = ids.index(self._ts)
            want = parts[i] if i < len(parts) else SUPERSEDED
            new = neutralise(want)
            last = i == len(ids) - 1
            if new.startswith(self._sent):
                ts = self._ts
                if await self._stop(new[len(self._sent):], last=last):
                    self.shown[ts] = want
            else:
                await self._stop(last=last)
        await self._edits.finish(ids, final, limit)


async def _unlabelled(client: AsyncWebClient, channel: str, thread_ts: str, after: str, bot: BotIdentity) -> list[str]:
    """This app's messages in the thread after ``after`` that carry no reply metadata: streams a
    crash left open before they were recorded (every other message of the app is labelled)."""
    found: list[str] = []
    args: dict[str, Any] = {"channel": channel, "ts": thread_ts, "include_all_metadata": True, "limit": 200}
    if after:
        args["oldest"] = after
    pages = 0
    async for page in await client.conversations_replies(**args):
        for m in page.get("messages") or []:
            mine = (bool(bot.bot_id) and m.get("bot_id") == bot.bot_id) or (
                bool(bot.user_id) and m.get("user") == bot.user_id)
            if mine and not m.get("metadata") and m.get("ts") != thread_ts:
                found.append(str(m["ts"]))
        pages += 1
        if pages >= MAX_LOOKUP_PAGES:
            break
    return found


async def stop_leftovers(client: AsyncWebClient, reply: Outgoing, bot: BotIdentity, deadline_s: float) -> None:
    """After a crash: stop every stream an earlier attempt left open, labelled as this reply's parts,
    so the usual recovery finds them (even unrecorded) and edits them instead of posting again.

    A message that is not streaming (the usual case) answers with an error, expected and ignored.
    """
    channel, thread_ts = reply.thread.channel, reply.thread.thread
    ids = list(reply.posted)
    if thread_ts != channel:  # streams are thread replies; a DM's top level never streams
        try:
            with patience(deadline_s):
                ids += [ts for ts in await _unlabelled(client, channel, thread_ts, reply.answers.partition(":")[2],
                                                       bot) if ts not in ids]
        except (SlackApiError, *NETWORK_ERRORS) as exc:
            log.warning("slack: could not look for streams left open by %s (%s)", reply.key, type(exc).__name__)
    for part, ts in enumerate(ids):
        try:
            with patience(deadline_s):  # a 429 is waited out: an open stream cannot be edited
                await client.chat_stopStream(channel=channel, ts=ts, metadata={
                    "event_type": REPLY_EVENT, "event_payload": {"key": reply.key, "part": part}})
        except (SlackApiError, *NETWORK_ERRORS):
            continue
        log.info("slack: a stream left open by an interrupted reply was stopped (%s)", ts)


def native_for(client: AsyncWebClient, reply: Outgoing, *, team: str, deadline_s: float,
               refused: Callable[[str], None],
               whole: bool = False) -> Callable[[Writer, str | None], NativeWriter | None]:
    """For :func:`~platforms.slack.delivery.deliver`: a native writer where this reply can stream.

    Streams are replies in a thread: a DM's top level is answered with edits. Outside DMs Slack
    needs to know whom the stream is for; a reply without an asker (a notice) is edited too.
    ``whole``: the answers arrive whole, and are posted, not streamed, where a stream would be.
    """

    def make(edits: Writer, thread_ts: str | None) -> NativeWriter | None:
        channel = reply.thread.channel
        if thread_ts is None or (not channel.startswith("D") and not reply.asker):
            return None
        # Outgoing.guard, where the core fences writes (several replicas); none otherwise.
        guard = reply.guard
        return NativeWriter(client, edits, channel=channel, thread_ts=thread_ts, team=reply.thread.workspace or team,
                            recipient=reply.asker, key=reply.key, deadline_s=deadline_s, refused=refused,
                            final_blocks=edits.final_blocks, guard=guard, whole=whole)

    return make
