"""An MCP server for the tool tests, written with the ``mcp`` SDK: run over stdio by the bridge
(``python tests/mcp_server.py NAME``), or served over streamable HTTP in-process (:func:`build`).

Its tools cover what the bridge must survive: a plain lookup, one that waits for a partner (it
only finishes when two calls run at the same time), one that hangs, one that raises, one that
kills its own process, an oversized result, the environment it was given, and one that adds a
tool and says so.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer


def build(name: str) -> MCPServer:
    server = MCPServer(name)

    @server.tool()
    def lookup(term: str) -> str:
        """Look a term up in the glossary."""
        return f"{name}: {term} means something precise"

    @server.tool()
    def meet(me: str, partner: str, folder: str) -> str:
        """Arrive, then wait (at most 10 s) for the partner to arrive too (run in a worker thread)."""
        Path(folder, me).touch()
        for _ in range(500):
            if Path(folder, partner).exists():
                return f"{me} met {partner}"
            time.sleep(0.02)
        return f"{me} waited alone"

    @server.tool()
    async def hang() -> str:
        """Never answers."""
        await asyncio.sleep(3600)
        return "late"

    @server.tool()
    def hold(flag: str) -> str:
        """Answers once the file ``flag`` exists (a test releases it; at most 60 s)."""
        Path(flag + ".started").touch()
        for _ in range(3000):
            if Path(flag).exists():
                return "released"
            time.sleep(0.02)
        return "never released"

    @server.tool()
    def fail() -> str:
        """Always raises."""
        raise RuntimeError("the backend is on fire")

    @server.tool()
    def die() -> str:
        """Kills the server process mid-call."""
        os._exit(3)

    @server.tool()
    def big(size: int) -> str:
        """A result of ``size`` characters."""
        return ("0123456789" * (size // 10 + 1))[:size]

    @server.tool()
    def env(variable: str) -> str:
        """One variable of the server's environment, or <unset>."""
        return os.environ.get(variable, "<unset>")

    @server.tool()
    async def grow(ctx: Context) -> str:
        """Adds a tool named ``extra`` and tells the client its tools changed."""
        server.add_tool(lambda: "extra!", name="extra", description="Added at run time.")
        await ctx.notify_tools_changed()
        return "grown"

    return server


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else "test").run()
