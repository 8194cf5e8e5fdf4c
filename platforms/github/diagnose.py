"""``bridge check --online`` for GitHub: who the credentials sign in as, and what they may do.

Classic tokens list their scopes in the ``X-OAuth-Scopes`` header; fine-grained tokens do not
(their permissions cannot be read back), so for those the report says what to grant. An App's
permissions and subscribed events come with ``GET /app``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.exception import GitHubException, RequestFailed

from bridge.config import GitHubConfig
from bridge.diagnosis import Finding

_CLASSIC_SCOPES = {"repo", "public_repo"}
_APP_EVENTS = {"issues", "issue_comment"}


# What each kind of conversation needs beyond issues: (permission, its name in the app settings, events).
_KIND_NEEDS = {
    "discussion": ("discussions", "Discussions", {"discussion", "discussion_comment"}),
    "review": ("pull_requests", "Pull requests", {"pull_request_review_comment"}),
}


async def diagnose_github(settings: GitHubConfig, base_dir: Path, github: Callable[[Any], GitHub[Any]],
                          kinds: frozenset[str] = frozenset()) -> list[Finding]:
    """``kinds``: the conversation kinds the rules ask for (``kind: discussion``, ``kind: review``)."""
    from platforms.github import _private_key  # the adapter's own reading of the key

    try:
        if settings.token is not None:
            return await _token(github(TokenAuthStrategy(settings.token.get_secret_value())), kinds)
        assert settings.app_id is not None
        assert settings.private_key is not None
        key = _private_key(settings.private_key.get_secret_value(), base_dir)
        return await _app(github(AppAuthStrategy(settings.app_id, key)), kinds)
    except RequestFailed as exc:
        key_name = "token" if settings.token is not None else "app_id / private_key"
        return [Finding("missing", f"github: GitHub refused platforms.github.{key_name} "
                                   f"(HTTP {exc.response.status_code})")]
    except GitHubException as exc:
        return [Finding("missing", f"github: cannot reach {settings.api_url} ({type(exc).__name__}): check "
                                   "platforms.github.api_url")]


async def _token(gh: GitHub[Any], kinds: frozenset[str]) -> list[Finding]:
    resp = await gh.rest.users.async_get_authenticated()
    found = [Finding("ok", f"github: signed in as {resp.parsed_data.login} (token)")]
    header = resp.headers.get("X-OAuth-Scopes")
    if header is None:
        extra = "".join(f", {_KIND_NEEDS[k][1]}: Read and write" for k in sorted(kinds) if k in _KIND_NEEDS)
        found.append(Finding("warning", "github: a fine-grained token (GitHub does not tell its permissions): "
                                        f"it needs Issues: Read and write{extra} (and Pull requests: Read and "
                                        "write) on the repositories"))
        return found
    scopes = {s.strip() for s in header.split(",") if s.strip()}
    if scopes & _CLASSIC_SCOPES:
        found.append(Finding("ok", f"github: token scopes {', '.join(sorted(scopes))}"))
    else:
        found.append(Finding("missing", f"github: the token's scopes ({', '.join(sorted(scopes)) or 'none'}) "
                                        "cannot comment: add repo (private repositories) or public_repo"))
    return found


async def _app(gh: GitHub[Any], kinds: frozenset[str]) -> list[Finding]:
    resp = await gh.rest.apps.async_get_authenticated()
    data: dict[str, Any] = dict(resp.raw_response.json() or {})
    found = [Finding("ok", f"github: signed in as the app {data.get('slug')}[bot]")]
    permissions = data.get("permissions") or {}
    if permissions.get("issues") != "write":
        found.append(Finding("missing", "github: the app lacks Issues: Read and write (app settings → "
                                        "Permissions & events)"))
    if permissions.get("pull_requests") != "write":
        found.append(Finding("warning", "github: without Pull requests: Read and write the app cannot answer "
                                        "in pull requests"))
    events = set(data.get("events") or [])
    wanted = set(_APP_EVENTS)
    for kind in sorted(kinds & _KIND_NEEDS.keys()):
        permission, title, kind_events = _KIND_NEEDS[kind]
        wanted |= kind_events
        if permissions.get(permission) != "write":
            found.append(Finding("missing", f"github: the app lacks {title}: Read and write, which the "
                                            f"kind: {kind} rules need (app settings → Permissions & events)"))
    if not events >= wanted:
        found.append(Finding("missing", "github: the app is not subscribed to "
                                        f"{', '.join(sorted(wanted - events))} events"))
    return found
