"""GitHub issues and pull requests as conversations: webhooks in, issue comments out (githubkit).

Authentication is a personal access token, or a GitHub App (app id + private key), in which case
each repository's installation token is used — the installation comes from the webhook, or from
``GET /repos/{owner}/{repo}/installation`` after a restart. Rate limits and retries are githubkit's
(``auto_retry``: secondary rate limits after ``Retry-After``, the primary one at
``x-ratelimit-reset``, 5xx with backoff); exactly-once posting and 👀 are :mod:`.delivery`'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RequestFailed
from githubkit.retry import RETRY_DEFAULT
from httpx_aiohttp import AiohttpTransport

from bridge.attachments.hosts import FileHosts, api_origin
from bridge.config import Config, GitHubConfig
from bridge.diagnosis import Finding
from bridge.platform import Inbox, PlatformStartError, Stopping
from bridge.policy.access import AccessUnknown
from bridge.relay.copies import Copy
from bridge.types import Outgoing, RatingSink, ThreadRef
from bridge.untrusted.jsonbody import BadBody
from platforms.arrival import Arrivals
from platforms.github import intake, labels
from platforms.github.delivery import MARKER_ROOM, Activity, Issue, deliver, marker
from platforms.github.discussions import answer_command, deliver_discussion, is_answer_command
from platforms.github.feedback import read_ratings
from platforms.github.files import attachment_links
from platforms.github.formatting import neutralise_mentions
from platforms.github.handlers import installation_id, translate
from platforms.github.redeliver import RedeliveryTask, start_redelivery, stop_redelivery
from platforms.github.reviews import deliver_review

__all__ = ["MARKER_ROOM", "GitHubPlatform", "GitHubStartError", "create", "marker"]

log = logging.getLogger(__name__)


class _SharedTransport(AiohttpTransport):
    """One connection pool for every githubkit call, on aiohttp.

    githubkit builds a fresh httpx client per request unless used as a context manager (a
    ContextVar, which our background tasks do not share), and each fresh client loads the CA
    bundle again (~20 ms of CPU) and opens a new TLS connection. Handing it this transport keeps
    connections alive; its ``aclose`` is a no-op because the clients close their transport after
    every request — the platform closes it for real at stop. aiohttp's pool (httpx-aiohttp) costs
    far less CPU per request than httpcore's under load (python -m bench.bench_load).
    """

    async def aclose(self) -> None:
        return None

    async def close_for_real(self) -> None:
        await super().aclose()


class GitHubStartError(PlatformStartError):
    """Raised at start when GitHub refuses the credentials; names the key to fix, never the secret."""


def _private_key(value: str, base_dir: Path) -> str:
    """PEM text, or a path to a .pem file (relative to the config file)."""
    if "-----BEGIN" in value:
        return value
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise GitHubStartError(f"platforms.github.private_key: cannot read {path}; give the PEM text or a "
                               "readable .pem path") from None


class GitHubPlatform:
    name = "github"

    def __init__(self, settings: GitHubConfig, config: Config) -> None:
        self._settings = settings
        # Where the token may go (asked for every comment: its links are checked against it).
        self._own_hosts = ("https://github.com",
                           *api_origin(settings.api_url, GitHubConfig.model_fields["api_url"].default))
        self._base_dir = config.base_dir
        self._config = config
        self._labels = labels.trigger_labels([r.trigger for r in config.channels if r.platform == "github"])
        assert settings.webhook_secret is not None  # enforced by GitHubConfig
        self._secret = settings.webhook_secret.get_secret_value()
        self._inbox: Inbox | None = None
        self._app: GitHub[Any] | None = None
        self._client: GitHub[Any] | None = None  # token auth: one client for everything
        self._installations: dict[str, int] = {}  # "owner/repo" -> installation id (App auth)
        self._activity: dict[str, Activity] = {}   # reply key -> what the answer is busy with (progress)
        self.bot_login = ""
        self._ok = False
        self._redelivery: RedeliveryTask | None = None  # App auth: failed deliveries redelivered at start
        self._arrivals = Arrivals()  # per issue: stored in the order the webhooks arrived
        # Enough kept-alive connections for a busy bridge: httpx's default keeps 20 and churns past that.
        self._transport = _SharedTransport(limits=httpx.Limits(max_connections=200, max_keepalive_connections=200))
        # githubkit's default cache (installation tokens among it) is one per process: this adapter's own,
        # so that two bridges in one process (tests, embedders) never use each other's App tokens.
        self._cache = MemCacheStrategy()
        self._ratings: RatingSink | None = None
        self._reading: set[asyncio.Task[None]] = set()  # reactions read in the background (feedback)

    # ------------------------------------------------------------------------ lifecycle

    def _github(self, auth: Any) -> GitHub[Any]:
        # RETRY_DEFAULT is githubkit's default, named so that turning it off shows in review.
        return GitHub(auth, base_url=self._settings.api_url, http_cache=False, user_agent="bridge-bot",
                      async_transport=self._transport, auto_retry=RETRY_DEFAULT, cache_strategy=self._cache)

    async def start(self, inbox: Inbox) -> None:
        s = self._settings
        try:
            if s.token is not None:
                self._client = self._github(TokenAuthStrategy(s.token.get_secret_value()))
                user = (await self._client.rest.users.async_get_authenticated()).parsed_data
                self.bot_login = user.login
            else:
                assert s.app_id is not None
                assert s.private_key is not None
                key = _private_key(s.private_key.get_secret_value(), self._base_dir)
                self._app = self._github(AppAuthStrategy(s.app_id, key))
                app = (await self._app.rest.apps.async_get_authenticated()).parsed_data
                if app is None or not app.slug:
                    raise GitHubStartError("platforms.github.app_id: GitHub returned no app for these credentials")
                self.bot_login = f"{app.slug}[bot]"
        except RequestFailed as exc:
            hint = "token" if s.token is not None else "app_id / private_key"
            raise GitHubStartError(f"GitHub refused to sign in at {s.api_url} (HTTP {exc.response.status_code}): "
                                   f"check platforms.github.{hint}") from None
        except GitHubException as exc:
            raise GitHubStartError(f"GitHub at {s.api_url} could not be reached ({type(exc).__name__}): check "
                                   "platforms.github.api_url and the network") from None
        self._inbox = inbox
        self._ok = True
        log.info("github: signed in as %s", self.bot_login)
        self._redelivery = start_redelivery(self._app, s.redeliver_hours)  # in the background, never failing start

    async def stop(self) -> None:
        self._inbox = None
        self._ok = False
        for task in list(self._reading):
            task.cancel()
        await asyncio.gather(*self._reading, return_exceptions=True)
        await stop_redelivery(self._redelivery)
        await self._transport.close_for_real()

    def status(self) -> dict[str, Any]:
        return {"ok": self._ok, "login": self.bot_login, "auth": "token" if self._client else "app"}

    # ------------------------------------------------------------------------ inbound

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/github/webhook", self._webhook)]

    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.read()  # over server.max_body_bytes: aiohttp answers 413
        # Verified before anything is parsed: a forged request learns nothing and changes nothing.
        if not intake.signed(self._secret, body, request.headers.get(intake.SIGNATURE_HEADER, "")):
            return web.json_response({"error": "bad or missing X-Hub-Signature-256"}, status=401)
        event = request.headers.get("X-GitHub-Event", "")
        if event == "ping":
            return web.json_response({"ok": True, "pong": True})
        try:
            payload = intake.payload(body, request.content_type)
        except BadBody as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if self._inbox is None:
            return web.json_response({"error": "stopping"}, status=503)
        result = translate(event, payload, self.bot_login, self._labels)
        if isinstance(result, str):
            return web.json_response({"ignored": result}, status=202)
        if is_answer_command(result):
            said = await answer_command(result, self._config, self._client_for, self.bot_login)
            return web.json_response(said, status=202)
        # Taken before anything can wait: a comment whose team check is slow is still stored before
        # the next comment on the same issue (platforms/arrival.py).
        place = self._arrivals.place(result.thread.key)
        inst = installation_id(payload)
        if inst is not None:
            self._installations[result.thread.channel] = inst
        links = attachment_links(result.text, self.file_hosts())
        if links:
            result = dataclasses.replace(result, attachments=links)
        # Stored before we answer GitHub; the reply is produced in the background.
        try:
            async with place:
                if labels.is_labeling(event, payload):
                    result = await labels.with_comments(result, self._client_for, self._config.llm.context_tokens)
                accepted = await self._inbox(result)
        except Stopping:
            return web.json_response({"error": "shutting down; redeliver later"}, status=503)
        except AccessUnknown:  # not stored, nobody refused: a redelivery decides
            return web.json_response({"error": "could not check team membership; redeliver later"}, status=503)
        if result.change and not accepted:  # not a relayed comment: nothing to do, as before
            return web.json_response({"ignored": f"{event}.{result.change} is not a new message"}, status=202)
        if self._settings.feedback and self._ratings is not None:
            self._read_ratings_later(result.thread)
        return web.json_response({"accepted": accepted}, status=202)

    def file_hosts(self, thread: ThreadRef | None = None) -> FileHosts:
        """github.com and ``*.githubusercontent.com`` (or a GitHub Enterprise ``api_url``'s origin); the
        token goes to github.com and that origin only (private repositories' files need it), never to
        the storage hosts GitHub redirects to."""
        own = self._own_hosts
        repo = thread.channel if thread is not None else ""

        async def headers() -> dict[str, str]:
            token = await self._token_for(repo)
            return {"Authorization": f"token {token}"} if token else {}

        return FileHosts("github", (*own, "https://*.githubusercontent.com"), credentialed=own, headers=headers)

    async def _token_for(self, repo: str) -> str:
        if self._settings.token is not None:
            return self._settings.token.get_secret_value()
        if self._app is None or not repo:
            return ""
        inst = self._installations.get(repo) or self._settings.installation_id
        if inst is None:
            return ""
        created = await self._app.rest.apps.async_create_installation_access_token(inst)
        return str(created.parsed_data.token)

    def accept_ratings(self, sink: RatingSink) -> None:
        self._ratings = sink

    def _read_ratings_later(self, thread: ThreadRef) -> None:
        """The issue is seen again: its reactions to the bot's answers, read without holding the webhook."""
        async def read() -> None:
            sink = self._ratings
            if sink is None:
                return
            owner, repo = thread.channel.split("/", 1)
            try:
                client = await self._client_for(thread.channel)
                await read_ratings(client, Issue(owner, repo, int(thread.thread)), login=self.bot_login, sink=sink)
            except (GitHubException, ValueError) as exc:
                log.info("github: could not read reactions in %s (%s)", thread.key, type(exc).__name__)

        task = asyncio.create_task(read())
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    # ------------------------------------------------------------------------ outbound

    async def _client_for(self, repo: str) -> GitHub[Any]:
        if self._client is not None:
            return self._client
        assert self._app is not None
        inst = self._installations.get(repo) or self._settings.installation_id
        if inst is None:
            owner, name = repo.split("/", 1)
            installation = (await self._app.rest.apps.async_get_repo_installation(owner, name)).parsed_data
            inst = self._installations[repo] = installation.id
        auth = self._app.auth
        assert isinstance(auth, AppAuthStrategy)
        return self._github(auth.as_installation(inst))

    async def send(self, reply: Outgoing, snapshots: AsyncIterator[str]) -> None:
        """Post the finished text as one comment per part, each part once (see :mod:`.delivery`)."""
        thread = reply.thread
        owner, repo = thread.channel.split("/", 1)
        activity = self._activity.setdefault(reply.key, Activity())
        try:
            client = await self._client_for(thread.channel)
            limit = self._settings.max_reply_chars - MARKER_ROOM
            kind = thread.thread.partition("/")[0]
            if kind == "discussions":
                await deliver_discussion(client, reply, snapshots, login=self.bot_login, limit=limit)
            elif kind == "reviews":
                await deliver_review(client, reply, snapshots, login=self.bot_login, limit=limit)
            else:
                await deliver(client, Issue(owner, repo, int(thread.thread)), reply, snapshots, login=self.bot_login,
                              limit=limit, activity=activity)
        finally:
            self._activity.pop(reply.key, None)

    async def progress(self, reply: Outgoing, activity: str) -> None:
        """A tool started: 👀 goes up at once (not after the usual wait), and the tool is listed at the end."""
        work = self._activity.setdefault(reply.key, Activity())
        work.tools.append(activity)
        work.busy.set()

    async def relay_change(self, copy: Copy, out: Outgoing, *, deleted: bool) -> None:
        """A relayed message was edited or deleted: its comment here follows (its marker kept)."""
        owner, repo = out.thread.channel.split("/", 1)
        client = await self._client_for(out.thread.channel)
        limit = self._settings.max_reply_chars - MARKER_ROOM
        text = copy.text if len(copy.text) <= limit else copy.text[:limit - 1] + "…"
        for comment_id in (int(i) for i in out.posted):
            try:
                if deleted:
                    await client.rest.issues.async_delete_comment(owner, repo, comment_id)
                else:
                    await client.rest.issues.async_update_comment(
                        owner, repo, comment_id, body=neutralise_mentions(text) + marker(out.key, 0))
            except RequestFailed as exc:
                if exc.response.status_code != 404:  # already gone
                    raise

    # ------------------------------------------------------------------------ access

    async def member_of(self, login: str, team: str) -> bool:
        """Whether ``login`` is an active member of ``org/team-slug`` (``allow: teams``; the core caches it).

        Needs ``read:org`` (classic token) or the organisation's Members permission (fine-grained
        token, GitHub App). GitHub answers 404 for "not a member" and for "cannot see the team".
        """
        org, slug = team.split("/", 1)
        client = await self._client_for_org(org)
        try:
            membership = (await client.rest.teams.async_get_membership_for_user_in_org(org, slug, login)).parsed_data
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return False
            raise
        return membership.state == "active"

    async def user_id(self, login: str) -> str | None:
        """The id of the account holding ``login`` now, None when nobody does: ``allow:``/``deny:``
        logins are matched by id (the core caches it), so a rename changes nothing."""
        if self._client is not None:
            client = self._client
        elif self._installations:  # any installation may read public profiles
            client = await self._client_for(next(iter(self._installations)))
        else:
            raise LookupError("no GitHub App installation known yet")
        try:
            user = (await client.rest.users.async_get_by_username(login)).parsed_data
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        return str(user.id)

    async def _client_for_org(self, org: str) -> GitHub[Any]:
        if self._client is not None:
            return self._client
        for repo in self._installations:  # an installation already used for one of the org's repositories
            if repo.split("/", 1)[0].lower() == org.lower():
                return await self._client_for(repo)
        assert self._app is not None
        inst = self._settings.installation_id
        if inst is None:
            inst = (await self._app.rest.apps.async_get_org_installation(org)).parsed_data.id
        auth = self._app.auth
        assert isinstance(auth, AppAuthStrategy)
        return self._github(auth.as_installation(inst))

    # ------------------------------------------------------------------------ diagnosis

    async def diagnose(self) -> list[Finding]:
        """``bridge check --online``: identity and token scopes or app permissions (see diagnose.py)."""
        from platforms.github.diagnose import diagnose_github

        kinds = frozenset(r.kind or "issue" for r in self._config.channels if r.platform == "github")
        found = await diagnose_github(self._settings, self._base_dir, self._github, kinds)
        if self._settings.feedback:
            found.append(Finding("ok", "github: feedback on: 👍/👎 reactions on the bot's answers are read when the "
                                       "issue is next seen (reading issues is enough)"))
        return found

    async def check_places(self, places: list[tuple[int, str]]) -> list[Finding]:
        """``bridge check --online``: each repository a rule names, seen and writable? (see places.py)."""
        from platforms.github.places import check_github_places

        s = self._settings
        if s.token is not None:
            return await check_github_places(self._github(TokenAuthStrategy(s.token.get_secret_value())), places,
                                             app=False)
        assert s.app_id is not None
        assert s.private_key is not None
        key = _private_key(s.private_key.get_secret_value(), self._base_dir)
        return await check_github_places(self._github(AppAuthStrategy(s.app_id, key)), places, app=True)


def create(settings: GitHubConfig, config: Config) -> GitHubPlatform:
    return GitHubPlatform(settings, config)
