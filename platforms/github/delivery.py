"""Posting a GitHub reply exactly once, and showing 👀 while it is being written.

Every comment ends with a hidden marker naming the reply and the part (:func:`marker`). A crash
between GitHub's answer and ``reply.record`` leaves a comment the store does not know of; so a
recovering reply first reads the issue's newest comments for its own markers, records what it
finds, and posts only the parts that are missing. Retries (429, secondary rate limits, 5xx) are
githubkit's ``auto_retry``, which waits for ``Retry-After`` / ``x-ratelimit-reset``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from githubkit import GitHub
from githubkit.exception import RequestFailed

from bridge.llm.chunking import split_message
from bridge.llm.streaming import last_snapshot
from bridge.types import Outgoing
from platforms.github.formatting import neutralise_mentions

log = logging.getLogger(__name__)

MARKER_ROOM = 200   # characters kept free in each comment for the hidden marker
EYES_AFTER_S = 2.0  # a reply not ready by then gets a 👀 on the message it answers
PER_PAGE = 100      # GitHub's largest page
MAX_PAGES = 10      # a recovering reply looks at most at the 1,000 newest comments
_MARKER = re.compile(r"<!-- bridge:reply (\S+) part (\d+) -->\s*$")


def _safe(key: str) -> str:
    return re.sub(r"[^\w:.#/@-]", "_", key)[:120]


def safe_key(key: str) -> str:
    """The reply key as its marker writes it (what :func:`read_marker` gives back)."""
    return _safe(key)


def marker(key: str, part: int) -> str:
    """A hidden HTML comment naming the reply and part: recognisable after a crash, invisible to readers."""
    return f"\n\n<!-- bridge:reply {_safe(key)} part {part} -->"


def read_marker(body: str) -> tuple[str, int] | None:
    """The (key, part) a comment's marker names, or None."""
    found = _MARKER.search(body)
    return (found.group(1), int(found.group(2))) if found else None


@dataclass(frozen=True, slots=True)
class Issue:
    owner: str
    repo: str
    number: int


def _last_page(response: Any) -> int:
    """The page number of ``rel="last"`` in GitHub's Link header (1 when there is one page)."""
    last = response.links.get("last")
    if not last:
        return 1
    pages = parse_qs(urlsplit(str(last.get("url", ""))).query).get("page")
    return int(pages[0]) if pages else 1


async def find_posted(client: GitHub[Any], issue: Issue, *, key: str, login: str, parts: int) -> dict[int, str]:
    """Part number → comment id of the comments ``login`` already posted for ``key``, newest pages first.

    Only the bot's own comments count: anyone can write a marker into a comment of theirs.
    """
    safe = _safe(key)
    found: dict[int, str] = {}

    def scan(response: Any) -> None:
        for comment in response.json():
            named = read_marker(str(comment.get("body") or ""))
            user = comment.get("user") or {}
            if named and named[0] == safe and user.get("login") == login:
                found.setdefault(named[1], str(comment["id"]))

    async def page(n: int) -> Any:
        resp = await client.rest.issues.async_list_comments(issue.owner, issue.repo, issue.number,
                                                            per_page=PER_PAGE, page=n)
        return resp.raw_response

    first = await page(1)
    last = _last_page(first)
    for n in range(last, max(last - MAX_PAGES, 0), -1):
        scan(first if n == 1 else await page(n))
        if all(i in found for i in range(parts)):
            break
    return found


