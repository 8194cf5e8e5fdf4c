"""The terminal as a platform, for ``bridge chat``: try a persona before wiring any chat service.

Each persona has its own terminal conversation, kept in the store like any other thread, so a
second ``bridge chat --persona rust-tutor`` picks up where the last one stopped.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any, TextIO

from aiohttp import web

from bridge.config import Config
from bridge.platform import Inbox
from bridge.types import Author, Incoming, Outgoing, ThreadRef


class ConsolePlatform:
    name = "console"

    def __init__(self, conversation: str, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._thread = ThreadRef("console", "", "terminal", conversation)
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._user = Author(getpass.getuser(), getpass.getuser())
        self._answered = asyncio.Event()
        self.finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, inbox: Inbox) -> None:
        self._task = asyncio.create_task(self._read(inbox))

    def _lines(self) -> asyncio.Queue[str]:
        """stdin lines from a daemon thread: a blocked read must not keep the process alive at exit."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()

        def pump() -> None:
            while True:
                line = self._stdin.readline()
                loop.call_soon_threadsafe(queue.put_nowait, line)
                if not line:
                    return

        threading.Thread(target=pump, daemon=True, name="console-stdin").start()
        return queue

    async def _read(self, inbox: Inbox) -> None:
        lines = self._lines()
        try:
            while True:
                self._stdout.write("you> ")
                self._stdout.flush()
                line = await lines.get()
                if not line:  # end of input (Ctrl-D)
                    self._stdout.write("\n")
                    break
                text = line.strip()
                if text in ("/quit", "/exit"):
                    break
                if not text:
                    continue
                self._answered.clear()
                msg = Incoming(thread=self._thread, event_id=uuid.uuid4().hex, author=self._user, text=text,
                               direct=True)
                if await inbox(msg):
                    await self._answered.wait()
        finally:
            self.finished.set()

    async def send(self, reply: Outgoing, snapshots: AsyncIterator[str]) -> None:
        shown = ""
        self._stdout.write("bot> ")
        async for snapshot in snapshots:
            # Print what is new; if the text was rewritten (an error note), print the remainder.
            new = snapshot[len(shown):] if snapshot.startswith(shown) else "\n" + snapshot
            self._stdout.write(new)
            self._stdout.flush()
            shown = snapshot
        self._stdout.write("\n")
        self._stdout.flush()
        self._answered.set()

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def routes(self) -> list[web.RouteDef]:
        return []

    def status(self) -> dict[str, Any]:
        return {"ok": True}


def create(settings: Any, config: Config) -> ConsolePlatform:
    return ConsolePlatform(str(settings or config.default_persona))
