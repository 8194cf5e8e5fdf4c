"""GitHub webhook events → the core's :class:`~bridge.types.Incoming` (a pure function).

Answered: a new issue or pull request (title + body), a new comment on an open one, a label
that a ``trigger: label:NAME`` rule waits for, a discussion or discussion comment
(:mod:`.discussions`), a review comment (:mod:`.reviews`). Ignored: edits, deletions, closed
conversations, the bot's own comments and any ``Bot`` account.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from bridge.types import Author, Incoming, ThreadRef
from platforms.github.payloads import Comment, Event, Issue, User


def _mention(login: str) -> re.Pattern[str]:
    # A GitHub App's bot is "slug[bot]" but is mentioned as "@slug".
    name = re.escape(login.removesuffix("[bot]"))
    return re.compile(rf"(?<![\w@])@{name}(?:\[bot\])?(?![\w-])", re.IGNORECASE)


_REPO = re.compile(r"[^/\s]+/[^/\s]+")


def _short(value: object) -> str:
    """A header or payload value echoed in an "ignored" reason: bounded."""
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _is_bot(user: User | None, bot_login: str) -> bool:
    return user is not None and (user.type == "Bot" or user.login.lower() == bot_login.lower())


def _changed(ev: Event, issue: Issue, comment: Comment, bot_login: str) -> Incoming | str:
    """A comment edited or deleted: relayed copies follow it (the core ignores it otherwise)."""
    author = comment.user
    if author is None or _is_bot(author, bot_login):
        return "a bot's comment changed"
    assert ev.repository is not None
    return Incoming(thread=ThreadRef("github", "", ev.repository.full_name, str(issue.number)),
                    event_id=f"comment:{comment.id}",
                    author=Author(str(author.id) if author.id else author.login, author.login),
                    text=_mention(bot_login).sub("", comment.body or "").strip(),
                    change="edited" if ev.action == "edited" else "deleted", raw=None)


_EVENTS = ("issues", "pull_request", "issue_comment", "discussion", "discussion_comment",
           "pull_request_review_comment")


def translate(event: str, payload: dict[str, Any], bot_login: str,
              trigger_labels: frozenset[str] = frozenset()) -> Incoming | str:
    """An :class:`Incoming` to hand to the core, or the reason the event is ignored.

    ``trigger_labels``: the (case-folded) labels of ``trigger: label:NAME`` rules; adding one of
    them starts the conversation, under the same event id as the item's opening (answered once).
    """
    if event not in _EVENTS:
        return f"{_short(event)} events are not conversations"
    try:
        ev = Event.model_validate(payload)
    except ValidationError:
        return "payload without the fields this event needs"
    if ev.repository is None or not _REPO.fullmatch(ev.repository.full_name):
        return "no repository"
    if _is_bot(ev.sender, bot_login):
        return "sent by a bot"
    if event in ("discussion", "discussion_comment"):
        from platforms.github.discussions import translate_discussion

        return translate_discussion(ev, _mention(bot_login), lambda u: _is_bot(u, bot_login), trigger_labels)
    if event == "pull_request_review_comment":
        from platforms.github.reviews import translate_review

        return translate_review(ev, _mention(bot_login), lambda u: _is_bot(u, bot_login))

    item: Issue | None
    if event in ("issues", "pull_request"):
        item = ev.issue if event == "issues" else ev.pull_request
        labeled = ev.action == "labeled" and ev.label is not None and ev.label.name.casefold() in trigger_labels
        if not (ev.action == "opened" or labeled) or item is None:
            return f"{event}.{_short(ev.action)} is not a new message"
        if item.state == "closed":
            return "the conversation is closed"
        text = f"{item.title}\n\n{item.body or ''}".strip()
        author = item.user or ev.sender
        association = item.author_association
        event_id = f"{event}:{item.id or ev.repository.full_name + '#' + str(item.number)}"
    elif event == "issue_comment":
        if ev.action in ("edited", "deleted") and ev.issue is not None and ev.comment is not None:
            return _changed(ev, ev.issue, ev.comment, bot_login)
        if ev.action != "created" or ev.issue is None or ev.comment is None:
            return f"issue_comment.{_short(ev.action)} is not a new message"
        if ev.issue.state == "closed":
            return "the conversation is closed"
        item, author, text = ev.issue, ev.comment.user, ev.comment.body or ""
        association = ev.comment.author_association
        event_id = f"comment:{ev.comment.id}"

    if author is None or item is None:
        return "no author"
    if _is_bot(author, bot_login):
        return "written by a bot"
    pattern = _mention(bot_login)
    mentioned = bool(pattern.search(text))
    if mentioned:
        text = pattern.sub("", text).strip()
    return Incoming(
        thread=ThreadRef("github", "", ev.repository.full_name, str(item.number)),
        event_id=event_id,
        # The numeric id, which a rename does not change, keys budgets, refusals and access; the login is the name.
        author=Author(str(author.id) if author.id else author.login, author.login, avatar=author.avatar_url[:500]),
        text=text,
        mentioned=mentioned,
        association=association.upper() if association else None,  # for allow:/deny: associations
        labels=tuple(label.name for label in item.labels),
        raw=payload,
    )


def installation_id(payload: dict[str, Any]) -> int | None:
    inst = payload.get("installation")
    return int(inst["id"]) if isinstance(inst, dict) and isinstance(inst.get("id"), int) else None
