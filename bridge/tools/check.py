"""``bridge check --online`` for tools: start each server once, list its tools, stop it again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from bridge.tools.catalog import ToolManager
from bridge.tools.config import ToolServerConfig

CHECK_WAIT_S = 30.0  # a server that has not started and listed its tools by then is reported missing

Level = Literal["ok", "missing"]


def describe(name: str, config: ToolServerConfig) -> str:
    """How a server is reached, fit to print: the command's program, or the URL without credentials."""
    if config.command:
        return f"{name} (stdio: {config.command[0]}{' …' if len(config.command) > 1 else ''})"
    from urllib.parse import urlsplit

    url = urlsplit(config.url or "")
    return f"{name} (HTTP: {url.scheme}://{url.hostname}{f':{url.port}' if url.port else ''}{url.path})"


async def check_servers(configs: dict[str, ToolServerConfig], base_dir: Path,
                        wait_s: float = CHECK_WAIT_S) -> list[tuple[Level, str]]:
    manager = ToolManager(configs, base_dir)
    manager.start()
    try:
        await asyncio.gather(*(s.first_attempt(wait_s) for s in manager.servers.values()))
        out: list[tuple[Level, str]] = []
        for name, server in manager.servers.items():
            where = describe(name, server.config)
            if server.up:
                names = ", ".join(t.name for t in server.tools) or "none"
                out.append(("ok", f"tools: {where} offers {len(server.tools)} tool(s): {names}"))
            else:
                key = f"tools.{name}.command" if server.config.command else f"tools.{name}.url"
                out.append(("missing", f"tools: {where} did not answer ({server.error or 'no answer in time'}); "
                                       f"check {key}"))
        return out
    finally:
        await manager.stop()
