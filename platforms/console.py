"""The terminal as a platform, for ``bridge chat``: try a persona before wiring any chat service.

Each persona has its own terminal conversation, kept in the store like any other thread, so a
second ``bridge chat --persona rust-tutor`` picks up where the last one stopped. A paste is one
message, however long (:mod:`platforms.console_input`). :meth:`ConsolePlatform.interrupt` (Ctrl-C)
stops the answer being written at once: the core then records the message as failed, so it is
not answered again at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from bridge.attachments.hosts import FileHosts
from bridge.config import Config
from bridge.conversation.answering import TRUNCATED_NOTE
from bridge.platform import Inbox
from bridge.types import Attachment, Author, Incoming, Outgoing, ThreadRef
from platforms.console_input import is_terminal, raw_input_mode, read_lines, read_terminal

PLAIN_TRUNCATED_NOTE = "\n\n(" + TRUNCATED_NOTE.strip().strip("_").strip("()") + ")"


class ConsolePlatform:
    name = "console"

    def __init__(self, conversation: str, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.thread = ThreadRef("console", "", "terminal", conversation)
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._user = Author(getpass.getuser(), getpass.getuser())
        self._answered = asyncio.Event()
        self._interrupted = asyncio.Event()
        self._busy = False  # a message is waiting for its answer
        self.finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._terminal = contextlib.ExitStack()
        self._files: list[Attachment] = []  # ``/file PATH``: attached to the next message

    async def start(self, inbox: Inbox) -> None:
        self._task = asyncio.create_task(self._read(inbox))

    def _messages(self) -> asyncio.Queue[str]:
        """Input from a daemon thread: a blocked read must not keep the process alive at exit."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()

        def emit(message: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, message)

        if is_terminal(self._stdin):
            fd = self._stdin.fileno()
            self._terminal.enter_context(raw_input_mode(fd))
            args: tuple[Any, ...] = (fd, self._stdout, emit)
            target: Any = read_terminal
        else:
            args, target = (self._stdin, emit), read_lines
        threading.Thread(target=target, args=args, daemon=True, name="console-stdin").start()
        return queue

    async def _read(self, inbox: Inbox) -> None:
        messages = self._messages()
        try:
            while True:
                self._stdout.write("you> ")
                self._stdout.flush()
                message = await messages.get()
                if not message:  # end of input (Ctrl-D)
                    self._stdout.write("\n")
                    break
                text = message.strip()
                if text in ("/quit", "/exit"):
                    break
                if not text:
                    continue
                if text == "/file" or text.startswith("/file "):
                    self._attach(text.removeprefix("/file").strip())
                    continue
                self._answered.clear()
                self._interrupted.clear()
                files, self._files = tuple(self._files), []
                msg = Incoming(thread=self.thread, event_id=uuid.uuid4().hex, author=self._user, text=text,
                               direct=True, attachments=files)
                self._busy = True
                try:
                    if await inbox(msg):
                        await self._answered.wait()
                finally:
                    self._busy = False
        finally:
            self.finished.set()

    def _attach(self, typed: str) -> None:
        """``/file PATH``: the file goes with the next message (a question about it)."""
        path = Path(typed.strip("'\"")).expanduser() if typed else None
        if path is None or not path.is_file():
            self._stdout.write(f"(no file at {typed!r}: /file PATH attaches a file to your next message)\n"
                               if typed else "(/file PATH attaches a file to your next message)\n")
            return
        path = path.resolve()
        self._files.append(Attachment(path.name, path.as_uri(), path.stat().st_size))
        self._stdout.write(f"(attached {path.name}: it goes with your next message)\n")

    def file_hosts(self, thread: ThreadRef | None = None) -> FileHosts:
        """Files the person at the terminal attached with ``/file``: read from this machine."""
        return FileHosts("console", (), local=True)

    def interrupt(self) -> bool:
        """Ctrl-C: stop the answer being written and return True; False when there is none (quit)."""
        if not self._busy:
            return False
        self._interrupted.set()
        return True

    async def send(self, reply: Outgoing, snapshots: AsyncIterator[str]) -> None:
        self._stdout.write("bot> ")
        showing = asyncio.create_task(self._show(snapshots))
        interrupted = asyncio.create_task(self._interrupted.wait())
        try:
            await asyncio.wait({showing, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupted.cancel()
            if not showing.done():
                # Cancelling the reader closes the reply stream, and with it the LLM request; the
                # core sees an unfinished reply and records the message as failed (not re-answered).
                showing.cancel()
                await asyncio.gather(showing, return_exceptions=True)
                self._stdout.write(" [stopped]")
        self._stdout.write("\n")
        self._stdout.flush()
        self._answered.set()

    async def progress(self, reply: Outgoing, activity: str) -> None:
        """A tool started: say so inline, so a persona's tools can be seen working before any platform."""
        self._stdout.write(f"(using {activity}…) ")
        self._stdout.flush()

    async def _show(self, snapshots: AsyncIterator[str]) -> None:
        shown = ""
        async for raw in snapshots:
            snapshot = raw.replace(TRUNCATED_NOTE, PLAIN_TRUNCATED_NOTE)  # a terminal shows no Markdown
            # Print what is new; if the text was rewritten (an error note), print the remainder.
            new = snapshot[len(shown):] if snapshot.startswith(shown) else "\n" + snapshot
            self._stdout.write(new)
            self._stdout.flush()
            shown = snapshot

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._terminal.close()  # the terminal back in its usual mode

    def routes(self) -> list[web.RouteDef]:
        return []

    def status(self) -> dict[str, Any]:
        return {"ok": True}


def create(settings: Any, config: Config) -> ConsolePlatform:
    return ConsolePlatform(str(settings or config.default_persona))