@dataclass
class Eyes:
    """A 👀 reaction on the message being answered, while the answer is written. Never fails a reply."""

    client: GitHub[Any]
    issue: Issue
    answers: str  # "comment:<id>", "review_comment:<id>" react on that comment; anything else on the issue
    login: str
    guard: Callable[[], None] = lambda: None  # Outgoing.guard: re-checked when the timer fires, before acting
    ids: list[int] = field(default_factory=list)
    _showing: asyncio.Task[None] | None = None

    def _comment(self) -> int | None:
        kind, _, ident = self.answers.partition(":")
        return int(ident) if kind in ("comment", "review_comment") and ident.isdigit() else None

    @property
    def _review(self) -> bool:
        return self.answers.startswith("review_comment:")

    def start(self) -> None:
        """Show 👀 in the background: a slow or rate-limited reaction never holds the reply back."""
        if self._showing is None:
            self._showing = asyncio.create_task(self.show())

    def cancel(self) -> None:
        if self._showing is not None:
            self._showing.cancel()

    async def show(self) -> None:
        i, comment = self.issue, self._comment()
        try:
            self.guard()
            if comment is not None and self._review:
                resp = await self.client.rest.reactions.async_create_for_pull_request_review_comment(
                    i.owner, i.repo, comment, data={"content": "eyes"})
            elif comment is not None:
                resp = await self.client.rest.reactions.async_create_for_issue_comment(
                    i.owner, i.repo, comment, data={"content": "eyes"})
            else:
                resp = await self.client.rest.reactions.async_create_for_issue(
                    i.owner, i.repo, i.number, data={"content": "eyes"})
            self.ids.append(resp.parsed_data.id)
        except Exception as exc:  # a reaction is a courtesy: the reply goes on without it
            log.info("github: could not add 👀 to %s: %s", self.answers, type(exc).__name__)

    async def adopt(self) -> None:
        """Find the 👀 an interrupted attempt left, so that it is removed with ours."""
        i, comment = self.issue, self._comment()
        try:
            if comment is not None and self._review:
                resp = await self.client.rest.reactions.async_list_for_pull_request_review_comment(
                    i.owner, i.repo, comment, content="eyes", per_page=100)
            elif comment is not None:
                resp = await self.client.rest.reactions.async_list_for_issue_comment(
                    i.owner, i.repo, comment, content="eyes", per_page=100)
            else:
                resp = await self.client.rest.reactions.async_list_for_issue(
                    i.owner, i.repo, i.number, content="eyes", per_page=100)
            self.ids.extend(r.id for r in resp.parsed_data if r.user is not None and r.user.login == self.login)
        except Exception as exc:
            log.info("github: could not list reactions on %s: %s", self.answers, type(exc).__name__)

    async def clear(self) -> None:
        if self._showing is not None:
            await asyncio.gather(self._showing, return_exceptions=True)
        i, comment = self.issue, self._comment()
        for rid in dict.fromkeys(self.ids):
            try:
                self.guard()  # lost the session: its new holder adopts and removes the 👀
                if comment is not None and self._review:
                    await self.client.rest.reactions.async_delete_for_pull_request_comment(i.owner, i.repo, comment,
                                                                                          rid)
                elif comment is not None:
                    await self.client.rest.reactions.async_delete_for_issue_comment(i.owner, i.repo, comment, rid)
                else:
                    await self.client.rest.reactions.async_delete_for_issue(i.owner, i.repo, i.number, rid)
            except Exception as exc:
                log.info("github: could not remove 👀 from %s: %s", self.answers, type(exc).__name__)
        self.ids.clear()

    @asynccontextmanager
    async def around(self, *, recovering: bool) -> AsyncIterator[None]:
        """While a reply is written and posted: a recovering reply first adopts an earlier attempt's 👀;
        the 👀 is removed at the end, whatever happened, except when stopping (the next attempt adopts it)."""
        if recovering:
            await self.adopt()
        try:
            yield
        except asyncio.CancelledError:
            self.cancel()
            raise
        except Exception:
            await self.clear()
            raise
        await self.clear()


@dataclass
class Activity:
    """What an answer is busy with (the core's progress hook): 👀 at once, and the tools it used."""

    busy: asyncio.Event = field(default_factory=asyncio.Event)
    tools: list[str] = field(default_factory=list)

    def details(self) -> str:
        """A collapsed list of the tools used, for the end of the answer ("" when none was)."""
        if not self.tools:
            return ""
        counts: dict[str, int] = {}
        for tool in self.tools:
            counts[tool] = counts.get(tool, 0) + 1
        lines = "\n".join(f"- `{name}`" + (f" ×{n}" if n > 1 else "") for name, n in counts.items())
        return f"\n\n<details><summary>Tools used ({len(self.tools)})</summary>\n\n{lines}\n</details>"


