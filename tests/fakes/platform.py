"""A queue-based fake platform for core tests (errbot's test backend idea): no wire format, just the
Platform interface, recording every snapshot of every reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bridge.attachments.hosts import FileHosts
from bridge.platform import Inbox
from bridge.types import Attachment, Author, Incoming, Outgoing, ThreadRef


@dataclass
class Sent:
    thread: ThreadRef
    snapshots: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.snapshots[-1] if self.snapshots else ""


class FakePlatform:
    def __init__(self, name: str = "github") -> None:
        self.files: FileHosts | None = None
        self.name = name
        self.inbox: Inbox | None = None
        self.sent: asyncio.Queue[Sent] = asyncio.Queue()
        self.fail_sends = 0
        self.hold: asyncio.Event | None = None  # when set by a test, delivery waits for it (a slow platform)
        self.read_all = 0  # replies whose text was read to the end (delivery may still be held)
        self.progress_seen: list[tuple[str, str]] = []  # (thread key, activity): the optional progress hook

    async def start(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def send(self, reply: Outgoing, snapshots: AsyncIterator[str]) -> None:
        record = Sent(reply.thread)
        async for s in snapshots:
            record.snapshots.append(s)
        self.read_all += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_sends:
            self.fail_sends -= 1
            raise ConnectionError("platform down")
        await self.sent.put(record)

    async def progress(self, reply: Outgoing, activity: str) -> None:
        self.progress_seen.append((reply.thread.key, activity))

    async def stop(self) -> None:
        pass

    def routes(self) -> list[web.RouteDef]:
        return []

    def file_hosts(self, thread: ThreadRef | None = None) -> FileHosts | None:
        """Where attached files may come from: set ``files`` in a test (None: no files are read)."""
        return self.files

    def status(self) -> dict[str, Any]:
        return {"ok": True}

    async def say(self, text: str, *, thread: str = "1", channel: str = "octo-org/octo-repo", event: str | None = None,
                  author: str = "alice", mentioned: bool = False, direct: bool = False, in_thread: bool = False,
                  is_bot: bool = False, association: str | None = "MEMBER", roles: tuple[str, ...] = (),
                  attachments: tuple[Attachment, ...] = ()) -> bool:
        """``association`` (GitHub's author_association) defaults to someone GitHub rules answer."""
        assert self.inbox is not None
        msg = Incoming(thread=ThreadRef(self.name, "", channel, thread), event_id=event or f"{thread}:{text}",
                       author=Author(author, author, is_bot), text=text, mentioned=mentioned, direct=direct,
                       in_thread=in_thread, association=association, roles=roles, attachments=attachments)
        return await self.inbox(msg)

    async def reply(self, timeout: float = 10) -> Sent:
        return await asyncio.wait_for(self.sent.get(), timeout)
