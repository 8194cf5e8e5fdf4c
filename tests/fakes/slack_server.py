"""A loopback Slack: the Web API over real HTTP, Socket Mode over a real websocket.

The adapter's unmodified slack_sdk / slack-bolt clients are pointed at it with ``api_url``. It
answers with Slack's JSON shapes, keeps the messages the app posted (with every edit), records
every call, and can be told to answer one call with a 429 + ``Retry-After`` or a Slack error.

Like Slack it enforces per-channel rate limits on ``chat.postMessage`` (about 1 message a second,
small bursts) and ``chat.update`` (Tier 3: bursts, then ~50 a minute), answering 429 with
``Retry-After`` (:attr:`FakeSlack.limits`, adjustable per test), and can be put in a ``storm``
(429 to a share of calls for a while). It keeps message metadata and returns it from
``conversations.replies`` / ``conversations.history`` when asked (``include_all_metadata``), with
cursor pagination; those list what the app posted and the user messages pushed to it.

Slack's side of the conversation is here too: :meth:`FakeSlack.push` sends an ``events_api``
envelope over the websocket and waits for the app's ack; :meth:`FakeSlack.post_http` delivers an
Events API request signed exactly as Slack signs it. Like Slack, the app's own messages and edits
are sent back to it as events (``echo``), so a bot that answers itself would be caught.

Slack's AI-app surface too: the streaming methods (``chat.startStream`` / ``appendStream`` /
``stopStream``, with Slack's 12,000-character chunks, recipients required outside DMs, and a message
that ``chat.update`` cannot touch until its stream is stopped), or :attr:`FakeSlack.refuse_streaming`
to answer them with an error as older workspaces do; ``assistant.threads.*`` (status, suggested
prompts, titles) and the ``assistant_thread_*`` events; ``block_actions`` clicks delivered as Slack
delivers them (a signed form post with ``payload=``, or an ``interactive`` Socket Mode envelope).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import random
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.files import FileShelf
from tests.fakes.loopback import serve

TEAM = "T0FAKETEAM"
BOT_USER = "U0BRIDGEBOT"
BOT_ID = "B0BRIDGEBOT"
APP_ID = "A0BRIDGEAPP"
BOT_TOKEN = "xoxb-1111-2222-fakebottoken"
APP_TOKEN = "xapp-1-A0BRIDGEAPP-3333-fakeapptoken"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
MARKDOWN_TEXT_LIMIT = 12_000

_ts_counter = itertools.count(1)


def next_ts() -> str:
    """A fresh Slack message timestamp (``seconds.micro``), unique within the test run."""
    return f"{int(time.time())}.{next(_ts_counter):06d}"


# ------------------------------------------------------------------- event payloads (Slack's shapes)


def app_mention(text: str, *, user: str, channel: str, ts: str | None = None,
                thread_ts: str | None = None) -> dict[str, Any]:
    ts = ts or next_ts()
    event: dict[str, Any] = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel,
                             "event_ts": ts, "team": TEAM, "client_msg_id": str(uuid.uuid4())}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(text: str, *, user: str, channel: str, ts: str | None = None, thread_ts: str | None = None,
            channel_type: str = "channel", **extra: Any) -> dict[str, Any]:
    """``message.channels`` / ``message.groups`` / ``message.im`` (``channel_type="im"``)."""
    ts = ts or next_ts()
    event: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts, "channel": channel,
                             "event_ts": ts, "channel_type": channel_type, "team": TEAM,
                             "client_msg_id": str(uuid.uuid4())}
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = BOT_USER
    event.update(extra)
    return event


def bot_message(text: str, *, channel: str, bot_id: str = "B0OTHERBOT", ts: str | None = None,
                thread_ts: str | None = None) -> dict[str, Any]:
    """A legacy integration's post (``subtype: bot_message``, no ``user``)."""
    ts = ts or next_ts()
    event = {"type": "message", "subtype": "bot_message", "text": text, "ts": ts, "username": "deploy-bot",
             "bot_id": bot_id, "channel": channel, "event_ts": ts, "channel_type": "channel"}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message_changed(channel: str, ts: str, new_text: str, *, user: str) -> dict[str, Any]:
    now = next_ts()
    return {"type": "message", "subtype": "message_changed", "hidden": True, "channel": channel, "ts": now,
            "event_ts": now, "channel_type": "channel",
            "message": {"type": "message", "user": user, "text": new_text, "ts": ts,
                        "edited": {"user": user, "ts": now}},
            "previous_message": {"type": "message", "user": user, "text": "(before)", "ts": ts}}


