"""Slack: mention the app in a channel and the thread becomes the conversation; DMs always answered.

Built on slack-bolt's :class:`AsyncApp`, unmodified, in the bridge's one asyncio loop:

- **Socket Mode** when ``app_token`` is set (``AsyncSocketModeHandler``, no public URL needed);
- **HTTP Events API** at ``POST /slack/events`` on the bridge's server when ``signing_secret`` is
  set. The signature (and its 5-minute window) is verified on the raw bytes and the body checked
  by :mod:`platforms.slack.intake` before Bolt sees it; Bolt then answers ``url_verification``
  and routes events.

Each event takes its place in its channel's queue as it arrives (:mod:`platforms.arrival`): a slow
name lookup never lets a later message be stored first. Bolt's authorization uses one shared
``auth.test`` result instead of one call per request until the first returns.

Events are translated by :mod:`platforms.slack.handlers` (pure); replies are streamed by the core's
:func:`~bridge.llm.streaming.render_stream` as one placeholder message edited in place
(``chat.update``), continued in further messages past the size limit. Text goes out as
``markdown_text``, so the model's ordinary Markdown renders without a converter. Every Web API call
goes to ``api_url`` and honours 429 ``Retry-After`` through slack_sdk's own retry handler; a reply's
calls keep doing so until ``reply_deadline_s``, and each reply is posted once even across a crash
(:mod:`.delivery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bridge.attachments.hosts import FileHosts, api_origin
from bridge.config import Config, SlackConfig
from bridge.diagnosis import Finding
from bridge.platform import Inbox, PlatformStartError, Stopping
from bridge.relay.copies import Copy
from bridge.types import Outgoing, RatingSink, ThreadRef
from bridge.untrusted.jsonbody import BadBody
from bridge.untrusted.logs import BoundedMessages, excerpt
from platforms.arrival import Arrivals, Place
from platforms.slack import intake
from platforms.slack.assistant import AssistantPane
from platforms.slack.delivery import PLACEHOLDER, UntilDeadline, deliver
from platforms.slack.feedback import ACTION_ID, buttons, rating_of
from platforms.slack.handlers import BotIdentity, translate, translate_change, user_ids_to_resolve
from platforms.slack.relay import CUSTOMIZE_SCOPE, change_copy, post_copy, scopes_of
from platforms.slack.stream import native_for, stop_leftovers
from platforms.slack.users import UserNames

__all__ = ["MARKDOWN_TEXT_LIMIT", "PLACEHOLDER", "SlackPlatform", "create"]

log = logging.getLogger(__name__)

MARKDOWN_TEXT_LIMIT = 12_000  # chat.postMessage / chat.update reject longer markdown_text
CONNECT_TIMEOUT_S = 15.0
_NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def _api_base(url: str) -> str:
    """slack_sdk joins method names onto the base URL, which therefore must end with a slash."""
    return url if url.endswith("/") else url + "/"


def _slack_error(exc: SlackApiError) -> str:
    response = exc.response
    return str(response.get("error") if response is not None else "error")


async def _connect(handler: AsyncSocketModeHandler) -> None:
    await handler.connect_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated


async def _close(handler: AsyncSocketModeHandler) -> None:
    await handler.close_async()  # type: ignore[no-untyped-call]


def _tokenless(client: AsyncWebClient) -> AsyncWebClient:
    """The client Bolt copies for each request, with no token: ``authorize`` supplies it (Bolt warns
    about a token given alongside ``authorize``)."""
    return AsyncWebClient(base_url=client.base_url, logger=client.logger, retry_handlers=client.retry_handlers)


ARRIVAL = "bridge_arrival"  # the request context key of the event's Place


class _OrderedApp(AsyncApp):
    """Bolt's app, unchanged except that each event takes its place in its channel's queue the moment
    it arrives, before authorization or any listener can wait (:mod:`platforms.arrival`)."""

    def __init__(self, arrivals: Arrivals, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._arrivals = arrivals

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        key = intake.conversation_of(req.body)
        if key is None:
            return await super().async_dispatch(req)
        place = self._arrivals.place(key)
        req.context[ARRIVAL] = place
        try:
            return await super().async_dispatch(req)
        finally:
            place.release()
_TOKEN_SKIPPED = warning_client_prioritized_and_token_skipped()


def without_token_skipped(record: logging.LogRecord) -> bool:
    """Bolt reads ``SLACK_BOT_TOKEN`` from the environment by itself, and warns that it goes unused
    since the bridge gives it a client: true, expected, and alarming to whoever exported it."""
    return record.getMessage() != _TOKEN_SKIPPED


class SlackPlatform:
    name = "slack"
    threads_copies = True  # relayed copies of a share go into one thread per channel, not the top level

    def __init__(self, settings: SlackConfig, config: Config | None = None) -> None:
        if settings.bot_token is None:
            raise ValueError("platforms.slack.bot_token is required")
        self._settings = settings
        self._app_token = settings.app_token.get_secret_value() if settings.app_token else ""
        signing_secret = settings.signing_secret.get_secret_value() if settings.signing_secret else ""
        self._http_enabled = bool(signing_secret)
        self.mode = "socket" if self._app_token else "http"
        self.client = AsyncWebClient(
            token=settings.bot_token.get_secret_value(),
            base_url=_api_base(settings.api_url),
            logger=logging.getLogger(f"{__name__}.web"),
            retry_handlers=[AsyncConnectionErrorRetryHandler(), UntilDeadline()],
        )
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        # Bolt's own loggers copy this one's filters: whatever Bolt logs of a request is bounded.
        bolt_logger = logging.getLogger(f"{__name__}.bolt")
        if not any(isinstance(f, BoundedMessages) for f in bolt_logger.filters):
            bolt_logger.addFilter(BoundedMessages())
            bolt_logger.addFilter(without_token_skipped)
        # process_before_response: the event is stored before Slack gets its ack, so a crash in
        # between means a Slack retry, not a lost message (storing takes milliseconds).
        # authorize: Bolt's default calls auth.test for every request until the first call returns
        # (400 events at a fresh start made 400 calls); here one call is made and shared.
        self._auth: asyncio.Future[AsyncSlackResponse] | None = None

        async def authorize() -> AuthorizeResult:
            return await self._authorize()

        self._arrivals = Arrivals()
        self._app = _OrderedApp(self._arrivals, client=_tokenless(self.client), authorize=authorize,
                                signing_secret=signing_secret, process_before_response=True,
                                name="bridge-slack", logger=bolt_logger)
        self._app.error(self._on_error)
        self._app.event("app_mention")(self._on_message)
        self._app.event("message")(self._on_message)
        self._app.event(re.compile(".*"))(self._on_other)  # acknowledge what we do not use
        self._app.action(ACTION_ID)(self._on_rating)
        self._ratings: RatingSink | None = None
        self._pane = AssistantPane(self.client, config, self._on_message) if settings.assistant and config else None
        if self._pane is not None:
            self._app.assistant(self._pane.middleware)
        self._names = UserNames(self.client)
        self._inbox: Inbox | None = None
        self._bot: BotIdentity | None = None
        self._bot_name = ""
        self._team = ""
        self._socket: AsyncSocketModeHandler | None = None
        self._limit = min(settings.max_reply_chars, MARKDOWN_TEXT_LIMIT)
        # llm.stream off: an answer arrives whole, and a stream of it (start, then stop) would cost
        # two Web API calls where one chat.postMessage shows the same message.
        self._streamed = config.llm.stream if config is not None else True
        self._no_streams: set[str] = set()  # workspaces that refused the streaming methods: edits there
        self._customize = False  # chat:write.customize: relayed copies show their author's name and icon

    def file_hosts(self, thread: ThreadRef | None = None) -> FileHosts:
        """Slack's file URLs, opened with the bot token (``files:read``); an overridden ``api_url``'s origin too."""
        hosts = ("https://files.slack.com", *api_origin(self._settings.api_url, SlackConfig.model_fields[
            "api_url"].default))
        token = self.client.token or ""

        async def headers() -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        return FileHosts("slack", hosts, credentialed=hosts, headers=headers)

    # ------------------------------------------------------------------------------- lifecycle

    def _auth_test(self) -> asyncio.Future[AsyncSlackResponse]:
        """The one auth.test call every caller shares; made again only after a failure."""
        auth = self._auth
        if auth is None or (auth.done() and (auth.cancelled() or auth.exception() is not None)):
            auth = self._auth = asyncio.ensure_future(self.client.auth_test())
        return auth

    async def _authorize(self) -> AuthorizeResult:
        auth = await asyncio.shield(self._auth_test())  # one caller giving up must not cancel it for all
        return AuthorizeResult.from_auth_test_response(auth_test_response=auth, bot_token=self.client.token)

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        if self._pane is not None:
            await self._pane.load()
        if self.client.session is None or self.client.session.closed:
            # One pool for every Web API call: without it slack_sdk opens a new aiohttp session, so a
            # new connection (and TLS handshake), per call. Bolt's per-request clients (the pane's
            # greeting, prompts, title) copy the session of Bolt's own client: it gets the pool too.
            self.client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.client.timeout))
            self._app.client.session = self.client.session
        try:
            auth = await asyncio.shield(self._auth_test())
        except SlackApiError as exc:
            raise PlatformStartError(
                f"platforms.slack.bot_token: Slack refused it ({_slack_error(exc)}). Use the Bot User OAuth "
                "Token (xoxb-...) from the app's OAuth & Permissions page, and install the app to the "
                "workspace") from None
        except _NETWORK_ERRORS as exc:
            raise PlatformStartError(f"platforms.slack.api_url: cannot reach Slack at {self._settings.api_url} "
                                     f"({type(exc).__name__})") from None
        self._bot = BotIdentity(str(auth.get("user_id") or ""), str(auth.get("bot_id") or ""))
        self._bot_name = str(auth.get("user") or "")
        self._team = str(auth.get("team_id") or "")
        self._customize = CUSTOMIZE_SCOPE in scopes_of(auth.headers)
        if self._app_token:
            await self._connect_socket()
        log.info("slack: connected as %s (%s) in team %s, %s mode", self._bot_name, self._bot.user_id,
                 self._team, self.mode)

    async def _connect_socket(self) -> None:
        handler = AsyncSocketModeHandler(self._app, self._app_token, web_client=self.client,
                                         logger=logging.getLogger(f"{__name__}.socket"))
        self._socket = handler
        try:
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
        except SlackApiError as exc:
            await self._drop_socket()
            raise PlatformStartError(
                f"platforms.slack.app_token: Slack refused it ({_slack_error(exc)}). Use an app-level token "
                "(xapp-...) with the connections:write scope, and turn Socket Mode on for the app") from None
        except _NETWORK_ERRORS as exc:
            await self._drop_socket()
            raise PlatformStartError(f"platforms.slack: cannot open a Socket Mode connection "
                                     f"({type(exc).__name__})") from None
        # The SDK's connect() retries forever; give it a bounded time to come up at start.
        connecting = asyncio.ensure_future(_connect(handler))
        done, _ = await asyncio.wait({connecting}, timeout=CONNECT_TIMEOUT_S)
        if not done or not self._socket_connected():
            connecting.cancel()
            await self._drop_socket()
            raise PlatformStartError("platforms.slack: the Socket Mode websocket did not connect within "
                                     f"{CONNECT_TIMEOUT_S:.0f} s")

    def _socket_connected(self) -> bool:
        session = self._socket.client.current_session if self._socket is not None else None
        return session is not None and not session.closed

    async def _drop_socket(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await _close(socket)

    async def stop(self) -> None:
        self._inbox = None
        await self._drop_socket()
        self._names.close()
        if self.client.session is not None:
            await self.client.session.close()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/slack/events", self._http_events)] if self._http_enabled else []

    def status(self) -> dict[str, Any]:
        connected = self._bot is not None and (self.mode == "http" or self._socket_connected())
        return {"ok": connected, "mode": self.mode, "bot_user": self._bot.user_id if self._bot else None,
                "bot_name": self._bot_name or None, "team": self._team or None,
                "http_events": self._http_enabled}

    # ------------------------------------------------------------------------------- inbound

    async def _http_events(self, request: web.Request) -> web.Response:
        """Verified and checked here, then Slack → Bolt → Slack (url_verification, event routing)."""
        body = await request.read()  # over server.max_body_bytes: aiohttp answers 413
        if self._verifier is None or not intake.signed(self._verifier, body, request.headers):
            return web.json_response({"error": "invalid request signature"}, status=401)
        try:
            checked = intake.check(body, request.content_type)
        except BadBody as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if checked.ignored:
            return web.json_response({"ignored": checked.ignored})
        bolt_request = AsyncBoltRequest(body=checked.text, query=request.query_string,
                                        headers=request.headers)  # type: ignore[arg-type]  # a multidict
        return await to_aiohttp_response(await self._app.async_dispatch(bolt_request))

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> BoltResponse:
        """A listener failed: while stopping, ``503`` so Slack delivers the event again later."""
        if isinstance(error, Stopping):
            return BoltResponse(status=503, body="stopping; deliver again later")
        event_id = body.get("event_id") if isinstance(body, dict) else None
        log.error("slack: handling event %s failed: %s", excerpt(event_id), type(error).__name__, exc_info=error)
        return BoltResponse(status=500, body="")

    async def _on_message(self, body: dict[str, Any], context: AsyncBoltContext) -> None:
        known = self._bot or BotIdentity("")
        bot = BotIdentity(context.bot_user_id or known.user_id, context.bot_id or known.bot_id)
        event = body.get("event") or {}
        ids = user_ids_to_resolve(event, bot)
        names = await self._names.resolve(ids) if ids else {}  # concurrently with the channel's other events
        msg = translate(body, bot, names) or translate_change(body, bot, names)
        if msg is None:
            return
        place = context.get(ARRIVAL)
        if isinstance(place, Place):  # stored after what arrived before it in the channel, however slow that was
            await place.turn()
        if self._pane is not None:
            msg = self._pane.with_context(msg)
        inbox = self._inbox
        if inbox is None:  # not started, or stopping: fail, so Slack delivers it again later
            raise Stopping("slack: event received while the bridge is not running")
        await inbox(msg)

    async def _on_other(self) -> None:
        return None

    def accept_ratings(self, sink: RatingSink) -> None:
        self._ratings = sink

    async def _on_rating(self, ack: Any, body: dict[str, Any]) -> None:
        """A 👍/👎 click: acknowledged at once (Slack shows the choice), then recorded."""
        await ack()
        rating = rating_of(body)
        if rating is not None and self._ratings is not None:
            await self._ratings(rating)

    # ------------------------------------------------------------------------------- outbound

    async def send(self, reply: Outgoing, snapshots: AsyncIterator[str]) -> None:
        """A placeholder at once, edited in place as the reply grows; more messages past the limit.

        Messages an earlier attempt posted are edited instead (see :mod:`.delivery`). Raises
        (SlackApiError) only when Slack refused past ``reply_deadline_s``: the core marks it failed.
        """
        deadline_s = self._settings.reply_deadline_s
        native = None
        if self._settings.streaming == "native" and reply.thread.workspace not in self._no_streams:
            if reply.recovering:  # an interrupted stream is finished before it is edited
                await stop_leftovers(self.client, reply, self._bot or BotIdentity(""), deadline_s)
            native = native_for(self.client, reply, team=self._team, deadline_s=deadline_s, whole=not self._streamed,
                                refused=lambda error: self._streams_refused(reply.thread.workspace, error))
        async with self._pane.thinking(reply) if self._pane is not None else contextlib.nullcontext():
            calls = await deliver(self.client, reply, snapshots, bot=self._bot or BotIdentity(""), limit=self._limit,
                                  interval=self._settings.edit_interval_s, deadline_s=deadline_s, native=native,
                                  final_blocks=buttons(reply.key) if self._settings.feedback and reply.rateable
                                  else None)
        log.debug("slack: %s delivered with %d write call(s)", reply.key, calls)

    def _streams_refused(self, workspace: str, error: str) -> None:
        if workspace not in self._no_streams:
            log.info("slack: workspace %s refused native streaming (%s); answering with edits there",
                     workspace or "?", excerpt(error))
        self._no_streams.add(workspace)

    async def progress(self, reply: Outgoing, activity: str) -> None:
        """A tool started: the thread's status line says so at once (``assistant.threads.setStatus``,
        chat:write); Slack clears it when the answer is posted, or after two minutes."""
        thread = reply.thread
        await self.client.assistant_threads_setStatus(channel_id=thread.channel, thread_ts=thread.thread,
                                                      status=f"is using {activity[:60]}…")

    async def relay(self, copy: Copy, out: Outgoing) -> None:
        """A relayed copy: under its author's name and icon with ``chat:write.customize``, else headed
        with the name (see :mod:`.relay`)."""
        await post_copy(self.client, copy, out, bot=self._bot or BotIdentity(""), customize=self._customize,
                        limit=self._limit)

    async def relay_change(self, copy: Copy, out: Outgoing, *, deleted: bool) -> None:
        """A relayed message was edited or deleted: its copy here follows."""
        await change_copy(self.client, copy, out, deleted=deleted, customize=self._customize, limit=self._limit)

    # ------------------------------------------------------------------------------- diagnosis

    async def diagnose(self) -> list[Finding]:
        """``bridge check --online``: auth.test and its scopes, the app token (see diagnose.py)."""
        from platforms.slack.diagnose import diagnose_slack

        return await diagnose_slack(self._settings, self.client)

    async def check_places(self, places: list[tuple[int, str]]) -> list[Finding]:
        """``bridge check --online``: each channel a rule names, member and allowed to post? (places.py)."""
        from platforms.slack.places import check_slack_places

        return await check_slack_places(self.client, places)


def create(settings: Any, config: Config) -> SlackPlatform:
    """The ``bridge.platforms`` entry point."""
    if not isinstance(settings, SlackConfig):
        raise TypeError("platforms.slack: expected the slack settings block")
    return SlackPlatform(settings, config)
