"""Pull-request review threads as conversations: one per thread, answered by a reply in it.

A review comment's thread is named by its first comment (``in_reply_to_id``, or the comment's own
id when it starts the thread): the conversation is ``reviews/<PR number>/<first comment id>``.
The model is shown the file path and the diff hunk the comment sits on, since "why is this
unsafe?" means nothing without the line. Replies go to
``POST /repos/{owner}/{repo}/pulls/{n}/comments/{first id}/replies``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from githubkit import GitHub

from bridge.types import Author, Incoming, Outgoing, ThreadRef
from platforms.github.delivery import Eyes, Issue, read_marker, safe_key
from platforms.github.parts import post_parts
from platforms.github.payloads import Event, User

HUNK_LINES = 40  # GitHub's hunk ends at the commented line; the lines just above it are what matters


def _context(path: str | None, hunk: str | None) -> str:
    lines = (hunk or "").splitlines()[-HUNK_LINES:]
    fence = "````" if any(line.startswith("```") for line in lines) else "```"
    where = f"Review comment on `{path}`" if path else "Review comment"
    return f"{where}:\n{fence}diff\n" + "\n".join(lines) + f"\n{fence}\n\n" if lines else f"{where}:\n\n"


def translate_review(ev: Event, mention: re.Pattern[str], is_bot: Callable[[User | None], bool]) -> Incoming | str:
    """A new review comment as an :class:`Incoming` of its thread, or why it is ignored."""
    pr, comment = ev.pull_request, ev.comment
    assert ev.repository is not None
    if ev.action != "created":
        return f"pull_request_review_comment.{ev.action} is not a new message"
    if pr is None or comment is None:
        return "payload without the fields this event needs"
    if pr.state == "closed":
        return "the conversation is closed"
    if is_bot(comment.user):
        return "written by a bot"
    text = comment.body or ""
    mentioned = bool(mention.search(text))
    if mentioned:
        text = mention.sub("", text).strip()
    first = comment.in_reply_to_id or comment.id
    author = comment.user
    return Incoming(
        thread=ThreadRef("github", "", ev.repository.full_name, f"reviews/{pr.number}/{first}"),
        event_id=f"review_comment:{comment.id}",
        author=Author(str(author.id) if author.id else author.login, author.login),
        # A command must stay first to be one; a question gets its place in the diff.
        text=text if text.startswith("/") else _context(comment.path, comment.diff_hunk) + text,
        mentioned=mentioned,
        in_thread=comment.in_reply_to_id is not None,  # a reply in a thread the bot may already be in
        association=comment.author_association.upper() if comment.author_association else None,
        labels=tuple(label.name for label in pr.labels),
    )


async def deliver_review(client: GitHub[Any], reply: Outgoing, snapshots: AsyncIterator[str], *,
                         login: str, limit: int) -> None:
    """Post the reply in the review thread, each part once (found again by its marker after a crash)."""
    owner, repo = reply.thread.channel.split("/", 1)
    _, number, first = reply.thread.thread.split("/", 2)

    async def post(body: str) -> str:
        resp = await client.rest.pulls.async_create_reply_for_review_comment(
            owner, repo, int(number), int(first), data={"body": body})
        return str(orjson.loads(resp.content)["id"])  # the typed model is ~30 fields we do not read

    async def find(parts: int) -> dict[int, str]:
        # The newest 100 review comments of the pull request: a recovering reply is recent.
        resp = await client.rest.pulls.async_list_review_comments(owner, repo, int(number), sort="created",
                                                                  direction="desc", per_page=100)
        found: dict[int, str] = {}
        for c in orjson.loads(resp.content):
            named = read_marker(str(c.get("body") or ""))
            user = str((c.get("user") or {}).get("login") or "")
            if named is not None and user.lower() == login.lower() and named[0] == safe_key(reply.key) \
                    and named[1] < parts:
                found[named[1]] = str(c["id"])
        return found

    eyes = Eyes(client, Issue(owner, repo, int(number)), reply.answers, login)  # on the comment answered
    await post_parts(reply, snapshots, limit=limit, post=post, find=find, eyes=eyes)