def message_deleted(channel: str, ts: str, *, user: str) -> dict[str, Any]:
    now = next_ts()
    return {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": channel, "ts": now,
            "deleted_ts": ts, "event_ts": now, "channel_type": "channel",
            "previous_message": {"type": "message", "user": user, "text": "(before)", "ts": ts}}


def channel_join(channel: str, *, user: str) -> dict[str, Any]:
    ts = next_ts()
    return {"type": "message", "subtype": "channel_join", "user": user, "text": f"<@{user}> has joined the channel",
            "ts": ts, "channel": channel, "event_ts": ts, "channel_type": "channel"}


def shared_file(fake: FakeSlack, name: str, data: bytes, mimetype: str, *, size: int | None = None,
                endless: bool = False) -> dict[str, Any]:
    """A ``files[]`` entry as Slack sends it with a message, its bytes served at ``url_private_download``."""
    file_id = f"F0{uuid.uuid4().hex[:9].upper()}"
    path = f"/files-pri/{TEAM}-{file_id}/download/{name}"
    fake.files.put(path, data, mimetype, endless=endless)
    base = fake.url.removesuffix("/api/")
    return {"id": file_id, "created": int(time.time()), "name": name, "title": name, "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1], "user": "U0ALICE", "size": len(data) if size is None else size,
            "mode": "hosted", "is_external": False, "is_public": False,
            "url_private": f"{base}/files-pri/{TEAM}-{file_id}/{name}",
            "url_private_download": f"{base}{path}"}
def assistant_thread_started(*, user: str, channel: str, thread_ts: str | None = None,
                             context_channel: str = "") -> dict[str, Any]:
    """The user opened the assistant pane: Slack made a DM thread for it."""
    now = next_ts()
    context = {"channel_id": context_channel, "team_id": TEAM, "enterprise_id": None} if context_channel else {}
    return {"type": "assistant_thread_started", "event_ts": now,
            "assistant_thread": {"user_id": user, "context": context, "channel_id": channel,
                                 "thread_ts": thread_ts or now}}


def assistant_thread_context_changed(*, user: str, channel: str, thread_ts: str,
                                     context_channel: str) -> dict[str, Any]:
    """The user switched channels with the assistant pane open."""
    return {"type": "assistant_thread_context_changed", "event_ts": next_ts(),
            "assistant_thread": {"user_id": user, "channel_id": channel, "thread_ts": thread_ts,
                                 "context": {"channel_id": context_channel, "team_id": TEAM,
                                             "enterprise_id": None}}}


