"""A loopback fake of Discord: REST and the gateway (a real websocket), speaking documented payloads.

discord.py, unmodified, is pointed at it through ``platforms.discord.api_url``:

- REST under ``/api/v10``: ``GET /users/@me``, ``GET /oauth2/applications/@me``, ``GET /gateway/bot``
  (and ``/gateway``) returning this server's websocket address, ``GET /channels/{id}``,
  ``GET /channels/{id}/messages`` (``limit``/``before``/``after``, newest first),
  ``POST /channels/{id}/messages``, ``PATCH /channels/{id}/messages/{mid}``, ``POST /channels/{id}/typing``.
  Every call is recorded with its JSON body; message bodies are checked like Discord does (no empty
  text, at most 2,000 characters) and posted messages are echoed back over the gateway, as Discord
  does, so the bridge sees its own messages.
- Message ids are real snowflakes (creation time in the high bits), so "after this time" means what
  it means on Discord. Every message (users' and the bot's) is kept per channel for history reads.
- ``enforce_nonce``: a POST repeating a nonce the same author used within ``nonce_window_s`` returns
  the message already created (200) instead of a second one. As on Discord, the nonce is echoed in
  the POST response and MESSAGE_CREATE, but not stored: history reads do not show it.
- ``message_reference`` on a POST makes a reply (type 19), as Discord does.
- Rate limits per channel, one bucket for creating messages and one for editing them (Discord:
  5 per 5 s each), with the real ``X-RateLimit-*`` headers and a 429 + ``retry_after`` JSON when a
  client exceeds them; ``rate_window_s``/``rate_limit`` scale them for tests.
- The gateway: HELLO, IDENTIFY → READY (guilds unavailable) + GUILD_CREATE, heartbeats acked,
  dispatches with increasing sequence numbers, RECONNECT → RESUME → replay + RESUMED. Frames are
  compressed the way the client asks in the URL: ``zlib-stream`` (one zlib stream per connection,
  each message ending in the Z_SYNC_FLUSH suffix), ``zstd-stream``, or plain JSON text.

- Application commands: ``PUT /applications/{app}/guilds/{guild}/commands`` (bulk overwrite, kept in
  :attr:`FakeDiscord.commands`); :meth:`FakeDiscord.interact` and :meth:`FakeDiscord.autocomplete`
  send INTERACTION_CREATE over the gateway; ``POST /interactions/{id}/{token}/callback`` (recorded
  with the time it came, to check Discord's 3 s) and the follow-up webhook
  (``PATCH /webhooks/{app}/{token}/messages/@original``, ``POST /webhooks/{app}/{token}``, ``PATCH
  /webhooks/{app}/{token}/messages/{id}``), which need no bot token (the interaction token is in the
  URL) and answer 404 for a token they never issued or after ``interaction_ttl_s``.

The world is small and fixed (ids below); tests add threads, DMs and failures as they need.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import WSMsgType, web

from tests.fakes.files import FileShelf
from tests.fakes.loopback import serve

TOKEN = "fake-bot-token.XYZ.discord-test"
APP_ID = 800
BOT_ID = 900
GUILD_ID = 1000
# Channel ids are snowflakes (17–20 digits), as `where:` requires of a Discord rule.
GENERAL = 112233445566772001    # a text channel with a mention rule
HELP_DESK = 112233445566772002  # a text channel with an always rule
RANDOM = 112233445566772003     # a text channel no rule names
TEAM_A = 112233445566772004     # two channels sharing one session
TEAM_B = 112233445566772005
THREAD = 3001     # a thread in GENERAL, known from GUILD_CREATE
ALICE, BOB, CAROL, OTHER_BOT = 5001, 5002, 5003, 5004
BOT_ROLE, MODS_ROLE = 6001, 6002
MESSAGE_CONTENT_INTENT = 1 << 15

_NOW = "2024-05-01T12:00:00.000000+00:00"
DISCORD_EPOCH_MS = 1_420_070_400_000


def snowflake_at(seconds: float) -> int:
    """The lowest snowflake of a Unix time, as Discord builds ids."""
    return (int(seconds * 1000) - DISCORD_EPOCH_MS) << 22


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py only parses bodies whose Content-Type is exactly "application/json", as Discord sends.
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


# ------------------------------------------------------------------------------------ payloads


def user(uid: int, username: str, *, global_name: str | None = None, bot: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"id": str(uid), "username": username, "discriminator": "0",
                            "global_name": global_name, "avatar": None, "public_flags": 0}
    if bot:
        data["bot"] = True
    return data


def member(u: dict[str, Any], *, nick: str | None = None, roles: tuple[int, ...] = ()) -> dict[str, Any]:
    return {"user": u, "nick": nick, "roles": [str(r) for r in roles], "joined_at": _NOW,
            "deaf": False, "mute": False, "flags": 0, "pending": False}


def text_channel(cid: int, name: str, *, guild_id: int = GUILD_ID, position: int = 0) -> dict[str, Any]:
    return {"id": str(cid), "type": 0, "guild_id": str(guild_id), "name": name, "position": position,
            "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
            "last_message_id": None, "rate_limit_per_user": 0}


def thread_channel(tid: int, name: str, *, parent_id: int = GENERAL, owner_id: int = ALICE,
                   guild_id: int = GUILD_ID) -> dict[str, Any]:
    return {"id": str(tid), "type": 11, "guild_id": str(guild_id), "parent_id": str(parent_id),
            "owner_id": str(owner_id), "name": name, "last_message_id": None, "message_count": 0,
            "member_count": 1, "rate_limit_per_user": 0, "flags": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "archive_timestamp": _NOW,
                                "locked": False}}


def dm_channel(cid: int, recipient: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(cid), "type": 1, "last_message_id": None, "recipients": [recipient]}


# What @everyone may do on a new server: view channels, send messages, read message history.
EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16)


def role(rid: int, name: str, *, bot_id: int | None = None, position: int = 1, permissions: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {"id": str(rid), "name": name, "color": 0, "hoist": False, "icon": None,
                            "unicode_emoji": None, "position": position, "permissions": str(permissions),
                            "managed": bot_id is not None, "mentionable": True, "flags": 0}
    if bot_id is not None:
        data["tags"] = {"bot_id": str(bot_id)}
    return data


def message(mid: int, channel_id: int, content: str, author: dict[str, Any], *, guild_id: int | None,
            author_member: dict[str, Any] | None = None, mentions: list[dict[str, Any]] | None = None,
            mention_roles: list[int] | None = None, kind: int = 0, referenced: dict[str, Any] | None = None,
            webhook_id: int | None = None) -> dict[str, Any]:
    """A message object (MESSAGE_CREATE's ``d``; without guild_id/member it is a REST response)."""
    data: dict[str, Any] = {
        "id": str(mid), "channel_id": str(channel_id), "author": author, "content": content,
        "timestamp": _NOW, "edited_timestamp": None, "tts": False,
        "mention_everyone": "@everyone" in content or "@here" in content,
        "mentions": mentions or [], "mention_roles": [str(r) for r in mention_roles or []],
        "attachments": [], "embeds": [], "pinned": False, "type": kind, "flags": 0, "components": [],
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
        if author_member is not None:
            data["member"] = {k: v for k, v in author_member.items() if k != "user"}
    if referenced is not None:
        data["message_reference"] = {"type": 0, "message_id": referenced["id"],
                                     "channel_id": referenced["channel_id"],
                                     **({"guild_id": str(guild_id)} if guild_id is not None else {})}
        data["referenced_message"] = referenced
    if webhook_id is not None:
        data["webhook_id"] = str(webhook_id)
    return data


# ------------------------------------------------------------------------------------- records


@dataclass
class Call:
    method: str
    path: str          # without the /api/v10 prefix
    body: Any          # the parsed JSON body, or None
    at: float = field(default_factory=time.monotonic)  # when it came (benchmarks)


@dataclass
class Posted:
    """A message the bot posted, with every text it had (first the POST, then each PATCH)."""

    id: int
    channel_id: int
    history: list[str]
    bodies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def content(self) -> str:
        return self.history[-1]


@dataclass
class Interaction:
    """One INTERACTION_CREATE sent, and what the app did with it."""

    id: int
    token: str
    kind: int
    channel_id: int
    sent_at: float
    callbacks: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (when, body)
    original: int | None = None        # the message id of the response, once it has one
    followups: list[int] = field(default_factory=list)

    @property
    def choices(self) -> list[dict[str, Any]]:
        """The autocomplete choices the app answered with."""
        return [c for _, body in self.callbacks if body.get("type") == 8 for c in body["data"]["choices"]]


@dataclass
class _Bucket:
    """One rate-limit bucket: ``remaining`` requests until ``reset_at`` (loop time)."""

    remaining: int = 0
    reset_at: float = 0.0


class _Encoder:
    """One connection's outgoing frames, compressed as the client asked."""

    def __init__(self, compress: str | None) -> None:
        self.mode = compress
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None
        self._zstd: Any = None
        if compress == "zstd-stream":
            try:
                self._zstd = importlib.import_module("zstandard").ZstdCompressor().compressobj()
                self._zstd_flush = importlib.import_module("zstandard").COMPRESSOBJ_FLUSH_BLOCK
            except ImportError:  # Python 3.14+: the standard library's
                zstd = importlib.import_module("compression.zstd")
                compressor = zstd.ZstdCompressor()
                self._zstd = compressor
                self._zstd_flush = compressor.FLUSH_BLOCK

    def encode(self, payload: dict[str, Any]) -> str | bytes:
        raw = json.dumps(payload).encode()
        if self._zlib is not None:
            return self._zlib.compress(raw) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        if self._zstd is not None:
            if hasattr(self._zstd, "flush"):
                return bytes(self._zstd.compress(raw) + self._zstd.flush(self._zstd_flush))
            return bytes(self._zstd.compress(raw, mode=self._zstd_flush))
        return raw.decode()


class _Connection:
    def __init__(self, ws: web.WebSocketResponse, compress: str | None, path: str) -> None:
        self.ws = ws
        self.path = path
        self._encoder = _Encoder(compress)
        self.lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        frame = self._encoder.encode(payload)
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)


@dataclass
class _Session:
    id: str
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)   # every dispatch frame sent
    conn: _Connection | None = None


