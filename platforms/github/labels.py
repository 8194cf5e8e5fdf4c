"""``trigger: label:NAME``: labelling an existing issue starts its conversation with what was said so far.

The labelled issue's (or pull request's) comments are read oldest first, at most :data:`MAX_PAGES`
pages (a discussion's: its newest 100 comments, each with its replies), and the newest of them that
fit the character budget follow the title and body in the first message, so the model answers the
discussion as it stands, not only its opening.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from githubkit import GitHub
from githubkit.exception import GitHubException

from bridge.types import Incoming
from platforms.github.delivery import read_marker
from platforms.github.discussions import read_discussion_comments

log = logging.getLogger(__name__)

PER_PAGE = 100
MAX_PAGES = 3  # the first 300 comments; an issue longer than that is summarised by its newest ones anyway


_NOTE_ROOM = 48


def trigger_labels(triggers: list[str]) -> frozenset[str]:
    """The case-folded NAMEs of the ``label:NAME`` triggers among the rules' triggers."""
    return frozenset(t.removeprefix("label:").casefold() for t in triggers if t.startswith("label:"))


def is_labeling(event: str, payload: dict[str, Any]) -> bool:
    return event in ("issues", "pull_request", "discussion") and payload.get("action") == "labeled"


async def read_comments(client: GitHub[Any], repo: str, number: int) -> list[tuple[str, str]]:
    """(login, body) of the issue's comments, oldest first, bounded by :data:`MAX_PAGES`."""
    owner, name = repo.split("/", 1)
    found: list[tuple[str, str]] = []
    for page in range(1, MAX_PAGES + 1):
        resp = await client.rest.issues.async_list_comments(owner, name, number, per_page=PER_PAGE, page=page)
        batch = orjson.loads(resp.content)
        found += [(str((c.get("user") or {}).get("login") or "someone"), str(c.get("body") or "")) for c in batch]
        if len(batch) < PER_PAGE:
            break
    return found


def with_history(msg: Incoming, comments: list[tuple[str, str]], budget_chars: int) -> Incoming:
    """``msg`` (title and body) followed by the newest comments that fit in ``budget_chars``."""
    kept: list[str] = []
    room = budget_chars - len(msg.text) - _NOTE_ROOM  # the "left out" note fits too
    for login, body in reversed(comments):
        if read_marker(body) is not None:
            body = body[:body.rfind("<!--")].rstrip()  # the bot's own earlier answer, without its marker
        entry = f"@{login} wrote:\n{body.strip()}"
        if len(entry) + 2 > room:
            break
        kept.append(entry)
        room -= len(entry) + 2
    left_out = len(comments) - len(kept)
    parts = [msg.text]
    if left_out:
        parts.append(f"({left_out} earlier comment(s) left out)")
    parts += reversed(kept)
    return dataclasses.replace(msg, text="\n\n".join(parts))


async def with_comments(msg: Incoming, client_for: Callable[[str], Awaitable[GitHub[Any]]],
                        context_tokens: int) -> Incoming:
    """A labelled item's first message: its body and the comments so far, in about half the context
    (~4 characters a token). If GitHub cannot list them, the body alone is still worth answering."""
    try:
        client = await client_for(msg.thread.channel)
        if msg.event_id.startswith("discussion:"):
            comments = await read_discussion_comments(client, msg.event_id.partition(":")[2])
        else:
            comments = await read_comments(client, msg.thread.channel, int(msg.thread.thread))
    except (GitHubException, LookupError) as exc:
        log.warning("github: could not read the comments of %s (%s); starting from its body",
                    msg.thread.key, type(exc).__name__)
        return msg
    return with_history(msg, comments, budget_chars=context_tokens * 2)