async def final_text(snapshots: AsyncIterator[str], eyes: Eyes, activity: Activity | None = None) -> str:
    """The finished text; 👀 goes up if it takes longer than :data:`EYES_AFTER_S`, or at once when a
    tool starts."""
    text = asyncio.ensure_future(last_snapshot(snapshots))
    busy = asyncio.ensure_future(activity.busy.wait()) if activity is not None else None
    try:
        done, _ = await asyncio.wait({text} | ({busy} if busy else set()), timeout=EYES_AFTER_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if text not in done:
            eyes.start()
        return await text
    finally:
        for task in (text, busy):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


async def _post(client: GitHub[Any], issue: Issue, body: str) -> str:
    comment = await client.rest.issues.async_create_comment(issue.owner, issue.repo, issue.number,
                                                            data={"body": body})
    return str(orjson.loads(comment.content)["id"])  # the typed model is ~40 fields we do not read


async def _correct(client: GitHub[Any], issue: Issue, reply: Outgoing, posted: list[str],
                   parts: list[str]) -> list[str]:
    """Make the comments an interrupted attempt posted say this text; returns those still standing.

    What was posted may be another text: a "⚠️ the model failed" notice whose attempt died before
    the failure was recorded, then answered for real after the restart. Counting parts would take
    that notice for the answer, so each posted part is read and edited when it differs; parts
    beyond the new text's are deleted.
    """
    kept: list[str] = []
    for i, cid in enumerate(posted):
        try:
            reply.guard()
            if i >= len(parts):
                await client.rest.issues.async_delete_comment(issue.owner, issue.repo, int(cid))
                continue
            current = orjson.loads((await client.rest.issues.async_get_comment(issue.owner, issue.repo,
                                                                               int(cid))).content)
        except RequestFailed as exc:
            if exc.response.status_code != 404:
                raise
            break  # deleted by someone: this part and the ones after it are posted again
        body = parts[i] + marker(reply.key, i)
        if str(current.get("body") or "") != body:
            log.info("github: part %d of %s showed another text; editing it", i, reply.key)
            reply.guard()
            await client.rest.issues.async_update_comment(issue.owner, issue.repo, int(cid), data={"body": body})
        kept.append(cid)
    if kept != posted:
        await reply.record(kept)
    return kept


async def deliver(client: GitHub[Any], issue: Issue, reply: Outgoing, snapshots: AsyncIterator[str], *,
                  login: str, limit: int, activity: Activity | None = None) -> None:
    """Post the finished text, one comment per part, each part once; 👀 while it is being written."""
    eyes = Eyes(client, issue, reply.answers, login, reply.guard)
    async with eyes.around(recovering=reply.recovering):
        text = neutralise_mentions(await final_text(snapshots, eyes, activity))  # before splitting: it adds chars
        if activity is not None:
            text += activity.details()
        parts = split_message(text, limit)
        posted = list(reply.posted)
        if reply.recovering and len(posted) < len(parts):
            found = await find_posted(client, issue, key=reply.key, login=login, parts=len(parts))
            before = len(posted)
            while len(posted) < len(parts) and len(posted) in found:
                posted.append(found[len(posted)])
            if len(posted) > before:
                log.info("github: %d comment(s) of %s were posted before a restart; not posting them again",
                         len(posted) - before, reply.key)
                await reply.record(posted)
        if reply.recovering and posted:
            posted = await _correct(client, issue, reply, posted, parts)
        for i in range(len(posted), len(parts)):
            reply.guard()
            posted.append(await _post(client, issue, parts[i] + marker(reply.key, i)))
            await reply.record(posted)