# -------------------------------------------------------------------------------------- server


class FakeDiscord:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.bot = user(BOT_ID, "bridge-bot", global_name="Bridge", bot=True)
        self.users = {
            ALICE: user(ALICE, "alice", global_name="Alice"),
            BOB: user(BOB, "bob", global_name="Bob"),
            CAROL: user(CAROL, "carol", global_name="Carol"),
            OTHER_BOT: user(OTHER_BOT, "helper-bot", bot=True),
            BOT_ID: self.bot,
        }
        self.members = {uid: member(u, nick="Ali (mod)" if uid == ALICE else None,
                                    roles=(BOT_ROLE,) if uid == BOT_ID else ())
                        for uid, u in self.users.items()}
        self.roles = [role(GUILD_ID, "@everyone", position=0, permissions=EVERYONE_PERMISSIONS),
                      role(BOT_ROLE, "Bridge", bot_id=BOT_ID),
                      role(MODS_ROLE, "mods", position=2)]
        self.channels: dict[int, dict[str, Any]] = {
            GENERAL: text_channel(GENERAL, "general"),
            HELP_DESK: text_channel(HELP_DESK, "help-desk", position=1),
            RANDOM: text_channel(RANDOM, "random", position=2),
            TEAM_A: text_channel(TEAM_A, "team-a", position=3),
            TEAM_B: text_channel(TEAM_B, "team-b", position=4),
            THREAD: thread_channel(THREAD, "ownership-questions"),
        }
        self.announced = {GENERAL, HELP_DESK, RANDOM, TEAM_A, TEAM_B, THREAD}  # what GUILD_CREATE lists
        self.message_content_enabled = True  # the portal switch; off → close 4014 on IDENTIFY
        self.echo = True                     # dispatch the bot's own posts back, as Discord does
        self.calls: list[Call] = []
        self.posted: dict[int, Posted] = {}
        self.typing: list[int] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.connections: list[_Connection] = []
        self.compressions: list[str | None] = []
        self.failures: list[tuple[str, int, dict[str, Any], dict[str, str]]] = []
        self.history: dict[int, list[dict[str, Any]]] = {}  # channel → messages (REST shape), oldest first
        self.nonce_window_s = 300.0          # how long a nonce with enforce_nonce is remembered
        self.rate_limit = 5                  # requests per window, per channel and bucket
        self.rate_window_s = 0.5             # Discord: 5 s; scaled down so tests stay quick
        self.rate_limited: list[Call] = []   # requests answered 429 by the buckets
        self.exhausted = 0                   # responses that told the client a bucket was empty
        self.hold_create: asyncio.Event | None = None  # set by a test: POSTs create, then wait to answer
        self.hold_after = 0                  # ... once this many creates were answered
        self.resumable = True                # False: a RESUME is refused (op 9), the client IDENTIFYs
        self.commands: dict[int, list[dict[str, Any]]] = {}  # guild → its application commands
        self.interactions: dict[str, Interaction] = {}        # by token
        self.interaction_ttl_s = 900.0                        # Discord: a token works for 15 minutes
        self.commands_scope = True  # False: invited without applications.commands (403 Missing Access)
        self.manage_webhooks = True          # the bot's Manage Webhooks permission; off → 403 on webhook calls
        self.webhooks: dict[int, dict[str, Any]] = {}  # id → webhook object (with its token)
        self.hold_webhook: asyncio.Event | None = None  # set by a test: executions create, then wait to answer
        self.hold_webhook_after = 0          # ... once this many executions were answered
        self.executions = 0                  # webhook executions that created a message
        self.deleted: list[Posted] = []      # the bot's or a webhook's messages, deleted
        self.url = ""
        self.files = FileShelf()  # the CDN: signed URLs, no token
        self._last_id = 0
        self._nonces: dict[tuple[int, str], tuple[int, float]] = {}
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._sessions: dict[str, _Session] = {}
        self._session: _Session | None = None
        self._replay_extra = 0
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # -------------------------------------------------------------------------- lifecycle

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway"

    @property
    def resume_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/resume"

    async def start(self) -> FakeDiscord:
        app = web.Application()
        app.add_routes([web.get("/gateway", self._gateway), web.get("/resume", self._gateway),
                        web.route("*", "/api/v10/{tail:.*}", self._rest),
                        web.get("/attachments/{tail:.*}", self.files.handle)])
        self._runner, base_url = await serve(app)
        self.url = base_url
        return self

    async def stop(self) -> None:
        if self.hold_create is not None:
            self.hold_create.set()  # let held requests finish, or the server waits for them
        for conn in self.connections:
            await conn.ws.close()
        if self._runner:
            await self._runner.cleanup()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 10) -> None:
        """Wait until ``condition()`` is true; it is checked after every call and dispatch."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    # ------------------------------------------------------------------------------- world

    def add_thread(self, tid: int, name: str, *, parent_id: int = GENERAL) -> None:
        """A thread created while the bot was away: visible through REST, not in GUILD_CREATE."""
        self.channels[tid] = thread_channel(tid, name, parent_id=parent_id)

    def add_dm(self, cid: int, with_user: int) -> None:
        self.channels[cid] = dm_channel(cid, self.users[with_user])

    def fail_next(self, method: str, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        """The next ``times`` matching REST calls (e.g. ``"POST /messages"``) fail with ``status``."""
        body: dict[str, Any] = {"message": "Missing Permissions", "code": 50013}
        headers: dict[str, str] = {}
        if status == 429:
            body = {"message": "You are being rate limited.", "retry_after": retry_after or 0.05, "global": False}
            headers = {"Retry-After": str(retry_after or 0.05), "Via": "1.1 google",
                       "X-RateLimit-Scope": "user"}
        self.failures.extend((method, status, body, headers) for _ in range(times))

    def next_id(self) -> int:
        """A new snowflake: now, and after every id handed out before."""
        self._last_id = max(self._last_id + 1, snowflake_at(time.time()))
        return self._last_id

    def messages_in(self, channel_id: int) -> list[Posted]:
        return [p for p in self.posted.values() if p.channel_id == channel_id]

    def calls_to(self, method: str, path_part: str = "") -> list[Call]:
        return [c for c in self.calls if c.method == method and path_part in c.path]

    # ---------------------------------------------------------------------------- gateway

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send one event to the connected client; returns its sequence number."""
        session = self._session
        assert session is not None, "no client is connected"
        assert session.conn is not None, "no client is connected"
        async with session.conn.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.log.append(frame)
            await session.conn.send(frame)
        await self._notify()
        return session.seq

    def cdn_file(self, name: str, data: bytes, content_type: str, *, channel: int = GENERAL,
                 size: int | None = None, endless: bool = False) -> dict[str, Any]:
        """An ``attachments[]`` entry as Discord sends it, its bytes served at a signed CDN URL."""
        aid = self.next_id()
        path = f"/attachments/{channel}/{aid}/{name}"
        self.files.put(path, data, content_type, endless=endless)
        url = f"{self.url}{path}?ex=67a1b2c3&is=67a06143&hm=0f1e2d3c4b5a69788796a5b4c3d2e1f0&"
        return {"id": str(aid), "filename": name, "size": len(data) if size is None else size, "url": url,
                "proxy_url": url.replace("/attachments/", "/proxy/attachments/"), "content_type": content_type}

    def make_message(self, content: str, *, channel: int = GENERAL, author: int = ALICE, kind: int = 0,
                     reply_to: dict[str, Any] | None = None, webhook_id: int | None = None,
                     attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A MESSAGE_CREATE payload as Discord would send it, mentions resolved from ``<@id>``/``<@&id>``."""
        where = self.channels[channel]
        guild_id = int(where["guild_id"]) if "guild_id" in where else None
        mentions = []
        for uid in (int(m) for m in re.findall(r"<@!?(\d+)>", content)):
            entry = dict(self.users[uid])
            if guild_id is not None:
                entry["member"] = {k: v for k, v in self.members[uid].items() if k != "user"}
            mentions.append(entry)
        roles = [int(r) for r in re.findall(r"<@&(\d+)>", content)]
        data = message(self.next_id(), channel, content, self.users[author], guild_id=guild_id,
                       author_member=self.members.get(author) if guild_id is not None else None,
                       mentions=mentions, mention_roles=roles, kind=19 if reply_to and not kind else kind,
                       referenced=reply_to, webhook_id=webhook_id)
        data["attachments"] = attachments or []
        return data

    async def say(self, content: str, *, channel: int = GENERAL, author: int = ALICE, kind: int = 0,
                  reply_to: dict[str, Any] | None = None, webhook_id: int | None = None,
                  gateway: Literal["sent", "lost", "unsent"] = "sent",
                  attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A user writes in a channel: one MESSAGE_CREATE (see :meth:`make_message`).

        ``gateway="lost"``: the message exists (history shows it) but no gateway event announces it,
        as for a message written while the bot was offline or its connection was down for good.
        ``"unsent"``: the event is in the session's log but the connection dropped before sending
        it: the next RESUME replays it.
        """
        data = self.make_message(content, channel=channel, author=author, kind=kind, reply_to=reply_to,
                                 webhook_id=webhook_id, attachments=attachments)
        self._keep(data)
        if gateway == "sent":
            await self.dispatch("MESSAGE_CREATE", data)
        elif gateway == "unsent":
            session = self._session
            assert session is not None, "no session to replay it in"
            session.seq += 1
            session.log.append({"op": 0, "t": "MESSAGE_CREATE", "s": session.seq, "d": data})
        await self._notify()
        return data

    async def interact(self, name: str, options: dict[str, str] | None = None, *, channel: int = GENERAL,
                       author: int = ALICE, kind: int = 2) -> Interaction:
        """A person runs ``/name`` (kind 2) or types in one of its options (kind 4, autocomplete)."""
        where = self.channels[channel]
        guild_id = int(where["guild_id"]) if "guild_id" in where else None
        iid = self.next_id()
        token = f"interaction-token-{iid}"
        command = next((c for c in self.commands.get(guild_id or 0, []) if c["name"] == name), None)
        data: dict[str, Any] = {"id": command["id"] if command else str(self.next_id()), "name": name, "type": 1,
                                "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]}
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        if kind == 4 and data["options"]:
            data["options"][-1]["focused"] = True
        payload: dict[str, Any] = {
            "id": str(iid), "application_id": str(APP_ID), "type": kind, "data": data, "channel_id": str(channel),
            "channel": where, "token": token, "version": 1, "app_permissions": str((1 << 53) - 1),
            "locale": "en-US", "entitlements": [], "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0 if guild_id is not None else 1, "attachment_size_limit": 10_485_760}
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = "en-US"
            payload["member"] = {**self.members[author], "permissions": str(EVERYONE_PERMISSIONS)}
        else:
            payload["user"] = self.users[author]
        record = Interaction(iid, token, kind, channel, time.monotonic())
        self.interactions[token] = record
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    async def click(self, message_id: int, custom_id: str, *, author: int = ALICE) -> Interaction:
        """A person clicks a button (kind 3, a component interaction) on one of the bot's messages."""
        posted = self.posted[message_id]
        channel = posted.channel_id
        where = self.channels[channel]
        iid = self.next_id()
        token = f"interaction-token-{iid}"
        payload: dict[str, Any] = {
            "id": str(iid), "application_id": str(APP_ID), "type": 3, "channel_id": str(channel), "channel": where,
            "data": {"custom_id": custom_id, "component_type": 2}, "message": self._stored(channel, message_id),
            "token": token, "version": 1, "app_permissions": str((1 << 53) - 1), "locale": "en-US",
            "entitlements": [], "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0,
            "attachment_size_limit": 10_485_760}
        if "guild_id" in where:
            payload["guild_id"] = where["guild_id"]
            payload["guild_locale"] = "en-US"
            payload["member"] = {**self.members[author], "permissions": str(EVERYONE_PERMISSIONS)}
        else:
            payload["user"] = self.users[author]
        record = Interaction(iid, token, 3, channel, time.monotonic())
        self.interactions[token] = record
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    def buttons_under(self, message_id: int) -> list[str]:
        """The custom ids of the buttons the bot put under one of its messages (latest edit)."""
        for body in reversed(self.posted[message_id].bodies):
            if "components" in body:
                return [c["custom_id"] for row in body["components"] for c in row.get("components", [])]
        return []

    async def autocomplete(self, name: str, options: dict[str, str], **kwargs: Any) -> Interaction:
        return await self.interact(name, options, kind=4, **kwargs)

    def _keep(self, data: dict[str, Any]) -> None:
        stored = {k: v for k, v in data.items() if k not in ("guild_id", "member", "nonce")}
        self.history.setdefault(int(data["channel_id"]), []).append(stored)

    def _stored(self, cid: int, mid: int) -> dict[str, Any] | None:
        return next((m for m in self.history.get(cid, []) if m["id"] == str(mid)), None)

    async def reconnect(self, *, replay_last: int = 0, timeout: float = 10) -> None:
        """Ask the client to reconnect (op 7); it RESUMEs, and gets the events it missed plus the
        last ``replay_last`` ones it already had (a replay overlapping what was delivered).
        With ``resumable`` off the RESUME is refused and the client starts a new session (READY)."""
        session = self._session
        assert session is not None
        assert session.conn is not None
        resumes, identifies = len(self.resumes), len(self.identifies)
        self._replay_extra = replay_last
        await session.conn.send({"op": 7, "d": None})
        if self.resumable:
            await self.wait_until(lambda: len(self.resumes) > resumes and session.conn is not None
                                  and session.conn.path == "/resume", timeout)
        else:
            await self.wait_until(lambda: len(self.identifies) > identifies and self._session is not session,
                                  timeout)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        compress = request.query.get("compress")
        self.compressions.append(compress)
        conn = _Connection(ws, compress, request.path)
        self.connections.append(conn)
        await conn.send({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            op, d = payload.get("op"), payload.get("d")
            if op == 1:
                await conn.send({"op": 11})
            elif op == 2:
                await self._identify(conn, d)
            elif op == 6:
                await self._resume(conn, d)
        if self._session is not None and self._session.conn is conn:
            self._session.conn = None
        return ws

    async def _identify(self, conn: _Connection, d: dict[str, Any]) -> None:
        self.identifies.append(d)
        if d.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        if d.get("intents", 0) & MESSAGE_CONTENT_INTENT and not self.message_content_enabled:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session = _Session(id=f"session-{len(self._sessions) + 1}", conn=conn)
        self._sessions[session.id] = session
        self._session = session
        await self.dispatch("READY", {
            "v": 10, "user": self.bot, "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "session_id": session.id, "resume_gateway_url": self.resume_url,
            "application": {"id": str(APP_ID), "flags": 0}, "private_channels": [], "relationships": [],
        })
        await self.dispatch("GUILD_CREATE", self.guild_payload())
        await self._notify()

    async def _resume(self, conn: _Connection, d: dict[str, Any]) -> None:
        self.resumes.append(d)
        session = self._sessions.get(d.get("session_id", ""))
        if session is None or d.get("token") != self.token or not self.resumable:
            await conn.send({"op": 9, "d": False})
            return
        old = session.conn
        session.conn = conn
        self._session = session
        if old is not None and old is not conn:
            await old.ws.close()
        seq = int(d.get("seq") or 0)
        start = max(0, min(seq, len(session.log)) - self._replay_extra)
        self._replay_extra = 0
        async with conn.lock:
            for frame in session.log[start:]:
                await conn.send(frame)
        await self.dispatch("RESUMED", {})
        await self._notify()

    def guild_payload(self) -> dict[str, Any]:
        channels = [c for cid, c in self.channels.items() if cid in self.announced and c["type"] == 0]
        threads = [c for cid, c in self.channels.items() if cid in self.announced and c["type"] == 11]
        return {
            "id": str(GUILD_ID), "name": "Test Server", "icon": None, "owner_id": str(ALICE),
            "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "premium_tier": 0, "nsfw_level": 0,
            "features": [], "emojis": [], "stickers": [], "roles": self.roles, "system_channel_id": None,
            "preferred_locale": "en-US", "joined_at": _NOW, "large": False, "unavailable": False,
            "member_count": len(self.members), "members": list(self.members.values()),
            "channels": channels, "threads": threads, "voice_states": [], "presences": [],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
        }

    # ------------------------------------------------------------------------------- REST

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body = await request.json() if request.can_read_body and request.content_type == "application/json" else None
        call = Call(request.method, path, body)
        self.calls.append(call)
        try:
            executed = re.fullmatch(r"/webhooks/(\d+)/([^/]+)", path)
            # a webhook's token is its credential
            if executed is not None and request.method == "POST" and int(executed.group(1)) in self.webhooks:
                return await self._execute(int(executed.group(1)), executed.group(2), body or {}, request.query)
            hooked = re.fullmatch(r"/webhooks/(\d+)/([^/]+)/messages/(\d+)", path)
            if hooked is not None and int(hooked.group(1)) in self.webhooks:
                return await self._webhook_message(int(hooked.group(1)), hooked.group(2), int(hooked.group(3)),
                                                   request.method, body or {})
            # interaction follow-ups (/webhooks/APP_ID/TOKEN/...): the token in the URL is the auth
            tokened = path.startswith(("/interactions/", "/webhooks/"))  # the token in the URL is the auth
            if not tokened and request.headers.get("Authorization") != f"Bot {self.token}":
                return _json({"message": "401: Unauthorized", "code": 0}, 401)
            for i, (what, status, err, headers) in enumerate(self.failures):
                method, _, part = what.partition(" ")
                if method == request.method and part in path:
                    del self.failures[i]
                    return _json(err, status, headers)
            bucket = self._bucket_of(request.method, path)
            limited = self._take(bucket) if bucket is not None else None
            if limited is not None:
                self.rate_limited.append(call)
                return limited
            response = await self._route(request.method, path, body, request.query)
            if bucket is not None:
                response.headers.update(self._rate_headers(bucket))
            return response
        finally:
            await self._notify()

    # ------------------------------------------------------------------------ rate limits

    @staticmethod
    def _bucket_of(method: str, path: str) -> tuple[str, int] | None:
        """Message creates and edits are limited per channel (the channel is the major parameter)."""
        m = re.fullmatch(r"/channels/(\d+)/messages(/\d+)?", path)
        if m is None or method not in ("POST", "PATCH"):
            return None
        return ("create" if method == "POST" else "edit", int(m.group(1)))

    def _state(self, key: tuple[str, int]) -> _Bucket:
        now = asyncio.get_running_loop().time()
        bucket = self._buckets.setdefault(key, _Bucket())
        if now >= bucket.reset_at:
            bucket.remaining, bucket.reset_at = self.rate_limit, now + self.rate_window_s
        return bucket

    def _take(self, key: tuple[str, int]) -> web.Response | None:
        """Count one request against its bucket; a 429 response when the bucket is empty."""
        bucket = self._state(key)
        if bucket.remaining > 0:
            bucket.remaining -= 1
            return None
        retry_after = round(bucket.reset_at - asyncio.get_running_loop().time(), 3)
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        return _json(body, 429, {**self._rate_headers(key), "Retry-After": str(max(1, round(retry_after))),
                                 "X-RateLimit-Scope": "user", "Via": "1.1 google"})

    def _rate_headers(self, key: tuple[str, int]) -> dict[str, str]:
        bucket = self._state(key)
        reset_after = max(0.0, bucket.reset_at - asyncio.get_running_loop().time())
        if bucket.remaining == 0:
            self.exhausted += 1
        return {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": str(bucket.remaining),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": f"fake-{key[0]}-bucket"}

    # ----------------------------------------------------------------------------- routes

    async def _route(self, method: str, path: str, body: Any, query: Any) -> web.Response:
        if method == "GET" and path == "/users/@me":
            return _json(self.bot)
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json({"id": str(APP_ID), "name": "bridge", "description": "", "icon": None,
                          "bot_public": False, "bot_require_code_grant": False, "owner": self.users[ALICE],
                          "verify_key": "00" * 32, "team": None,
                          # GATEWAY_MESSAGE_CONTENT_LIMITED: the portal switch, as the API shows it
                          "flags": 1 << 19 if self.message_content_enabled else 0})
        if method == "GET" and path == "/gateway":
            return _json({"url": self.gateway_url})
        if method == "GET" and path == "/gateway/bot":
            return _json({"url": self.gateway_url, "shards": 1,
                          "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                                  "max_concurrency": 1}})
        if method == "GET" and path == f"/guilds/{GUILD_ID}":  # `bridge check --online`: the roles
            return _json(self.guild_payload())
        if method == "GET" and (m := re.fullmatch(rf"/guilds/{GUILD_ID}/members/(\d+)", path)):
            found = self.members.get(int(m.group(1)))
            return _json(found) if found else _json({"message": "Unknown Member", "code": 10007}, 404)
        interaction = await self._interaction_route(method, path, body, query)
        if interaction is not None:
            return interaction
        hooks = re.fullmatch(r"/channels/(\d+)/webhooks", path)
        if hooks is not None:
            return self._webhooks_of(int(hooks.group(1)), method, body or {})
        m = re.fullmatch(r"/channels/(\d+)(/typing|/messages(?:/(\d+))?)?", path)
        if m is None:
            return _json({"message": "404: Not Found", "code": 0}, 404)
        cid = int(m.group(1))
        if cid not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        if method == "GET" and m.group(2) is None:
            return _json(self.channels[cid])
        if method == "POST" and m.group(2) == "/typing":
            self.typing.append(cid)
            return web.Response(status=204)
        if method == "GET" and m.group(2) == "/messages":
            return self._read(cid, query)
        if m.group(2) and m.group(2).startswith("/messages"):
            problem = self._invalid(body)
            if problem is not None:
                return _json(problem, 400)
            if method == "POST" and m.group(3) is None:
                return await self._create(cid, body)
            if method == "PATCH" and m.group(3) is not None:
                return self._edit(cid, int(m.group(3)), body)
            if method == "DELETE" and m.group(3) is not None:
                return await self._delete(cid, int(m.group(3)))
        return _json({"message": "405: Method Not Allowed", "code": 0}, 405)

    async def _interaction_route(self, method: str, path: str, body: Any, query: Any) -> web.Response | None:
        """Command registration, interaction callbacks and the follow-up webhook; None: not one of these."""
        if method == "GET" and path == "/users/@me/guilds":
            return _json([{"id": str(GUILD_ID), "name": "Test Server", "icon": None, "owner": False,
                           "permissions": str(EVERYONE_PERMISSIONS), "features": []}])
        m = re.fullmatch(r"/applications/(\d+)/guilds/(\d+)/commands", path)
        if m is not None and not self.commands_scope:
            return _json({"message": "Missing Access", "code": 50001}, 403)
        if m is not None and method == "GET":
            return _json(self.commands.get(int(m.group(2)), []))
        if m is not None and method == "PUT":
            if int(m.group(1)) != APP_ID:
                return _json({"message": "Unknown Application", "code": 10002}, 404)
            commands = [{**c, "id": str(self.next_id()), "application_id": str(APP_ID), "guild_id": m.group(2),
                         "version": str(self.next_id()), "default_member_permissions": None, "type": c.get("type", 1),
                         "dm_permission": True, "nsfw": False} for c in body or []]
            self.commands[int(m.group(2))] = commands
            return _json(commands)
        m = re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path)
        with_response = str(query.get("with_response", "")).lower() in ("1", "true")
        if m is not None and method == "POST":
            found = self.interactions.get(m.group(2))
            if found is None or str(found.id) != m.group(1) or self._expired(found):
                return _json({"message": "Unknown interaction", "code": 10062}, 404)
            if found.callbacks:
                return _json({"message": "Interaction has already been acknowledged.", "code": 40060}, 400)
            found.callbacks.append((time.monotonic(), body or {}))
            kind = int((body or {}).get("type") or 0)
            resource: dict[str, Any] = {"type": kind}
            if kind == 4:  # answered at once with a message
                found.original = await self._webhook_post(found, body["data"])
                resource["message"] = self._stored(found.channel_id, found.original)
            if not with_response:
                return web.Response(status=204)
            return _json({"interaction": {"id": str(found.id), "type": found.kind,
                                          "response_message_id": str(found.original) if found.original else None,
                                          "response_message_loading": kind == 5,
                                          "response_message_ephemeral": False}, "resource": resource})
        m = re.fullmatch(r"/webhooks/(\d+)/([^/]+)(?:/messages/(@original|\d+))?", path)
        if m is None:
            return None
        found = self.interactions.get(m.group(2))
        if int(m.group(1)) != APP_ID or found is None or self._expired(found):
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        problem = self._invalid(body)
        if problem is not None:
            return _json(problem, 400)
        target = m.group(3)
        if method == "POST" and target is None:
            if not found.callbacks:
                return _json({"message": "Unknown Webhook", "code": 10015}, 404)  # respond first
            mid = await self._webhook_post(found, body or {})
            found.followups.append(mid)
            return _json(self._stored(found.channel_id, mid))
        if method == "PATCH" and target is not None:
            if target == "@original" and found.original is None:
                if not found.callbacks:
                    return _json({"message": "Unknown Webhook", "code": 10015}, 404)
                found.original = await self._webhook_post(found, body or {})  # the deferred response arrives
                return _json(self._stored(found.channel_id, found.original))
            mid = found.original if target == "@original" else int(target)
            if mid is None or (mid != found.original and mid not in found.followups):
                return _json({"message": "Unknown Message", "code": 10008}, 404)
            return self._edit(found.channel_id, mid, body or {})
        return _json({"message": "405: Method Not Allowed", "code": 0}, 405)

    def _expired(self, found: Interaction) -> bool:
        return time.monotonic() - found.sent_at > self.interaction_ttl_s

    async def _webhook_post(self, found: Interaction, body: dict[str, Any]) -> int:
        """A message from the interaction's webhook, in its channel (no nonce, no reference)."""
        data = self.make_message(body.get("content") or "", channel=found.channel_id, author=BOT_ID)
        data["mentions"] = []
        data["webhook_id"] = str(APP_ID)
        data["interaction_metadata"] = {"id": str(found.id), "type": 2, "user": self.users[ALICE]}
        self._keep(data)
        self.posted[int(data["id"])] = Posted(int(data["id"]), found.channel_id, [data["content"]], [body])
        if self.echo and self._session is not None and self._session.conn is not None:
            await self.dispatch("MESSAGE_CREATE", data)
        return int(data["id"])

    def _read(self, cid: int, query: Any) -> web.Response:
        """``GET /channels/{id}/messages``: newest first; ``after`` gives the oldest ones after it."""
        limit = max(1, min(100, int(query.get("limit", 50))))
        kept = self.history.get(cid, [])
        if "after" in query:
            after = int(query["after"])
            page = [m for m in kept if int(m["id"]) > after][:limit]
        else:
            before = int(query["before"]) if "before" in query else None
            page = [m for m in kept if before is None or int(m["id"]) < before][-limit:]
        return _json(list(reversed(page)))

    @staticmethod
    def _invalid(body: Any) -> dict[str, Any] | None:
        content = (body or {}).get("content")
        if content is not None and len(content) > 2000:
            return {"message": "Invalid Form Body", "code": 50035, "errors": {"content": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}}
        if content is not None and not content.strip():
            return {"message": "Cannot send an empty message", "code": 50006}
        nonce = (body or {}).get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            return {"message": "Invalid Form Body", "code": 50035, "errors": {"nonce": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 25 or fewer in length."}]}}}
        return None

    async def _create(self, cid: int, body: dict[str, Any]) -> web.Response:
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            seen = self._nonces.get((BOT_ID, str(nonce)))
            if seen is not None and time.monotonic() - seen[1] < self.nonce_window_s:
                existing = self.posted[seen[0]]
                data = self._stored(existing.channel_id, existing.id)
                assert data is not None
                return _json({**data, "nonce": str(nonce)})  # the message already created, not a new one
        reference = body.get("message_reference")
        referenced = self._stored(int(reference.get("channel_id") or cid), int(reference["message_id"])) \
            if reference else None
        if reference and referenced is None and reference.get("fail_if_not_exists", True):
            return _json({"message": "Invalid Form Body", "code": 50035, "errors": {"message_reference": {
                "_errors": [{"code": "REPLIES_UNKNOWN_MESSAGE", "message": "Unknown message"}]}}}, 400)
        data = self.make_message(body.get("content") or "", channel=cid, author=BOT_ID, reply_to=referenced)
        data["mentions"] = []  # allowed_mentions decides pings; the bot's own text mentions nobody here
        self._keep(data)
        self.posted[int(data["id"])] = Posted(int(data["id"]), cid, [data["content"]], [body])
        if nonce is not None:
            data["nonce"] = str(nonce)
            self._nonces[(BOT_ID, str(nonce))] = (int(data["id"]), time.monotonic())
        if self.echo and self._session is not None and self._session.conn is not None:
            await self.dispatch("MESSAGE_CREATE", data)
        if self.hold_create is not None and len(self.posted) > self.hold_after:
            # created; the answer is late (a crash may come first)
            await self._notify()
            await self.hold_create.wait()
        rest = {k: v for k, v in data.items() if k not in ("guild_id", "member")}
        return _json(rest)

    # ---------------------------------------------------------------------------- webhooks

    def _webhooks_of(self, cid: int, method: str, body: dict[str, Any]) -> web.Response:
        """``GET``/``POST /channels/{id}/webhooks``: needs Manage Webhooks; threads have none of their own."""
        if cid not in self.channels or self.channels[cid].get("type") in (10, 11, 12):
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        if not self.manage_webhooks:
            return _json({"message": "Missing Permissions", "code": 50013}, 403)
        if method == "GET":
            return _json([w for w in self.webhooks.values() if w["channel_id"] == str(cid)])
        if method == "POST":
            wid = self.next_id()
            hook = {"id": str(wid), "type": 1, "channel_id": str(cid), "guild_id": str(GUILD_ID),
                    "name": body.get("name") or "webhook", "avatar": None, "token": f"tok{wid}",
                    "application_id": None, "user": self.bot}
            self.webhooks[wid] = hook
            return _json(hook)
        return _json({"message": "405: Method Not Allowed", "code": 0}, 405)

    async def _execute(self, wid: int, token: str, body: dict[str, Any], query: Any) -> web.Response:
        """``POST /webhooks/{id}/{token}``: a message under the given name and avatar, no nonce."""
        hook = self.webhooks.get(wid)
        if hook is None or hook["token"] != token:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        problem = self._invalid(body)
        if problem is not None:
            return _json(problem, 400)
        cid = int(query.get("thread_id") or hook["channel_id"])
        author = {"id": str(wid), "username": body.get("username") or hook["name"], "avatar": None,
                  "discriminator": "0000", "bot": True}
        data = message(self.next_id(), cid, body.get("content") or "", author, guild_id=GUILD_ID, webhook_id=wid)
        self._keep(data)
        self.posted[int(data["id"])] = Posted(int(data["id"]), cid, [data["content"]], [body])
        if self.echo and self._session is not None and self._session.conn is not None:
            await self.dispatch("MESSAGE_CREATE", data)
        self.executions += 1
        if self.hold_webhook is not None and self.executions > self.hold_webhook_after:
            await self._notify()
            await self.hold_webhook.wait()
        if query.get("wait") not in ("true", "True", "1"):
            return web.Response(status=204)
        return _json({k: v for k, v in data.items() if k != "guild_id"})

    async def _webhook_message(self, wid: int, token: str, mid: int, method: str, body: dict[str, Any]) -> web.Response:
        """``PATCH``/``DELETE /webhooks/{id}/{token}/messages/{mid}``: only that webhook's own messages."""
        hook = self.webhooks.get(wid)
        posted = self.posted.get(mid)
        if hook is None or hook["token"] != token:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        stored = self._stored(posted.channel_id, mid) if posted is not None else None
        if posted is None or stored is None or stored.get("webhook_id") != str(wid):
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        if method == "DELETE":
            return await self._delete(posted.channel_id, mid)
        if method == "PATCH":
            return self._edit(posted.channel_id, mid, body)
        return _json({"message": "405: Method Not Allowed", "code": 0}, 405)

    async def _delete(self, cid: int, mid: int) -> web.Response:
        posted = self.posted.get(mid)
        if posted is None or posted.channel_id != cid:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        del self.posted[mid]
        self.deleted.append(posted)
        self.history[cid] = [m for m in self.history.get(cid, []) if m["id"] != str(mid)]
        return web.Response(status=204)

    def _edit(self, cid: int, mid: int, body: dict[str, Any]) -> web.Response:
        posted = self.posted.get(mid)
        stored = self._stored(cid, mid)
        if posted is None or posted.channel_id != cid or stored is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        if "content" in body:
            posted.history.append(body["content"])
            stored["content"] = body["content"]
        posted.bodies.append(body)
        stored["edited_timestamp"] = datetime.now(UTC).isoformat()
        return _json(stored)
