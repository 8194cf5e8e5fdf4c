"""GitHub Discussions as conversations: webhooks in, discussion comments out (GraphQL only).

Discussions have no REST API for comments, so answers go through githubkit's GraphQL client:
``addDiscussionComment`` (with ``replyToId`` when the question was itself a reply, so the answer
lands in that thread — GitHub nests one level only, under the top-level comment), and
``markDiscussionCommentAsAnswer`` for ``/answer``. The thread is ``discussions/N``; the message
being answered (``Outgoing.answers``) is ``discussion:<node id>`` or ``dcomment:<node id>``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from githubkit import GitHub
from githubkit.exception import GitHubException

from bridge.config import Config
from bridge.policy.access import is_admin
from bridge.types import Author, Incoming, Outgoing, ThreadRef
from platforms.github.delivery import read_marker
from platforms.github.delivery import safe_key as _safe_key
from platforms.github.parts import post_parts
from platforms.github.payloads import Event, User

log = logging.getLogger(__name__)

ANSWER_COMMAND = "/answer"
_MAINTAINERS = {"OWNER", "MEMBER", "COLLABORATOR"}

_ADD = """mutation($discussion: ID!, $body: String!, $replyTo: ID) {
  addDiscussionComment(input: {discussionId: $discussion, body: $body, replyToId: $replyTo}) { comment { id } }
}"""
_MARK = """mutation($id: ID!) {
  markDiscussionCommentAsAnswer(input: {id: $id}) { discussion { id } }
}"""
_WHERE = """query($id: ID!) {
  node(id: $id) { ... on DiscussionComment { id discussion { id } replyTo { id } } }
}"""
# The newest 100 top-level comments and the newest 100 replies of each: the bridge's own answers
# to a recent question are there (a recovering reply is minutes old, not a hundred comments old).
_COMMENTS = """query($id: ID!) {
  node(id: $id) { ... on Discussion { comments(last: 100) { nodes {
    id body author { login } replies(last: 100) { nodes { id body author { login } } } } } } }
}"""


def translate_discussion(ev: Event, mention: re.Pattern[str], is_bot: Callable[[User | None], bool],
                         trigger_labels: frozenset[str]) -> Incoming | str:
    """A new discussion (title + body) or discussion comment as an :class:`Incoming`, or why not."""
    d, comment = ev.discussion, ev.comment
    assert ev.repository is not None
    if d is None or not d.node_id:
        return "payload without the fields this event needs"
    if d.locked or d.state in ("closed", "locked"):
        return "the conversation is closed"
    author: User | None
    if comment is not None:
        if ev.action != "created" or not comment.node_id:
            return f"discussion_comment.{ev.action} is not a new message"
        author, text, association = comment.user, comment.body or "", comment.author_association
        event_id = f"dcomment:{comment.node_id}"
    else:
        labeled = ev.action == "labeled" and ev.label is not None and ev.label.name.casefold() in trigger_labels
        if ev.action != "created" and not labeled:
            return f"discussion.{ev.action} is not a new message"
        author, text, association = d.user or ev.sender, f"{d.title}\n\n{d.body or ''}".strip(), d.author_association
        event_id = f"discussion:{d.node_id}"  # created and labeled: one message, answered once
    if author is None:
        return "no author"
    if is_bot(author):
        return "written by a bot"
    mentioned = bool(mention.search(text))
    if mentioned:
        text = mention.sub("", text).strip()
    return Incoming(
        thread=ThreadRef("github", "", ev.repository.full_name, f"discussions/{d.number}"),
        event_id=event_id,
        author=Author(str(author.id) if author.id else author.login, author.login),
        text=text,
        mentioned=mentioned,
        association=association.upper() if association else None,
        labels=tuple(label.name for label in d.labels),
        category=d.category.name,
    )


def is_answer_command(msg: Incoming) -> bool:
    """``/answer`` in a discussion comment: the platform marks the answer, the model is not asked."""
    return msg.event_id.startswith("dcomment:") and msg.text.strip().lower() == ANSWER_COMMAND


@dataclass(frozen=True, slots=True)
class _Node:
    id: str
    body: str
    login: str


def _nodes(data: dict[str, Any]) -> list[tuple[_Node, list[_Node]]]:
    """The discussion's top-level comments, each with its replies, from :data:`_COMMENTS`."""
    def node(n: dict[str, Any]) -> _Node:
        return _Node(str(n.get("id")), str(n.get("body") or ""), str((n.get("author") or {}).get("login") or ""))

    comments = (((data.get("node") or {}).get("comments") or {}).get("nodes")) or []
    return [(node(c), [node(r) for r in ((c.get("replies") or {}).get("nodes") or [])]) for c in comments]


