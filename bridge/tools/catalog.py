"""The tools a persona is offered, under names the model can use, and the calls made with them.

A tool keeps the name its server gives it; where two of a persona's servers offer the same name,
both are called ``SERVER__NAME`` instead, so neither hides the other. Names are also made to fit
what OpenAI-compatible APIs accept (letters, digits, ``_`` and ``-``, at most 64).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.tools.config import ToolServerConfig
from bridge.tools.results import ToolResult
from bridge.tools.servers import ToolServer

log = logging.getLogger(__name__)

FIRST_CONNECT_WAIT_S = 10.0  # right after start, an answer waits this long for a server's first connection
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
SEPARATOR = "__"


def _fit(name: str) -> str:
    return _UNSAFE.sub("_", name)[:64] or "tool"


@dataclass(frozen=True, slots=True)
class Offered:
    name: str        # as the model sees it
    server: str
    tool: str        # as the server knows it
    spec: dict[str, Any]  # the OpenAI ``tools`` entry


class Toolbox:
    """What one answer may call: the persona's tools as listed when the answer started."""

    def __init__(self, servers: dict[str, ToolServer], offered: list[Offered]) -> None:
        self._servers = servers
        self.offered = {o.name: o for o in offered}

    @property
    def specs(self) -> list[dict[str, Any]]:
        return [o.spec for o in self.offered.values()]

    async def call(self, name: str, arguments: str) -> ToolResult:
        """Run a call the model made: an invented name or arguments that are not JSON are answered too."""
        offered = self.offered.get(name)
        if offered is None:
            known = ", ".join(sorted(self.offered))[:2000] or "none"
            return ToolResult("unknown", f"There is no tool named {name[:80]!r}. The tools you can call: {known}.")
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return ToolResult("error", "The arguments were not valid JSON; call the tool again with a JSON object.")
        if not isinstance(args, dict):
            return ToolResult("error", "The arguments must be a JSON object.")
        return await self._servers[offered.server].call(offered.tool, args)


class ToolManager:
    """Every server under ``tools:``, started with the bridge and kept until it stops."""

    def __init__(self, configs: dict[str, ToolServerConfig], base_dir: Path) -> None:
        self.servers = {name: ToolServer(name, cfg, base_dir) for name, cfg in configs.items()}

    def start(self, names: set[str] | None = None) -> None:
        """Start these servers (all by default) in the background: one that is down does not hold the
        bridge up. Any other server starts when an answer first needs it, then is kept like the rest."""
        for name, server in self.servers.items():
            if names is None or name in names:
                server.start()

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.servers.values()))

    async def toolbox(self, names: list[str]) -> Toolbox:
        """The tools of these servers that are known now (a server never reached offers none)."""
        servers = [self.servers[n] for n in names if n in self.servers]
        for server in servers:
            server.start()
        await asyncio.gather(*(s.first_attempt(FIRST_CONNECT_WAIT_S) for s in servers))
        counts = Counter(_fit(t.name) for s in servers for t in s.tools)
        offered: list[Offered] = []
        for server in servers:
            for tool in server.tools:
                name = _fit(tool.name)
                if counts[name] > 1:
                    name = _fit(f"{server.name}{SEPARATOR}{tool.name}")
                spec = {"type": "function", "function": {
                    "name": name, "description": (tool.description or tool.title or "")[:1024],
                    "parameters": tool.input_schema or {"type": "object", "properties": {}}}}
                offered.append(Offered(name, server.name, tool.name, spec))
        return Toolbox(self.servers, offered)
