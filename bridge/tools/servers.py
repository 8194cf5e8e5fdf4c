"""One connection per MCP server, kept open while the bridge runs.

A stdio server is a child process started with the config file's folder as its working directory
and an environment of its own: the ``mcp`` SDK passes only PATH, HOME, USER, SHELL, TERM and
LOGNAME, plus the server's ``env``, so the bridge's tokens and keys never reach it. A streamable
HTTP server is reached at its URL.

Each server has a keeper task: connect, list the tools, then watch the connection (the server's
change notifications re-list the tools; a ping every :data:`PING_EVERY_S` notices a server that
went away quietly). When the connection ends or never starts, the keeper tries again with backoff,
so a server down at start, or one that dies, is back once it can be: nothing here stops the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.subscriptions import ListenNotSupportedError
from mcp.shared.exceptions import MCPError

from bridge.tools.config import ToolServerConfig
from bridge.tools.results import ToolResult, cap, to_text

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.5     # first wait before connecting again, doubled after each failure...
RETRY_MAX_S = 30.0    # ...up to this
PING_EVERY_S = 15.0   # an idle connection is checked this often
CONNECT_TIMEOUT_S = 20.0  # starting a server and its handshake
STOP_TIMEOUT_S = 10.0     # closing it (the SDK gives a stdio server 2 s to exit, then terminates, then kills)


class ToolServer:
    """One MCP server: its tools as last listed, and calls to them."""

    def __init__(self, name: str, config: ToolServerConfig, base_dir: Path) -> None:
        self.name = name
        self.config = config
        self._base_dir = base_dir
        self.tools: list[types.Tool] = []      # the last listing (kept while down: a call then says why)
        self.error: str | None = None          # why it is down, in words fit for a log
        self._client: Client | None = None
        self._tried = asyncio.Event()          # the first connection attempt is over, however it went
        self._broken = asyncio.Event()
        self._relist = asyncio.Event()
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self.connections = 0                   # how many times it connected (a restart adds one)

    @property
    def up(self) -> bool:
        return self._client is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name=f"mcp:{self.name}")

    async def stop(self) -> None:
        """Close the connection (a stdio server is asked to exit, then killed); never hangs the bridge's stop."""
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=STOP_TIMEOUT_S)
            if not done:
                log.warning("tools: %s did not close within %.0f s; leaving it", self.name, STOP_TIMEOUT_S)
            self._task = None

    async def first_attempt(self, timeout: float) -> None:
        """Wait (at most ``timeout``) until the server was tried once: right after start, its tools."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tried.wait(), timeout)

    def _client_for(self) -> Client:
        if self.config.command:
            params = StdioServerParameters(command=self.config.command[0], args=self.config.command[1:],
                                           env=dict(self.config.env), cwd=self._base_dir)
            return Client(params, read_timeout_seconds=CONNECT_TIMEOUT_S, message_handler=self._notified)
        assert self.config.url is not None
        return Client(self.config.url, read_timeout_seconds=CONNECT_TIMEOUT_S, message_handler=self._notified)

    async def _notified(self, message: Any) -> None:
        """An older (2025) server says its tools changed with a notification rather than a listen stream."""
        if isinstance(message, types.ToolListChangedNotification):
            self._relist.set()

    async def _keep(self) -> None:
        delay = RETRY_MIN_S
        while True:
            self._broken.clear()
            try:
                client = self._client_for()
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await client.__aenter__()
                try:
                    await self._list(client)
                    self._client = client
                    self.connections += 1
                    self.error = None
                    delay = RETRY_MIN_S
                    log.info("tools: %s connected, %d tool(s): %s", self.name, len(self.tools),
                             ", ".join(t.name for t in self.tools))
                    self._tried.set()
                    await self._watch(client)
                    log.warning("tools: %s disconnected; connecting again", self.name)
                finally:
                    self._client = None
                    with contextlib.suppress(Exception):  # in this task: the SDK's cancel scopes belong to it
                        await client.__aexit__(None, None, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.error = _describe(exc)
                log.warning("tools: %s is not available (%s); trying again in %.0f s", self.name, self.error,
                            delay)
            self._tried.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _list(self, client: Client) -> None:
        tools: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(100):  # a server that pages forever must not hang the keeper
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        self.tools = tools

    async def _watch(self, client: Client) -> None:
        """Until the connection ends: re-list on change notifications, ping when idle."""
        self._listening = False
        listener = asyncio.create_task(self._listen(client))
        try:
            while not self._broken.is_set():
                waiters = {asyncio.ensure_future(self._broken.wait()), asyncio.ensure_future(self._relist.wait())}
                done, pending = await asyncio.wait(waiters, timeout=PING_EVERY_S,
                                                   return_when=asyncio.FIRST_COMPLETED)
                for w in pending:
                    w.cancel()
                if self._broken.is_set():
                    return
                try:
                    async with asyncio.timeout(CONNECT_TIMEOUT_S):
                        if self._relist.is_set():
                            self._relist.clear()
                            await self._list(client)
                            log.info("tools: %s changed its tools: %s", self.name,
                                     ", ".join(t.name for t in self.tools))
                        elif not done and not self._listening:  # a listening stream already watches it
                            await client.send_ping()
                except Exception as exc:
                    log.info("tools: %s stopped answering (%s)", self.name, _describe(exc))
                    return
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def _listen(self, client: Client) -> None:
        """Change notifications (protocol 2026-07-28); the stream breaking means the server is gone."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                self._listening = True
                async for _ in subscription:
                    self._relist.set()
        except ListenNotSupportedError:
            return  # an older server: pings watch it instead
        except MCPError as exc:
            if exc.code == types.METHOD_NOT_FOUND:
                return
            self._broken.set()
        except Exception:
            self._broken.set()
        else:
            self._broken.set()

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Run one tool within ``timeout_s``; every failure becomes a result the model reads."""
        client = self._client
        if client is None:
            return ToolResult("unavailable", f"The tool server {self.name!r} is not available right now; "
                                             "answer without it, and say so if it matters.")
        limit = self.config.timeout_s
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit + 1):  # the SDK's own timeout first; this one if it hangs anyway
                result = await client.call_tool(tool, arguments, read_timeout_seconds=limit)
        except TimeoutError:
            return _timed_out(tool, limit)
        except MCPError as exc:
            if exc.code == types.REQUEST_TIMEOUT or "timed out" in exc.error.message.lower() \
                    or time.monotonic() - started >= limit:
                return _timed_out(tool, limit)
            if exc.code == types.CONNECTION_CLOSED:
                self._broken.set()
                return ToolResult("unavailable", f"The tool server {self.name!r} stopped during the call.")
            return ToolResult("error", f"The tool {tool!r} failed: {cap(exc.error.message, 500)[0]}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._broken.set()
            log.warning("tools: calling %s on %s failed: %s", tool, self.name, _describe(exc))
            return ToolResult("unavailable", f"The tool server {self.name!r} stopped responding during the call.")
        text, cut = cap(to_text(list(result.content), result.structured_content, bool(result.is_error)),
                        self.config.max_result_chars)
        return ToolResult("error" if result.is_error else "ok", text, cut)


def _timed_out(tool: str, limit: float) -> ToolResult:
    return ToolResult("timeout", f"The tool {tool!r} did not answer within {limit:g} s.")


def _describe(exc: BaseException) -> str:
    """A short reason for logs: the exception's type (and an OS error's text), never a URL's secrets."""
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    if isinstance(exc, MCPError):
        return f"MCPError: {exc.error.message[:200]}"
    return type(exc).__name__
