"""A loopback fake of GitHub's REST API, answering with complete objects githubkit accepts.

Objects are built from the recorded webhook payloads (their ``sender`` and ``comment`` are complete
REST objects). Records every comment posted and every Authorization header seen. Like GitHub it
lists an issue's comments oldest first in pages (``per_page``, ``page``, a ``Link`` header), keeps
reactions (creating one that exists answers 200 with it), and can be scripted to refuse a comment
with a secondary rate limit (403/429 + ``Retry-After``) or a server error.

Discussions live behind ``POST /graphql`` as on GitHub (``addDiscussionComment``,
``markDiscussionCommentAsAnswer``, ``node(id:)`` lookups of a comment or a discussion's comments),
answering failures in GraphQL's shape: HTTP 200 with ``errors`` (``type``, ``path``, ``message``).
Pull-request review comments are kept too: replies in a thread (``POST .../comments/{id}/replies``)
and the pull request's listing.

It also keeps a GitHub App webhook's Recent Deliveries (``GET /app/hook/deliveries``: newest first,
cursor pages, JWT only) and redelivers one when asked (``POST .../attempts`` → 202): like GitHub, it
then POSTs the stored payload, signed, to the webhook URL (:meth:`FakeGitHub.deliver_webhooks_to`)
and records that attempt as a new delivery with the same ``guid``.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import hmac
import json
import re
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.files import FileShelf
from tests.fakes.loopback import serve

_HIDDEN = re.compile(r"\n\n<!-- bridge:reply [^>]*-->$")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "github"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


@dataclass
class Comment:
    repo: str
    number: int
    body: str
    auth: str
    id: int = 0
    login: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when it was posted (benchmarks)


@dataclass
class DiscussionComment:
    node_id: str
    discussion: str  # the discussion's node id
    body: str
    login: str       # as GraphQL names the author: an App's bot is "slug", without "[bot]"
    reply_to: str | None = None


@dataclass
class Discussion:
    node_id: str
    repo: str
    number: int
    answerable: bool = True  # a Q&A category
    answer: str | None = None


@dataclass
class ReviewComment:
    repo: str
    pull: int
    id: int
    body: str
    login: str
    in_reply_to: int | None = None


@dataclass
class Reaction:
    target: str  # "comment:<id>", "review_comment:<id>" or "issue:<owner/repo>#<number>"
    id: int
    content: str
    login: str


@dataclass
class ReactionEvent:
    action: str  # "add" or "remove"
    target: str
    content: str
    at: float  # time.monotonic()


@dataclass
class HookDelivery:
    """One entry of an App webhook's Recent Deliveries, with the payload it carried (to send it again)."""

    id: int
    guid: str
    event: str
    payload: dict[str, Any]
    status_code: int  # what the webhook answered; 0: GitHub could not connect
    delivered_at: dt.datetime
    redelivery: bool = False

    def json(self) -> dict[str, Any]:
        """As ``GET /app/hook/deliveries`` lists it (GitHub's field names)."""
        ok = 200 <= self.status_code < 400
        status = "OK" if ok else ("failed to connect" if self.status_code == 0
                                  else f"Invalid HTTP Response: {self.status_code}")
        return {"id": self.id, "guid": self.guid, "delivered_at": self.delivered_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "redelivery": self.redelivery, "duration": 0.27, "status": status, "status_code": self.status_code,
                "event": self.event, "action": self.payload.get("action"),
                "installation_id": (self.payload.get("installation") or {}).get("id"),
                "repository_id": (self.payload.get("repository") or {}).get("id"), "throttled_at": None}


def user_id(login: str) -> int:
    """The fake's account id for a login: stable, and different for every login (case-insensitive)."""
    return 10_000_000 + zlib.crc32(login.lower().encode()) % 90_000_000


def _user(login: str, type_: str = "User") -> dict[str, Any]:
    base = copy.deepcopy(fixture("issue_comment.created.2")["sender"])
    base.update(login=login, type=type_, name=login, company=None, blog="", location=None, email=None,
                hireable=None, bio=None, public_repos=0, public_gists=0, followers=0, following=0,
                created_at="2020-01-01T00:00:00Z", updated_at="2020-01-01T00:00:00Z")
    return base


