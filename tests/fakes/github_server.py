"""A loopback fake of GitHub's REST API, answering with complete objects githubkit accepts.

Objects are built from the recorded webhook payloads (their ``sender`` and ``comment`` are complete
REST objects). Records every comment posted and every Authorization header seen.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

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
    at: float = field(default_factory=time.monotonic)  # when it was posted (benchmarks)


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
        self.team_checks: list[tuple[str, str]] = []  # (team, login) asked about
        self.scopes: str | None = "repo, read:org"  # X-OAuth-Scopes (classic tokens); None: fine-grained
        self.url = ""
        self._next_id = 1000
        self._runner: web.AppRunner | None = None

    async def start(self) -> FakeGitHub:
        app = web.Application()
        app.add_routes([
            web.get("/user", self._user),
            web.get("/app", self._app),
            web.post("/app/installations/{id}/access_tokens", self._access_token),
            web.get("/repos/{owner}/{repo}/installation", self._repo_installation),
            web.post("/repos/{owner}/{repo}/issues/{number}/comments", self._comment),
            web.get("/orgs/{org}/teams/{team}/memberships/{login}", self._team_membership),
        ])
        self._runner, base_url = await serve(app)
        self.url = base_url
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    def comments_on(self, repo: str, number: int) -> list[str]:
        """What a reader sees: GitHub renders HTML comments (the bridge's reply markers) as nothing."""
        return [_HIDDEN.sub("", c.body) for c in self.comments if c.repo == repo and c.number == number]

    async def _user(self, request: web.Request) -> web.Response:
        self.auth_seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization", "") in ("", "token bad-token", "Bearer bad-token"):
            return web.json_response({"message": "Bad credentials"}, status=401)
        headers = {"X-OAuth-Scopes": self.scopes} if self.scopes is not None else {}
        return web.json_response(_user(self.login), headers=headers)

    async def _app(self, request: web.Request) -> web.Response:
        self.auth_seen.append(request.headers.get("Authorization", ""))
        now = "2020-01-01T00:00:00Z"
        return web.json_response({
            "id": 29310, "slug": self.app_slug, "node_id": "MDM6QXBwMjkzMTA=", "owner": _user("octo-org"),
            "name": "Bridge App", "description": "", "external_url": "https://example.org",
            "html_url": f"https://github.com/apps/{self.app_slug}", "created_at": now, "updated_at": now,
            "permissions": {"issues": "write", "metadata": "read"}, "events": ["issues", "issue_comment"],
        })

    async def _access_token(self, request: web.Request) -> web.Response:
        self.auth_seen.append(request.headers.get("Authorization", ""))
        inst = int(request.match_info["id"])
        self.token_requests.append(inst)
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return web.json_response({"token": f"ghs_installation{inst}", "expires_at": expires,
                                  "permissions": {"issues": "write"}, "repository_selection": "all"},
                                 status=201)

    async def _repo_installation(self, request: web.Request) -> web.Response:
        inst = copy.deepcopy(fixture("installation.created.1")["installation"])
        inst.update(app_slug=self.app_slug, created_at="2020-01-01T00:00:00Z", updated_at="2020-01-01T00:00:00Z")
        return web.json_response(inst)

    async def _comment(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        if self.fail_comments:
            status = self.fail_comments.pop(0)
            return web.json_response({"message": "Server Error"}, status=status)
        body = (await request.json())["body"]
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        number = int(request.match_info["number"])
        self.comments.append(Comment(repo, number, body, auth))
        self._next_id += 1
        comment = copy.deepcopy(fixture("issue_comment.created.2")["comment"])
        comment.update(id=self._next_id, body=body, user=_user(self.login, "Bot"),
                       url=f"{self.url}/repos/{repo}/issues/comments/{self._next_id}",
                       issue_url=f"{self.url}/repos/{repo}/issues/{number}")
        return web.json_response(comment, status=201)

    async def _team_membership(self, request: web.Request) -> web.Response:
        """``GET /orgs/{org}/teams/{team_slug}/memberships/{username}``: 404 when not a member, as GitHub does."""
        self.auth_seen.append(request.headers.get("Authorization", ""))
        org, team, login = request.match_info["org"], request.match_info["team"], request.match_info["login"]
        self.team_checks.append((f"{org}/{team}", login))
        if login.lower() not in {m.lower() for m in self.teams.get(f"{org}/{team}", set())}:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({"url": f"{self.url}/teams/1/memberships/{login}", "role": "member",
                                  "state": "active"})