def _ours(n: _Node, login: str) -> bool:
    # GraphQL names an App's bot account "slug", REST and webhooks "slug[bot]".
    return n.login.lower().removesuffix("[bot]") == login.lower().removesuffix("[bot]")


async def _where(client: GitHub[Any], answers: str) -> tuple[str, str | None]:
    """(discussion node id, the top-level comment to reply under or None) for the message answered."""
    kind, _, node_id = answers.partition(":")
    if kind == "discussion":
        return node_id, None
    data = await client.async_graphql(_WHERE, {"id": node_id})
    node = data.get("node") or {}
    discussion = (node.get("discussion") or {}).get("id")
    if not discussion:
        raise LookupError(f"GitHub no longer has the discussion comment {node_id}")
    reply_to = (node.get("replyTo") or {}).get("id")
    return str(discussion), (str(reply_to) if reply_to else None)


async def deliver_discussion(client: GitHub[Any], reply: Outgoing, snapshots: AsyncIterator[str], *,
                             login: str, limit: int) -> None:
    """Post the reply as discussion comments, each part once (found again by its marker after a crash)."""
    discussion, reply_to = await _where(client, reply.answers)

    async def post(body: str) -> str:
        data = await client.async_graphql(_ADD, {"discussion": discussion, "body": body, "replyTo": reply_to})
        return str(data["addDiscussionComment"]["comment"]["id"])

    async def find(parts: int) -> dict[int, str]:
        found: dict[int, str] = {}
        for top, replies in _nodes(await client.async_graphql(_COMMENTS, {"id": discussion})):
            for n in (top, *replies):
                named = read_marker(n.body)
                if named is not None and _ours(n, login) and named[0] == _safe_key(reply.key) and named[1] < parts:
                    found[named[1]] = n.id
        return found

    await post_parts(reply, snapshots, limit=limit, post=post, find=find)


async def read_discussion_comments(client: GitHub[Any], discussion: str) -> list[tuple[str, str]]:
    """(login, body) of a discussion's newest comments, each followed by its replies, oldest first."""
    return [(n.login, n.body) for top, replies in _nodes(await client.async_graphql(_COMMENTS, {"id": discussion}))
            for n in (top, *replies)]


async def mark_answer(client: GitHub[Any], command: Incoming, login: str) -> str:
    """Mark the bridge's reply as the discussion's answer; a sentence saying what happened.

    Which reply: in a thread, the bridge's comment that opens it or its newest reply there;
    at the top level, the bridge's newest top-level comment.
    """
    discussion, thread = await _where(client, command.event_id)
    chosen: _Node | None = None
    for top, replies in _nodes(await client.async_graphql(_COMMENTS, {"id": discussion})):
        if thread is None:
            if _ours(top, login) and read_marker(top.body):
                chosen = top  # oldest first: the last one seen is the newest
        elif top.id == thread:
            ours = [r for r in replies if _ours(r, login) and read_marker(r.body)]
            chosen = top if _ours(top, login) else (ours[-1] if ours else None)
    if chosen is None:
        return "there is no reply of the bot to mark as the answer here"
    await client.async_graphql(_MARK, {"id": chosen.id})
    return f"marked {chosen.id} as the answer"


async def answer_command(command: Incoming, config: Config, client_for: Callable[[str], Awaitable[GitHub[Any]]],
                         login: str) -> dict[str, str]:
    """``/answer``, done or refused: what the webhook's response says (nothing is stored or asked).

    Without ``admins:`` configured, the repository's own people may mark an answer, not any
    passer-by of a public repository.
    """
    allowed = is_admin(config, "github", command.author.id, command.author.name) \
        if config.admins is not None else command.association in _MAINTAINERS
    if not allowed:
        return {"ignored": "only the bot's admins can mark an answer"}
    try:
        return {"answer": await mark_answer(await client_for(command.thread.channel), command, login)}
    except (GitHubException, LookupError) as exc:
        log.warning("github: /answer in %s failed: %s", command.thread.key, type(exc).__name__)
        return {"error": "GitHub refused to mark the answer (is the category Q&A?)"}