class FakeGitHub:
    def __init__(self, login: str = "bridge-bot", app_slug: str = "bridge-app") -> None:
        self.login = login
        self.app_slug = app_slug
        self.comments: list[Comment] = []
        self.auth_seen: list[str] = []
        self.token_requests: list[int] = []
        self.fail_comments: list[int] = []  # HTTP statuses to answer the next comment posts with
        self.teams: dict[str, set[str]] = {}  # "org/team-slug" -> member logins
        self.edits: list[int] = []  # comment ids edited (PATCH)
        self.team_checks: list[tuple[str, str]] = []  # (team, login) asked about
        self.logins: dict[str, str] = {}  # login (lower case) -> whose account id it is now; "": nobody's
        self.user_lookups: list[str] = []  # logins looked up with GET /users/{login}
        self.team_check_errors: list[int] = []  # HTTP statuses to answer the next team checks with
        self.hold_team_checks: dict[str, asyncio.Event] = {}  # login -> its team checks answer once set
        self.scopes: str | None = "repo, read:org"  # X-OAuth-Scopes (classic tokens); None: fine-grained
        self.limit_comments: list[int] = []  # Retry-After seconds: the next comment posts get 429
        self.comment_attempts: list[float] = []  # time.monotonic() of every comment POST, refused or not
        self.reactions: list[Reaction] = []
        self.edits: list[tuple[int, str]] = []  # (comment id, the body it had) of every comment edited
        self.reaction_log: list[ReactionEvent] = []
        self.list_requests: list[str] = []  # "owner/repo#number page=N" of every comment listing
        self.max_per_page = 100  # GitHub's cap; tests lower it to see pagination with few comments or deliveries
        self.on_comment: Callable[[Comment], None] | None = None  # runs after a comment is kept, before the answer
        self.hook_deliveries: list[HookDelivery] = []  # the App webhook's Recent Deliveries (add_delivery)
        self.delivery_listings: list[str] = []  # the cursor of every deliveries page asked for ("" = the first)
        self.deliveries_status: int | None = None  # answer every deliveries request with this error (403, 404)
        self.redelivery_requests: list[int] = []  # delivery ids asked to be redelivered
        # GET /repos/OWNER/REPO (`bridge check --online`): full name -> its fields; names match any case
        self.repos: dict[str, dict[str, Any]] = {}
        self.discussions: dict[str, Discussion] = {}  # node id -> discussion (add_discussion)
        self.discussion_comments: list[DiscussionComment] = []
        self.graphql_operations: list[str] = []  # the first word after "mutation"/"query" field: what was asked
        self.on_discussion_comment: Callable[[DiscussionComment], None] | None = None  # after keeping, before answering
        self.review_comments: list[ReviewComment] = []
        self.app_permissions: dict[str, str] = {"issues": "write", "metadata": "read"}  # GET /app
        self.app_events: list[str] = ["issues", "issue_comment"]
        self.url = ""
        self._next_id = 1000
        self._runner: web.AppRunner | None = None
        self._webhook: tuple[str, str] | None = None  # (URL, secret) redeliveries are POSTed to
        self._webhook_set = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        self.files = FileShelf()  # user-attachments; a test of a private repository sets files.auth
        self._attachment_ids = 1000

    async def start(self) -> FakeGitHub:
        app = web.Application()
        app.add_routes([
            web.get("/user", self._user),
            web.get("/users/{login}", self._user_by_login),
            web.get("/app", self._app),
            web.post("/app/installations/{id}/access_tokens", self._access_token),
            web.get("/repos/{owner}/{repo}/installation", self._repo_installation),
            web.get("/repos/{owner}/{repo}", self._repo),
            web.get("/repos/{owner}/{repo}/issues/{number}", self._issue),
            web.post("/repos/{owner}/{repo}/issues/{number}/comments", self._comment),
            web.patch("/repos/{owner}/{repo}/issues/comments/{id}", self._edit_comment),
            web.delete("/repos/{owner}/{repo}/issues/comments/{id}", self._delete_comment),
            web.get("/orgs/{org}/teams/{team}/memberships/{login}", self._team_membership),
            web.get("/repos/{owner}/{repo}/issues/{number}/comments", self._list_comments),
            web.get("/repos/{owner}/{repo}/issues/comments/{id}", self._get_comment),
            web.patch("/repos/{owner}/{repo}/issues/comments/{id}", self._edit_comment),
            web.delete("/repos/{owner}/{repo}/issues/comments/{id}", self._delete_comment),
            web.post("/repos/{owner}/{repo}/issues/comments/{id}/reactions", self._react),
            web.get("/repos/{owner}/{repo}/issues/comments/{id}/reactions", self._reactions),
            web.delete("/repos/{owner}/{repo}/issues/comments/{id}/reactions/{reaction}", self._unreact),
            web.post("/repos/{owner}/{repo}/issues/{number}/reactions", self._react),
            web.get("/repos/{owner}/{repo}/issues/{number}/reactions", self._reactions),
            web.delete("/repos/{owner}/{repo}/issues/{number}/reactions/{reaction}", self._unreact),
            web.post("/graphql", self._graphql),
            web.post("/repos/{owner}/{repo}/pulls/comments/{id}/reactions", self._react),
            web.get("/repos/{owner}/{repo}/pulls/comments/{id}/reactions", self._reactions),
            web.delete("/repos/{owner}/{repo}/pulls/comments/{id}/reactions/{reaction}", self._unreact),
            web.post("/repos/{owner}/{repo}/pulls/{number}/comments/{id}/replies", self._review_reply),
            web.get("/repos/{owner}/{repo}/pulls/{number}/comments", self._list_review_comments),
            web.get("/app/hook/deliveries", self._list_deliveries),
            web.post("/app/hook/deliveries/{id}/attempts", self._redeliver),
            web.get("/user-attachments/{tail:.*}", self.files.handle),
        ])
        self._runner, base_url = await serve(app)
        self.url = base_url
        return self

    def attachment(self, name: str, data: bytes, content_type: str, *, image: bool = False,
                   endless: bool = False) -> str:
        """Upload a file as the issue editor does; returns the link GitHub puts in the body."""
        self._attachment_ids += 1
        path = (f"/user-attachments/assets/{uuid.uuid4()}" if image
                else f"/user-attachments/files/{self._attachment_ids}/{name}")
        self.files.put(path, data, content_type, endless=endless)
        return f"{self.url}{path}"

    async def stop(self) -> None:
        for held in self.hold_team_checks.values():
            held.set()  # or the server waits for the held requests
        for task in self._sending:
            task.cancel()
        if self._runner:
            await self._runner.cleanup()

    def comments_on(self, repo: str, number: int) -> list[str]:
        """What a reader sees: GitHub renders HTML comments (the bridge's reply markers) as nothing."""
        return [_HIDDEN.sub("", c.body) for c in self.comments if c.repo == repo and c.number == number]

    def add_comment(self, repo: str, number: int, body: str, *, login: str = "Codertocat",
                    user_type: str = "User") -> Comment:
        """A comment someone else wrote (it lists like the bot's own)."""
        return self._store_comment(repo, number, body, "", login, user_type)

    def add_delivery(self, event: str, payload: dict[str, Any], *, status_code: int, ago: dt.timedelta,
                     guid: str | None = None, redelivery: bool = False) -> HookDelivery:
        """A delivery GitHub made ``ago`` (the same ``guid`` as an earlier one: an attempt at the same event)."""
        self._next_id += 1
        delivery = HookDelivery(self._next_id, guid or str(uuid.uuid4()), event, payload, status_code,
                                dt.datetime.now(dt.UTC) - ago, redelivery)
        self.hook_deliveries.append(delivery)
        return delivery

    def deliver_webhooks_to(self, url: str, secret: str) -> None:
        """Where redeliveries go (the bridge's base URL); the ones asked for before wait until it is set."""
        self._webhook = (url.rstrip("/") + "/github/webhook", secret)
        self._webhook_set.set()

    def reactions_on(self, target: str) -> list[str]:
        return [r.content for r in self.reactions if r.target == target]

    async def _user(self, request: web.Request) -> web.Response:
        self.auth_seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization", "") in ("", "token bad-token", "Bearer bad-token"):
            return web.json_response({"message": "Bad credentials"}, status=401)
        headers = {"X-OAuth-Scopes": self.scopes} if self.scopes is not None else {}
        return web.json_response(_user(self.login), headers=headers)

    async def _user_by_login(self, request: web.Request) -> web.Response:
        """``GET /users/{username}``: every login exists, under its :func:`user_id`, unless renamed away."""
        login = request.match_info["login"]
        self.user_lookups.append(login)
        holder = self.logins.get(login.lower(), login)
        if not holder:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({**_user(login), "id": user_id(holder)})

    async def _app(self, request: web.Request) -> web.Response:
        self.auth_seen.append(request.headers.get("Authorization", ""))
        now = "2020-01-01T00:00:00Z"
        return web.json_response({
            "id": 29310, "slug": self.app_slug, "node_id": "MDM6QXBwMjkzMTA=", "owner": _user("octo-org"),
            "name": "Bridge App", "description": "", "external_url": "https://example.org",
            "html_url": f"https://github.com/apps/{self.app_slug}", "created_at": now, "updated_at": now,
            "permissions": self.app_permissions, "events": self.app_events,
        })

    async def _access_token(self, request: web.Request) -> web.Response:
        self.auth_seen.append(request.headers.get("Authorization", ""))
        inst = int(request.match_info["id"])
        self.token_requests.append(inst)
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return web.json_response({"token": f"ghs_installation{inst}", "expires_at": expires,
                                  "permissions": {"issues": "write"}, "repository_selection": "all"},
                                 status=201)

    def add_repo(self, full_name: str, *, push: bool = True, private: bool = True,
                 issues: tuple[int, ...] = ()) -> None:
        self.repos[full_name.lower()] = {"full_name": full_name, "private": private, "archived": False,
                                         "has_issues": True, "issue_numbers": list(issues),
                                         "permissions": {"admin": False, "push": push, "pull": True}}

    def _find_repo(self, request: web.Request) -> dict[str, Any] | None:
        return self.repos.get(f"{request.match_info['owner']}/{request.match_info['repo']}".lower())

    async def _repo(self, request: web.Request) -> web.Response:
        repo = self._find_repo(request)
        if repo is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({k: v for k, v in repo.items() if k != "issue_numbers"})

    async def _issue(self, request: web.Request) -> web.Response:
        repo = self._find_repo(request)
        if repo is None or int(request.match_info["number"]) not in repo["issue_numbers"]:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({"number": int(request.match_info["number"]), "state": "open"})

    async def _repo_installation(self, request: web.Request) -> web.Response:
        inst = copy.deepcopy(fixture("installation.created.1")["installation"])
        inst.update(app_slug=self.app_slug, created_at="2020-01-01T00:00:00Z", updated_at="2020-01-01T00:00:00Z")
        return web.json_response(inst)

    def _store_comment(self, repo: str, number: int, body: str, auth: str, login: str,
                       user_type: str) -> Comment:
        self._next_id += 1
        payload = copy.deepcopy(fixture("issue_comment.created.2")["comment"])
        payload.update(id=self._next_id, body=body, user=_user(login, user_type),
                       url=f"{self.url}/repos/{repo}/issues/comments/{self._next_id}",
                       issue_url=f"{self.url}/repos/{repo}/issues/{number}")
        comment = Comment(repo, number, body, auth, self._next_id, login, payload)
        self.comments.append(comment)
        return comment

    def _find_comment(self, request: web.Request) -> Comment | None:
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        return next((c for c in self.comments if c.id == int(request.match_info["id"]) and c.repo == repo), None)

    async def _edit_comment(self, request: web.Request) -> web.Response:
        comment = self._find_comment(request)
        if comment is None:
            return web.json_response({"message": "Not Found"}, status=404)
        comment.body = (await request.json())["body"]
        comment.payload["body"] = comment.body
        self.edits.append(comment.id)
        return web.json_response(comment.payload)

    async def _delete_comment(self, request: web.Request) -> web.Response:
        comment = self._find_comment(request)
        if comment is None:
            return web.json_response({"message": "Not Found"}, status=404)
        self.comments.remove(comment)
        return web.Response(status=204)

    async def _comment(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        self.comment_attempts.append(time.monotonic())
        if self.limit_comments:  # a secondary rate limit, as GitHub answers it
            retry_after = self.limit_comments.pop(0)
            return web.json_response(
                {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                            "again.", "documentation_url": "https://docs.github.com/rest"},
                status=429, headers={"Retry-After": str(retry_after)})
        if self.fail_comments:
            status = self.fail_comments.pop(0)
            return web.json_response({"message": "Server Error"}, status=status)
        body = (await request.json())["body"]
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        comment = self._store_comment(repo, int(request.match_info["number"]), body, auth, self._login_for(auth),
                                      "Bot")
        if self.on_comment is not None:
            self.on_comment(comment)
        return web.json_response(comment.payload, status=201)

    def _find_comment(self, request: web.Request) -> Comment | None:
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        cid = int(request.match_info["id"])
        return next((c for c in self.comments if c.repo == repo and c.id == cid), None)

    async def _get_comment(self, request: web.Request) -> web.Response:
        found = self._find_comment(request)
        if found is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response(found.payload)

    async def _edit_comment(self, request: web.Request) -> web.Response:
        """``PATCH``: the new body replaces the old one (``edits`` keeps what was there before)."""
        found = self._find_comment(request)
        if found is None:
            return web.json_response({"message": "Not Found"}, status=404)
        self.edits.append((found.id, found.body))
        found.body = (await request.json())["body"]
        found.payload["body"] = found.body
        return web.json_response(found.payload)

    async def _delete_comment(self, request: web.Request) -> web.Response:
        found = self._find_comment(request)
        if found is None:
            return web.json_response({"message": "Not Found"}, status=404)
        self.comments.remove(found)
        return web.Response(status=204)

    async def _list_comments(self, request: web.Request) -> web.Response:
        """Oldest first, ``per_page`` (default 30, at most ``max_per_page``) per ``page``, with a Link header."""
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        number = int(request.match_info["number"])
        per_page = min(int(request.query.get("per_page", "30")), self.max_per_page)
        page = max(int(request.query.get("page", "1")), 1)
        self.list_requests.append(f"{repo}#{number} page={page}")
        on_issue = [c.payload for c in self.comments if c.repo == repo and c.number == number]
        last = max((len(on_issue) + per_page - 1) // per_page, 1)
        base = f"{self.url}/repos/{repo}/issues/{number}/comments?per_page={per_page}&page="
        links = []
        if page < last:
            links += [f'<{base}{page + 1}>; rel="next"', f'<{base}{last}>; rel="last"']
        if page > 1:
            links += [f'<{base}{page - 1}>; rel="prev"', f'<{base}1>; rel="first"']
        headers = {"Link": ", ".join(links)} if links else {}
        return web.json_response(on_issue[(page - 1) * per_page:page * per_page], headers=headers)

    def _login_for(self, auth: str) -> str:
        """Who the credentials are: an installation token acts as the app's bot account."""
        return f"{self.app_slug}[bot]" if "ghs_installation" in auth else self.login

    @staticmethod
    def _target(request: web.Request) -> str:
        info = request.match_info
        if "id" in info and "/pulls/comments/" in request.path:
            return f"review_comment:{info['id']}"
        if "id" in info:
            return f"comment:{info['id']}"
        return f"issue:{info['owner']}/{info['repo']}#{info['number']}"

    @staticmethod
    def _reaction_json(r: Reaction) -> dict[str, Any]:
        return {"id": r.id, "node_id": f"REA_{r.id}", "user": _user(r.login, "Bot"), "content": r.content,
                "created_at": "2020-01-01T00:00:00Z"}

    async def _react(self, request: web.Request) -> web.Response:
        target, content = self._target(request), (await request.json())["content"]
        login = self._login_for(request.headers.get("Authorization", ""))
        existing = next((r for r in self.reactions if (r.target, r.content, r.login) == (target, content, login)),
                        None)
        if existing is not None:  # GitHub answers 200 with the reaction that is already there
            return web.json_response(self._reaction_json(existing))
        self._next_id += 1
        reaction = Reaction(target, self._next_id, content, login)
        self.reactions.append(reaction)
        self.reaction_log.append(ReactionEvent("add", target, content, time.monotonic()))
        return web.json_response(self._reaction_json(reaction), status=201)

    async def _reactions(self, request: web.Request) -> web.Response:
        target, content = self._target(request), request.query.get("content")
        return web.json_response([self._reaction_json(r) for r in self.reactions
                                  if r.target == target and (content is None or r.content == content)])

    async def _unreact(self, request: web.Request) -> web.Response:
        target, rid = self._target(request), int(request.match_info["reaction"])
        found = next((r for r in self.reactions if r.target == target and r.id == rid), None)
        if found is None:
            return web.json_response({"message": "Not Found"}, status=404)
        self.reactions.remove(found)
        self.reaction_log.append(ReactionEvent("remove", target, found.content, time.monotonic()))
        return web.Response(status=204)

    async def _team_membership(self, request: web.Request) -> web.Response:
        """``GET /orgs/{org}/teams/{team_slug}/memberships/{username}``: 404 when not a member, as GitHub does."""
        self.auth_seen.append(request.headers.get("Authorization", ""))
        org, team, login = request.match_info["org"], request.match_info["team"], request.match_info["login"]
        self.team_checks.append((f"{org}/{team}", login))
        held = self.hold_team_checks.get(login)
        if held is not None:  # a slow check, for as long as the test wants
            await held.wait()
        if self.team_check_errors:
            return web.json_response({"message": "Server Error"}, status=self.team_check_errors.pop(0))
        if login.lower() not in {m.lower() for m in self.teams.get(f"{org}/{team}", set())}:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({"url": f"{self.url}/teams/1/memberships/{login}", "role": "member",
                                  "state": "active"})

    # ------------------------------------------------------------------ discussions (GraphQL)

    def add_discussion(self, repo: str, number: int, node_id: str, *, answerable: bool = True) -> Discussion:
        found = self.discussions[node_id] = Discussion(node_id, repo, number, answerable)
        return found

    def add_discussion_comment(self, discussion: str, node_id: str, body: str, *, login: str = "Codertocat",
                               reply_to: str | None = None) -> DiscussionComment:
        comment = DiscussionComment(node_id, discussion, body, login, reply_to)
        self.discussion_comments.append(comment)
        return comment

    def bot_discussion_comments(self, node_id: str) -> list[DiscussionComment]:
        """The bridge's comments in a discussion, as a reader sees them (markers hidden)."""
        return [DiscussionComment(c.node_id, c.discussion, _HIDDEN.sub("", c.body), c.login, c.reply_to)
                for c in self.discussion_comments
                if c.discussion == node_id and c.login in (self.login, self.app_slug)]

    @staticmethod
    def _graphql_error(field_name: str, type_: str, message: str) -> web.Response:
        return web.json_response({"data": {field_name: None}, "errors": [
            {"type": type_, "path": [field_name], "locations": [{"line": 2, "column": 3}], "message": message}]})

    async def _graphql(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        body = await request.json()
        query, variables = str(body.get("query", "")), dict(body.get("variables") or {})
        login = self._login_for(auth).removesuffix("[bot]")  # GraphQL's name for an App's bot
        by_id = {c.node_id: c for c in self.discussion_comments}
        if "addDiscussionComment" in query:
            self.graphql_operations.append("addDiscussionComment")
            discussion = self.discussions.get(str(variables.get("discussion")))
            if discussion is None:
                return self._graphql_error("addDiscussionComment", "NOT_FOUND",
                                           f"Could not resolve to a node with the global id of "
                                           f"'{variables.get('discussion')}'")
            reply_to = variables.get("replyTo")
            if reply_to is not None and (reply_to not in by_id or by_id[reply_to].reply_to is not None):
                return self._graphql_error("addDiscussionComment", "UNPROCESSABLE",
                                           "Parent comment is already in a thread, cannot reply to it")
            self._next_id += 1
            comment = self.add_discussion_comment(discussion.node_id, f"DC_kwDO{self._next_id}",
                                                  str(variables.get("body", "")), login=login,
                                                  reply_to=reply_to)
            if self.on_discussion_comment is not None:
                self.on_discussion_comment(comment)
            return web.json_response({"data": {"addDiscussionComment": {"comment": {"id": comment.node_id}}}})
        if "markDiscussionCommentAsAnswer" in query:
            self.graphql_operations.append("markDiscussionCommentAsAnswer")
            comment = by_id.get(str(variables.get("id")))
            if comment is None:
                return self._graphql_error("markDiscussionCommentAsAnswer", "NOT_FOUND",
                                           f"Could not resolve to a node with the global id of '{variables.get('id')}'")
            discussion = self.discussions[comment.discussion]
            if not discussion.answerable:
                return self._graphql_error("markDiscussionCommentAsAnswer", "UNPROCESSABLE",
                                           "Discussion category is not answerable")
            discussion.answer = comment.node_id
            return web.json_response({"data": {"markDiscussionCommentAsAnswer": {
                "discussion": {"id": discussion.node_id}}}})
        if "node(" in query:
            node_id = str(variables.get("id"))
            self.graphql_operations.append("node")
            if node_id in by_id:
                c = by_id[node_id]
                return web.json_response({"data": {"node": {
                    "id": c.node_id, "discussion": {"id": c.discussion},
                    "replyTo": {"id": c.reply_to} if c.reply_to else None}}})
            if node_id in self.discussions:
                def node(c: DiscussionComment) -> dict[str, Any]:
                    return {"id": c.node_id, "body": c.body, "author": {"login": c.login}}
                top = [c for c in self.discussion_comments if c.discussion == node_id and c.reply_to is None]
                return web.json_response({"data": {"node": {"comments": {"nodes": [
                    {**node(c), "replies": {"nodes": [node(r) for r in self.discussion_comments
                                                      if r.reply_to == c.node_id][-100:]}}
                    for c in top[-100:]]}}}})
            return self._graphql_error("node", "NOT_FOUND", f"Could not resolve to a node with the global id of "
                                                            f"'{node_id}'")
        return web.json_response({"errors": [{"message": "Parse error on query", "locations": [
            {"line": 1, "column": 1}]}]})

    # ------------------------------------------------------------------ pull-request review comments

    def add_review_comment(self, repo: str, pull: int, comment_id: int, body: str, *, login: str = "Codertocat",
                           in_reply_to: int | None = None) -> ReviewComment:
        comment = ReviewComment(repo, pull, comment_id, body, login, in_reply_to)
        self.review_comments.append(comment)
        return comment

    def review_thread(self, repo: str, first: int) -> list[str]:
        """The replies in one review thread, as a reader sees them (markers hidden)."""
        return [_HIDDEN.sub("", c.body) for c in self.review_comments if c.repo == repo and c.in_reply_to == first]

    def _review_json(self, c: ReviewComment) -> dict[str, Any]:
        payload: dict[str, Any] = copy.deepcopy(fixture("pull_request_review_comment.created.1")["comment"])
        payload.update(id=c.id, body=c.body, user=_user(c.login, "Bot" if c.login.endswith("[bot]") else "User"),
                       url=f"{self.url}/repos/{c.repo}/pulls/comments/{c.id}",
                       pull_request_url=f"{self.url}/repos/{c.repo}/pulls/{c.pull}")
        if c.in_reply_to is not None:
            payload["in_reply_to_id"] = c.in_reply_to
        return payload

    async def _review_reply(self, request: web.Request) -> web.Response:
        """``POST .../pulls/{n}/comments/{comment_id}/replies``: 404 unless that comment is on that pull request."""
        auth = request.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        pull, first = int(request.match_info["number"]), int(request.match_info["id"])
        if not any(c.repo == repo and c.pull == pull and c.id == first for c in self.review_comments):
            return web.json_response({"message": "Not Found"}, status=404)
        self._next_id += 1
        reply = self.add_review_comment(repo, pull, self._next_id, (await request.json())["body"],
                                        login=self._login_for(auth), in_reply_to=first)
        return web.json_response(self._review_json(reply), status=201)

    async def _list_review_comments(self, request: web.Request) -> web.Response:
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        pull = int(request.match_info["number"])
        found = [c for c in self.review_comments if c.repo == repo and c.pull == pull]
        if request.query.get("direction") == "desc":
            found.reverse()
        per_page = min(int(request.query.get("per_page", "30")), self.max_per_page)
        return web.json_response([self._review_json(c) for c in found[:per_page]])

    # ------------------------------------------------------------------ App webhook deliveries

    def _deliveries_refused(self, request: web.Request) -> web.Response | None:
        """GitHub answers these endpoints only to the app's JWT, and 403/404 to apps or servers without them."""
        auth = request.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        if not auth.startswith("Bearer ") or auth.count(".") != 2:
            return web.json_response({"message": "A JSON web token could not be decoded"}, status=401)
        if self.deliveries_status is not None:
            message = "Not Found" if self.deliveries_status == 404 else "Resource not accessible by integration"
            return web.json_response({"message": message}, status=self.deliveries_status)
        return None

    async def _list_deliveries(self, request: web.Request) -> web.Response:
        """Newest first, ``per_page`` (default 30, at most ``max_per_page``), an opaque ``cursor`` in Link rel=next."""
        if (refused := self._deliveries_refused(request)) is not None:
            return refused
        per_page = min(int(request.query.get("per_page", "30")), self.max_per_page)
        cursor = request.query.get("cursor", "")
        self.delivery_listings.append(cursor)
        newest = sorted(self.hook_deliveries, key=lambda d: (d.delivered_at, d.id), reverse=True)
        ids = [d.id for d in newest]
        start = ids.index(int(cursor.removeprefix("v1_"))) if cursor else 0
        page = newest[start:start + per_page]
        headers = {}
        if start + per_page < len(newest):
            after = f"v1_{newest[start + per_page].id}"
            headers["Link"] = f'<{self.url}/app/hook/deliveries?per_page={per_page}&cursor={after}>; rel="next"'
        return web.json_response([d.json() for d in page], headers=headers)

    async def _redeliver(self, request: web.Request) -> web.Response:
        if (refused := self._deliveries_refused(request)) is not None:
            return refused
        delivery_id = int(request.match_info["id"])
        original = next((d for d in self.hook_deliveries if d.id == delivery_id), None)
        if original is None:
            return web.json_response({"message": "Not Found"}, status=404)
        self.redelivery_requests.append(delivery_id)
        task = asyncio.create_task(self._send_again(original))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return web.json_response({}, status=202)

    async def _send_again(self, original: HookDelivery) -> None:
        """What GitHub does after its 202: POST the same event, signed, and record the attempt."""
        await self._webhook_set.wait()
        assert self._webhook is not None
        url, secret = self._webhook
        body = json.dumps(original.payload).encode()
        headers = {"X-GitHub-Event": original.event, "X-GitHub-Delivery": original.guid,
                   "Content-Type": "application/json",
                   "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
        try:
            async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as r:
                status = r.status
        except aiohttp.ClientError:
            status = 0
        self.add_delivery(original.event, original.payload, status_code=status, ago=dt.timedelta(0),
                          guid=original.guid, redelivery=True)
