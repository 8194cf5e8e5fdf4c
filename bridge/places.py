"""Channel rules' ``where``: which values can name a place on each platform, and whether one matches.

A ``where`` that cannot exist (a Slack ``#general``, a Discord ``12345``, a GitHub owner without
``/repo``) would never match anything, and the bot would stay silent with no error; so the forms
are checked when the config is loaded. GitHub compares names case-insensitively, as GitHub does.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from bridge.types import ThreadRef

_GITHUB = re.compile(r"^[A-Za-z0-9*?._-]+/[A-Za-z0-9*?._-]+(#[0-9]+)?$")
_SLACK = re.compile(r"^[CGD][A-Z0-9*?]*$")
_DISCORD = re.compile(r"^[0-9]{17,20}$")

_SLACK_FIX = ("use the channel id (C…, G… or D…), not its name: in Slack, open the channel's name → "
              "About → the Channel ID at the bottom; or \"*\" for every channel")
_DISCORD_FIX = ("use the channel or thread id, a 17–20 digit number: Discord → User Settings → Advanced → "
                "Developer Mode, then right-click the channel → Copy Channel ID; quote it in YAML; or \"*\"")
_GITHUB_FIX = "write owner/repo, owner/* for all of an owner's repositories, or owner/repo#123 for one issue"


def place_problem(platform: str, where: str) -> str | None:
    """Why ``where`` can name no place on ``platform`` (with the fix), or None when its form is fine."""
    if where == "*" or platform == "console":
        return None
    if platform == "github":
        if "/" not in where:
            return f"{where!r} has no /repo, so it can match no repository: {_GITHUB_FIX}"
        if not _GITHUB.match(where):
            return f"{where!r} is not a repository name: {_GITHUB_FIX}"
        return None
    if platform == "slack":
        if where.startswith("#"):
            return f"{where!r} is a channel name; {_SLACK_FIX}"
        if not _SLACK.match(where):
            return f"{where!r} is not a Slack channel id; {_SLACK_FIX}"
        return None
    if platform == "discord":
        if not _DISCORD.match(where):
            return f"{where!r} is not a Discord channel id; {_DISCORD_FIX}"
        return None
    return None


def matches(where: str, thread: ThreadRef) -> bool:
    """Whether a rule's ``where`` covers this thread (``*`` globs allowed)."""
    if thread.platform == "discord":  # a Discord thread is matched by its own id or its channel's
        return fnmatchcase(thread.channel, where) or fnmatchcase(thread.thread, where)
    if thread.platform != "github":
        return fnmatchcase(thread.channel, where)
    repo, _, issue = where.partition("#")
    if issue and issue != thread.thread:
        return False
    return fnmatchcase(thread.channel.lower(), repo.lower())


def concrete(where: str) -> bool:
    """A ``where`` naming one place (no glob), which ``bridge check --online`` can look up."""
    return not any(c in where for c in "*?[")