def event_callback(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """The Events API outer body, as delivered over HTTP and inside Socket Mode envelopes."""
    return {"token": "legacy-verification-token", "team_id": TEAM, "context_team_id": TEAM,
            "api_app_id": APP_ID, "event": event, "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}", "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": BOT_USER, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False, "event_context": f"4-{uuid.uuid4().hex}"}


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """Slack's request signature: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------- the server


def block_actions(*, user: str, channel: str, message_ts: str, action: dict[str, Any],
                  thread_ts: str | None = None) -> dict[str, Any]:
    """A click on a button of one of the app's messages (``block_actions`` interactivity payload)."""
    message: dict[str, Any] = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": message_ts, "text": ""}
    if thread_ts:
        message["thread_ts"] = thread_ts
    return {"type": "block_actions", "team": {"id": TEAM, "domain": "fake-team"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
            "api_app_id": APP_ID, "token": "legacy-verification-token",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                          "is_ephemeral": False, "thread_ts": thread_ts},
            "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
            "channel": {"id": channel, "name": "fake"}, "message": message, "state": {"values": {}},
            "response_url": "https://hooks.slack.invalid/actions/T0/1/x", "actions": [action]}


def feedback_click(value: str, *, action_id: str = "bridge_feedback") -> dict[str, Any]:
    """The action of a click on a ``feedback_buttons`` element (its button's ``value``)."""
    return {"type": "feedback_buttons", "action_id": action_id, "block_id": "bridge_feedback_block",
            "value": value, "action_ts": next_ts()}


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    status: int
    at: float  # time.monotonic()


@dataclass
class Posted:
    """A message the app posted; ``versions`` is every text it showed, first to last."""

    channel: str
    ts: str
    thread_ts: str | None
    fields: dict[str, Any]
    versions: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    streaming: bool = False  # started with chat.startStream and not stopped yet
    streamed: bool = False   # made by chat.startStream

    @property
    def text(self) -> str:
        return self.versions[-1]


@dataclass
class Limit:
    """A token bucket: ``burst`` calls at once, refilled at ``per_s`` a second (per method and channel)."""

    per_s: float
    burst: float


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class _Storm:
    until: float
    methods: tuple[str, ...]
    share: float
    retry_after: int


def _ts_key(ts: str) -> tuple[int, int]:
    sec, _, micro = ts.partition(".")
    return int(sec or 0), int(micro or 0)


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


class FakeSlack:
    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.api_peers: set[object] = set()  # the client ends (host, port) Web API calls came from
        self.posted: list[Posted] = []
        self.deleted: list[Posted] = []  # removed with chat.delete
        self.acks: list[dict[str, Any]] = []
        self.echo = True
        self.echoed = 0  # own messages/edits sent back to the app and acknowledged by it
        self.url = ""  # the api_url to configure: http://127.0.0.1:PORT/api/
        self._rate_limited: dict[str, list[int]] = {}
        self._errors: dict[str, list[str]] = {}
        self.limits: dict[str, Limit] = {"chat.postMessage": Limit(per_s=1.0, burst=5),
                                         "chat.update": Limit(per_s=50 / 60, burst=20)}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._storm: _Storm | None = None
        self._random = random.Random(8)
        self.user_messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message event
        self._ws: web.WebSocketResponse | None = None
        self._pending_acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.connections = 0
        self.hold_users_info: dict[str, asyncio.Event] = {}  # user id -> users.info answers once set
        self.files = FileShelf(f"Bearer {BOT_TOKEN}", refuse_with_html=True)  # files-pri: the bot token only
        self.conversations: dict[str, dict[str, Any]] = {}  # conversations.info, by channel id
        self.refuse_streaming = ""  # an error for the three streaming methods (older workspaces)
        self.statuses: list[tuple[str, str, str]] = []  # (channel, thread_ts, status), in order
        self.titles: dict[tuple[str, str], str] = {}
        self.suggested: dict[tuple[str, str], dict[str, Any]] = {}
        self.limits.update({"chat.startStream": Limit(per_s=1.0, burst=5),
                            "chat.appendStream": Limit(per_s=50 / 60, burst=20)})
        self.scopes = ("app_mentions:read,channels:history,groups:history,im:history,mpim:history,chat:write,"
                       "users:read,files:read,assistant:write")  # the bot token's, sent as X-OAuth-Scopes

    # ----------------------------------------------------------------- setup and scripting

    def add_user(self, user_id: str, name: str, *, real_name: str = "", display_name: str = "") -> None:
        self.users[user_id] = {
            "id": user_id, "team_id": TEAM, "name": name, "deleted": False, "real_name": real_name or name,
            "tz": "Europe/Amsterdam", "is_bot": False, "is_admin": False,
            "profile": {"real_name": real_name or name, "display_name": display_name, "team": TEAM},
        }

    def rate_limit_next(self, method: str, retry_after: int = 1) -> None:
        """The next call of ``method`` gets HTTP 429 with ``Retry-After`` (seconds)."""
        self._rate_limited.setdefault(method, []).append(retry_after)

    def fail_next(self, method: str, error: str) -> None:
        """The next call of ``method`` gets ``{"ok": false, "error": error}``."""
        self._errors.setdefault(method, []).append(error)

    def storm(self, seconds: float, *, methods: tuple[str, ...] = ("chat.postMessage", "chat.update",
                                                                  "chat.startStream", "chat.appendStream",
                                                                  "chat.stopStream"),
              share: float = 0.5, retry_after: int = 1) -> None:
        """For ``seconds`` from now, answer 429 to about ``share`` of the calls to ``methods``."""
        self._storm = _Storm(time.monotonic() + seconds, methods, share, retry_after)

    def _limited(self, method: str, args: dict[str, Any]) -> int | None:
        """Retry-After seconds when this call is over a limit (or caught in a storm), else None."""
        now = time.monotonic()
        storm = self._storm
        if storm is not None and now < storm.until and method in storm.methods and self._random.random() < storm.share:
            return storm.retry_after
        limit = self.limits.get(method)
        if limit is None:
            return None
        key = (method, str(args.get("channel", "")))
        bucket = self._buckets.setdefault(key, _Bucket(limit.burst, now))
        bucket.tokens = min(limit.burst, bucket.tokens + (now - bucket.at) * limit.per_s)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / limit.per_s))  # Slack's Retry-After is whole seconds

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.add_routes([web.route("*", "/api/{method}", self._api), web.get("/link/", self._socket),
                        web.get("/files-pri/{tail:.*}", self.files.handle)])
        self._runner, base_url = await serve(app)
        self._port = int(self._runner.addresses[0][1])
        self.url = f"{base_url}/api/"
        return self

    async def stop(self) -> None:
        for held in self.hold_users_info.values():
            held.set()  # or the server waits for the held requests
        for task in list(self._tasks):
            task.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ----------------------------------------------------------------- what the app did

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def replies(self, channel: str, thread_ts: str | None = None) -> list[Posted]:
        """The app's messages in a thread (``thread_ts=None``: top level of the channel)."""
        return [p for p in self.posted if p.channel == channel and p.thread_ts == thread_ts]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s; posted: "
                                     f"{[(p.channel, p.thread_ts, p.text[:60]) for p in self.posted]}")
            await asyncio.sleep(0.01)

    async def wait_reply(self, channel: str, thread_ts: str | None, text: str, timeout: float = 5.0) -> Posted:
        """Wait until the thread's last bot message shows ``text``; return it."""
        await self.wait_for(lambda: bool(self.replies(channel, thread_ts))
                            and self.replies(channel, thread_ts)[-1].text == text, timeout)
        return self.replies(channel, thread_ts)[-1]

    # ----------------------------------------------------------------- Slack delivering events

    async def push(self, body: dict[str, Any], *, retry_attempt: int = 0, timeout: float = 5.0) -> dict[str, Any]:
        """Send one ``events_api`` envelope over Socket Mode; return the app's ack."""
        if self._ws is None:
            raise AssertionError("no Socket Mode connection")
        event = body.get("event") or {}
        if event.get("type") in ("message", "app_mention") and "subtype" not in event and event.get("user"):
            self.user_messages[(str(event.get("channel")), str(event.get("ts")))] = event  # Slack keeps it too
        envelope_id = str(uuid.uuid4())
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = ack
        await self._ws.send_str(json.dumps({
            "envelope_id": envelope_id, "payload": body, "type": "events_api", "accepts_response_payload": False,
            "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else ""}))
        return await asyncio.wait_for(ack, timeout)

    async def push_interactive(self, payload: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any]:
        """A button click over Socket Mode (an ``interactive`` envelope); return the app's ack."""
        if self._ws is None:
            raise AssertionError("no Socket Mode connection")
        envelope_id = str(uuid.uuid4())
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = ack
        await self._ws.send_str(json.dumps({"envelope_id": envelope_id, "payload": payload, "type": "interactive",
                                            "accepts_response_payload": False}))
        return await asyncio.wait_for(ack, timeout)

    async def post_interactive(self, url: str, payload: dict[str, Any], *,
                               secret: str = SIGNING_SECRET) -> tuple[int, str]:
        """A button click over HTTP, as Slack sends it: a signed form post with one ``payload`` field."""
        raw = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": str(ts),
                   "X-Slack-Signature": sign(raw, secret, ts)}
        async with aiohttp.ClientSession() as session, session.post(url, data=raw, headers=headers) as resp:
            return resp.status, await resp.text()

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the app to reconnect, as Slack does every few hours (``type: disconnect``)."""
        if self._ws is None:
            raise AssertionError("no Socket Mode connection")
        await self._ws.send_str(json.dumps({"type": "disconnect", "reason": reason,
                                            "debug_info": {"host": "applink-fake"}}))

    async def post_http(self, url: str, body: dict[str, Any] | bytes, *, secret: str = SIGNING_SECRET,
                        timestamp: int | None = None, signature: str | None = None,
                        retry_num: int | None = None) -> tuple[int, str]:
        """Deliver an Events API request to ``url`` the way Slack does (signed, JSON)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(ts),
                   "X-Slack-Signature": signature if signature is not None else sign(raw, secret, ts),
                   "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if retry_num is not None:
            headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
        async with aiohttp.ClientSession() as session, session.post(url, data=raw, headers=headers) as resp:
            return resp.status, await resp.text()

    # ----------------------------------------------------------------- the Web API

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(await request.post())
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.api_peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        args = await self._args(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else str(args.get("token", ""))
        if self._rate_limited.get(method):
            retry_after = self._rate_limited[method].pop(0)
            self.calls.append(Call(method, args, 429, time.monotonic()))
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(retry_after)})
        limited = self._limited(method, args)
        if limited is not None:
            self.calls.append(Call(method, args, 429, time.monotonic()))
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(limited)})
        self.calls.append(Call(method, args, 200, time.monotonic()))
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if not token:
            return self._error("not_authed")
        if token != expected:
            return self._error("invalid_auth")
        if self._errors.get(method):
            return self._error(self._errors[method].pop(0))
        held = self.hold_users_info.get(str(args.get("user"))) if method == "users.info" else None
        if held is not None:  # a slow name lookup, for as long as the test wants
            await held.wait()
        handler = {"auth.test": self._auth_test, "users.info": self._users_info,
                   "chat.postMessage": self._post_message, "chat.update": self._update, "chat.delete": self._delete,
                   "conversations.replies": self._replies, "conversations.history": self._history,
                   "apps.connections.open": self._connections_open,
                   "conversations.info": self._conversation_info,
                   "chat.startStream": self._start_stream, "chat.appendStream": self._append_stream,
                   "chat.stopStream": self._stop_stream, "assistant.threads.setStatus": self._set_status,
                   "assistant.threads.setSuggestedPrompts": self._set_prompts,
                   "assistant.threads.setTitle": self._set_title}.get(method)
        if method.startswith("chat.") and method.endswith("Stream") and self.refuse_streaming:
            return self._error(self.refuse_streaming)
        if handler is None:
            return self._error("unknown_method")
        return handler(args)

    @staticmethod
    def _error(error: str) -> web.Response:
        return web.json_response({"ok": False, "error": error})

    def _auth_test(self, _: dict[str, Any]) -> web.Response:
        return web.json_response({"ok": True, "url": "https://fake-team.slack.com/", "team": "Fake Team",
                                  "user": "bridge", "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID,
                                  "is_enterprise_install": False},
                                 headers={"X-OAuth-Scopes": self.scopes, "X-Accepted-OAuth-Scopes": "identify"})

    def _users_info(self, args: dict[str, Any]) -> web.Response:
        user = self.users.get(str(args.get("user")))
        return web.json_response({"ok": True, "user": user}) if user else self._error("user_not_found")

    @staticmethod
    def _content(args: dict[str, Any]) -> tuple[str | None, web.Response | None]:
        text, markdown = args.get("text"), args.get("markdown_text")
        if markdown is not None and (text is not None or args.get("blocks")):
            return None, FakeSlack._error("invalid_arguments")  # markdown_text excludes text and blocks
        if markdown is not None and len(markdown) > MARKDOWN_TEXT_LIMIT:
            return None, FakeSlack._error("msg_too_long")
        content = markdown if markdown is not None else text
        if not content or not str(content).strip():
            return None, FakeSlack._error("no_text")
        return str(content), None

    @staticmethod
    def _metadata(args: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The ``metadata`` argument (an object, or its JSON text in a form post), or an error."""
        meta = args.get("metadata")
        if meta is None:
            return None, None
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except ValueError:
                return None, "invalid_metadata_format"
        if (not isinstance(meta, dict) or not isinstance(meta.get("event_type"), str)
                or not isinstance(meta.get("event_payload"), dict)):
            return None, "invalid_metadata_schema"
        return meta, None

    def _post_message(self, args: dict[str, Any]) -> web.Response:
        content, error = self._content(args)
        if error is not None or content is None:
            return error or self._error("no_text")
        channel = str(args.get("channel", ""))
        if not channel:
            return self._error("channel_not_found")
        metadata, meta_error = self._metadata(args)
        if meta_error:
            return self._error(meta_error)
        ts = next_ts()
        thread_ts = args.get("thread_ts") or None
        posted = Posted(channel, ts, thread_ts, dict(args), [content], metadata)
        self.posted.append(posted)
        message = self._bot_event(posted)
        self._echo(message)
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _update(self, args: dict[str, Any]) -> web.Response:
        content, error = self._content(args)
        if error is not None or content is None:
            return error or self._error("no_text")
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        found = next((p for p in self.posted if p.channel == channel and p.ts == ts), None)
        if found is None:
            return self._error("message_not_found")
        if found.streaming:
            return self._error("message_is_streaming")  # finish it with chat.stopStream first
        metadata, meta_error = self._metadata(args)
        if meta_error:
            return self._error(meta_error)
        if metadata is not None:  # left alone when not given, as Slack does
            found.metadata = metadata
        found.versions.append(content)
        found.fields = {**found.fields, **args}
        self._echo(message_changed(channel, ts, content, user=BOT_USER) | {"message": self._bot_event(found)})
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "text": content,
                                  "message": self._bot_event(found)})

    # ----------------------------------------------------------------- streaming and assistant methods

    @staticmethod
    def _chunks_text(args: dict[str, Any]) -> tuple[str, str]:
        """The text a streaming call adds (``markdown_text`` or markdown chunks), or an error."""
        chunks = args.get("chunks")
        if isinstance(chunks, str):
            chunks = json.loads(chunks)
        text = str(args.get("markdown_text") or "")
        for chunk in chunks or []:
            if not isinstance(chunk, dict) or chunk.get("type") != "markdown_text":
                return "", "invalid_chunks"
            text += str(chunk.get("text") or "")
        if len(text) > MARKDOWN_TEXT_LIMIT:
            return "", "msg_too_long"
        return text, ""

    def _streaming(self, args: dict[str, Any]) -> tuple[Posted | None, str]:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        found = next((p for p in self.posted if p.channel == channel and p.ts == ts), None)
        if found is None:
            return None, "message_not_found"
        if not found.streaming:
            return None, "message_not_in_streaming_state"
        return found, ""

    def _start_stream(self, args: dict[str, Any]) -> web.Response:
        channel, thread_ts = str(args.get("channel", "")), str(args.get("thread_ts", ""))
        if not channel or not thread_ts:
            return self._error("invalid_arguments")  # streams are always replies in a thread
        if not channel.startswith("D") and not (args.get("recipient_user_id") and args.get("recipient_team_id")):
            return self._error("invalid_arguments")  # outside DMs, Slack must know who the stream is for
        text, error = self._chunks_text(args)
        if error:
            return self._error(error)
        posted = Posted(channel, next_ts(), thread_ts, dict(args), [text], None, streaming=True, streamed=True)
        self.posted.append(posted)
        self._echo(self._bot_event(posted))
        return web.json_response({"ok": True, "channel": channel, "ts": posted.ts})

    def _append_stream(self, args: dict[str, Any]) -> web.Response:
        found, error = self._streaming(args)
        text, chunk_error = self._chunks_text(args)
        if found is None or chunk_error:
            return self._error(error or chunk_error)
        if not text:
            return self._error("no_text")
        found.versions.append(found.text + text)
        return web.json_response({"ok": True, "channel": found.channel, "ts": found.ts})

    def _stop_stream(self, args: dict[str, Any]) -> web.Response:
        found, error = self._streaming(args)
        text, chunk_error = self._chunks_text(args)
        if found is None or chunk_error:
            return self._error(error or chunk_error)
        metadata, meta_error = self._metadata(args)
        if meta_error:
            return self._error(meta_error)
        blocks = args.get("blocks")
        found.fields = {**found.fields, "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks}
        if metadata is not None:
            found.metadata = metadata
        found.streaming = False
        found.versions.append(found.text + text)
        self._echo(message_changed(found.channel, found.ts, found.text, user=BOT_USER)
                   | {"message": self._bot_event(found)})
        return web.json_response({"ok": True, "channel": found.channel, "ts": found.ts,
                                  "message": self._bot_event(found)})

    def _set_status(self, args: dict[str, Any]) -> web.Response:
        if not args.get("channel_id") or not args.get("thread_ts") or "status" not in args:
            return self._error("invalid_arguments")
        self.statuses.append((str(args["channel_id"]), str(args["thread_ts"]), str(args["status"])))
        return web.json_response({"ok": True})

    def _set_prompts(self, args: dict[str, Any]) -> web.Response:
        prompts = args.get("prompts")
        if not args.get("channel_id") or not isinstance(prompts, list) or not 1 <= len(prompts) <= 4:
            return self._error("invalid_arguments")  # one to four prompts
        self.suggested[(str(args["channel_id"]), str(args.get("thread_ts") or ""))] = dict(args)
        return web.json_response({"ok": True})

    def _set_title(self, args: dict[str, Any]) -> web.Response:
        if not args.get("channel_id") or not args.get("thread_ts") or not args.get("title"):
            return self._error("invalid_arguments")
        self.titles[(str(args["channel_id"]), str(args["thread_ts"]))] = str(args["title"])
        return web.json_response({"ok": True})

    def expire_streams(self) -> None:
        """Slack ends every open stream on its side (as it does with streams left too long)."""
        for p in self.posted:
            p.streaming = False

    def status_now(self, channel: str, thread_ts: str) -> str | None:
        """The status the thread shows now ("" once cleared; None: never set)."""
        found = [status for c, t, status in self.statuses if (c, t) == (channel, thread_ts)]
        return found[-1] if found else None
    def _delete(self, args: dict[str, Any]) -> web.Response:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        found = next((p for p in self.posted if p.channel == channel and p.ts == ts), None)
        if found is None:
            return self._error("message_not_found")
        self.posted.remove(found)
        self.deleted.append(found)
        self._echo(message_deleted(channel, ts, user=BOT_USER) | {"previous_message": self._bot_event(found)})
        return web.json_response({"ok": True, "channel": channel, "ts": ts})

    @staticmethod
    def _bot_event(p: Posted) -> dict[str, Any]:
        event = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "app_id": APP_ID, "text": p.text,
                 "ts": p.ts, "channel": p.channel, "event_ts": p.ts, "channel_type": "channel", "team": TEAM,
                 "bot_profile": {"id": BOT_ID, "app_id": APP_ID, "name": "bridge", "team_id": TEAM}}
        if p.thread_ts:
            event["thread_ts"] = p.thread_ts
        if p.fields.get("username"):  # chat:write.customize: shown under another name and icon
            event["username"] = p.fields["username"]
            event["icons"] = {"image_48": p.fields.get("icon_url") or ""}
        return event

    def _messages(self, channel: str, *, metadata: bool) -> list[dict[str, Any]]:
        """Everything in ``channel``, oldest first, as the conversations.* methods show messages."""
        found = [dict(m) for (c, _), m in self.user_messages.items() if c == channel]
        for p in self.posted:
            if p.channel == channel:
                m = self._bot_event(p)
                if metadata and p.metadata is not None:
                    m["metadata"] = p.metadata
                found.append(m)
        return sorted(found, key=lambda m: _ts_key(str(m["ts"])))

    @staticmethod
    def _page(messages: list[dict[str, Any]], args: dict[str, Any]) -> web.Response:
        """``oldest``/``latest`` (exclusive unless ``inclusive``), then ``limit`` per page with a cursor."""
        inclusive = _truthy(args.get("inclusive", ""))
        if args.get("oldest"):
            low = _ts_key(str(args["oldest"]))
            messages = [m for m in messages if _ts_key(m["ts"]) > low or (inclusive and _ts_key(m["ts"]) == low)]
        if args.get("latest"):
            high = _ts_key(str(args["latest"]))
            messages = [m for m in messages if _ts_key(m["ts"]) < high or (inclusive and _ts_key(m["ts"]) == high)]
        limit = min(int(args.get("limit") or 100), 1000)
        cursor = str(args.get("cursor") or "")
        start = int(base64.b64decode(cursor).decode().removeprefix("next:")) if cursor else 0
        page = messages[start:start + limit]
        more = start + limit < len(messages)
        next_cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
        return web.json_response({"ok": True, "messages": page, "has_more": more,
                                  "response_metadata": {"next_cursor": next_cursor}})

    def _replies(self, args: dict[str, Any]) -> web.Response:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        everything = self._messages(channel, metadata=_truthy(args.get("include_all_metadata", "")))
        parent = [m for m in everything if m["ts"] == ts]
        if not parent and not any(m.get("thread_ts") == ts for m in everything):
            return self._error("thread_not_found")
        replies = [m for m in everything if m.get("thread_ts") == ts and m["ts"] != ts]
        return self._page(parent + replies, args)  # the parent first, then the replies, oldest first

    def _conversation_info(self, args: dict[str, Any]) -> web.Response:
        """``conversations.info`` of a channel added with :meth:`add_conversation`; others are not found."""
        channel = self.conversations.get(str(args.get("channel", "")))
        if channel is None:
            return self._error("channel_not_found")
        return web.json_response({"ok": True, "channel": channel})

    def add_conversation(self, channel: str, name: str, *, member: bool = True, archived: bool = False) -> None:
        self.conversations[channel] = {"id": channel, "name": name, "is_channel": True, "is_member": member,
                                       "is_archived": archived, "is_private": False}

    def _history(self, args: dict[str, Any]) -> web.Response:
        channel = str(args.get("channel", ""))
        everything = self._messages(channel, metadata=_truthy(args.get("include_all_metadata", "")))
        top = [m for m in everything if m.get("thread_ts") in (None, m["ts"])]
        return self._page(top[::-1], args)  # newest first

    def _echo(self, event: dict[str, Any]) -> None:
        """Slack sends the app its own messages too; a correct app ignores them."""
        if not self.echo or self._ws is None:
            return

        async def deliver() -> None:
            try:
                await self.push(event_callback(event))
                self.echoed += 1
            except (AssertionError, TimeoutError, ConnectionError):
                pass

        task = asyncio.ensure_future(deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _connections_open(self, _: dict[str, Any]) -> web.Response:
        ticket = uuid.uuid4().hex
        return web.json_response({"ok": True, "url": f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}"})

    # ----------------------------------------------------------------- Socket Mode

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._ws = ws
        self.connections += 1
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                                      "connection_info": {"app_id": APP_ID}}))
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            self.acks.append(data)
            ack = self._pending_acks.pop(str(data.get("envelope_id")), None)
            if ack is not None and not ack.done():
                ack.set_result(data)
        if self._ws is ws:
            self._ws = None
        return ws
