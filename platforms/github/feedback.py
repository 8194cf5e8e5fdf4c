"""👍/👎 on GitHub (``feedback: true``): the reactions people leave on the bot's answer comments.

GitHub sends no webhook for reactions, so they are read when the conversation is next seen: each
new message in an issue makes the adapter look, in the background, at the bot's newest answer
comments there (their hidden markers name the reply) and hand each person's 👍 (``+1``) or 👎
(``-1``) to the core. Recording is idempotent (one rating per person per answer), so reading the
same reactions again changes nothing; someone who left both is not counted.
"""

from __future__ import annotations

import logging
from typing import Any

from githubkit import GitHub

from bridge.types import Rating, RatingSink
from platforms.github.delivery import PER_PAGE, Issue, read_marker

log = logging.getLogger(__name__)

MAX_RATED_COMMENTS = 5  # the bot's newest answer comments looked at, each one a reactions call
VERDICTS = {"+1": 1, "-1": -1}


async def _last_page_of_comments(client: GitHub[Any], issue: Issue) -> list[dict[str, Any]]:
    first = (await client.rest.issues.async_list_comments(issue.owner, issue.repo, issue.number,
                                                          per_page=PER_PAGE, page=1)).raw_response
    last = first.links.get("last")
    if not last:
        return list(first.json())
    url = str(last.get("url", ""))
    page = int(url.rsplit("page=", 1)[-1].split("&", 1)[0]) if "page=" in url else 1
    resp = await client.rest.issues.async_list_comments(issue.owner, issue.repo, issue.number,
                                                        per_page=PER_PAGE, page=page)
    return list(resp.raw_response.json())


async def read_ratings(client: GitHub[Any], issue: Issue, *, login: str, sink: RatingSink) -> int:
    """Hand the reactions on the bot's newest answers in ``issue`` to ``sink``; the number of ratings."""
    answers: list[tuple[str, int]] = []  # (reply key, comment id), oldest first
    for comment in await _last_page_of_comments(client, issue):
        named = read_marker(str(comment.get("body") or ""))
        if named and (comment.get("user") or {}).get("login") == login:
            answers.append((named[0], int(comment["id"])))
    verdicts: dict[tuple[str, str], set[int]] = {}
    for key, comment_id in answers[-MAX_RATED_COMMENTS:]:
        resp = await client.rest.reactions.async_list_for_issue_comment(issue.owner, issue.repo, comment_id,
                                                                        per_page=100)
        for reaction in resp.parsed_data:
            value = VERDICTS.get(str(reaction.content))
            who = reaction.user.login if reaction.user is not None else ""
            if value is not None and who and who != login:
                verdicts.setdefault((key, who), set()).add(value)
    rated = 0
    for (key, who), values in verdicts.items():
        if len(values) == 1 and await sink(Rating("github", key, who, values.pop())):
            rated += 1
    return rated
