"""``bridge check --online``: whether the bot can see each repository a rule names, and comment there.

A token reads ``GET /repos/OWNER/REPO`` (GitHub answers 404 for a repository the token may not
see, so "not found" and "no access" look alike) and its ``permissions``; an App asks whether it is
installed on the repository. ``owner/repo#123`` also looks the issue up.
"""

from __future__ import annotations

from typing import Any

from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed

from bridge.diagnosis import Finding, place_label

_CAN_WRITE = ("admin", "maintain", "push", "triage")


async def _get(gh: GitHub[Any], path: str) -> dict[str, Any] | None:
    """The JSON of a GET, or None on 404."""
    try:
        resp = await gh.arequest("GET", path)
    except RequestFailed as exc:
        if exc.response.status_code == 404:
            return None
        raise
    data = resp.json()
    return data if isinstance(data, dict) else {}


async def _with_token(gh: GitHub[Any], label: str, repo: str, issue: str) -> Finding:
    data = await _get(gh, f"/repos/{repo}")
    if data is None:
        return Finding("missing", f"{label}: the token cannot see {repo} (no such repository, or no access "
                                  "to it): check the name, or give the token access to the repository")
    if data.get("archived"):
        return Finding("missing", f"{label}: {repo} is archived: nobody can comment there")
    if data.get("has_issues") is False:
        return Finding("warning", f"{label}: {repo} has issues switched off (Settings → Features → Issues)")
    if issue and await _get(gh, f"/repos/{repo}/issues/{issue}") is None:
        return Finding("missing", f"{label}: {repo} has no issue or pull request #{issue}")
    permissions = data.get("permissions") or {}
    if any(permissions.get(p) for p in _CAN_WRITE) or not data.get("private"):
        return Finding("ok", f"{label}: the bot can see {repo} and comment there")
    return Finding("missing", f"{label}: the token may read {repo} but not comment: give it Issues: Read and "
                              "write there (or the repo scope)")


async def _with_app(gh: GitHub[Any], label: str, repo: str) -> Finding:
    if await _get(gh, f"/repos/{repo}/installation") is None:
        return Finding("missing", f"{label}: the app is not installed on {repo}: install it there (app settings "
                                  "→ Install App → the repository)")
    return Finding("ok", f"{label}: the app is installed on {repo} and may comment there")


async def check_github_places(gh: GitHub[Any], places: list[tuple[int, str]], *, app: bool) -> list[Finding]:
    found: list[Finding] = []
    for index, where in places:
        label = place_label(index, "github", where)
        repo, _, issue = where.partition("#")
        try:
            found.append(await _with_app(gh, label, repo) if app else await _with_token(gh, label, repo, issue))
        except GitHubException as exc:
            found.append(Finding("missing", f"{label}: the lookup failed ({type(exc).__name__})"))
    return found
