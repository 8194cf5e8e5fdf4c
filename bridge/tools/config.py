"""``tools.NAME`` in ``bridge.yaml``: one MCP server, started by the bridge (``command``) or reached
at a URL (``url``). Kept apart from :mod:`bridge.config` so that file only gains one key."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$"  # it prefixes tool names, which OpenAI limits to [A-Za-z0-9_-]


class ToolServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] | None = None  # stdio: the program and its arguments, run from the config file's folder
    url: str | None = None            # streamable HTTP, e.g. http://127.0.0.1:9000/mcp
    # The server's whole environment besides PATH, HOME, USER...: never the bridge's own secrets.
    env: dict[str, str] = {}
    timeout_s: float = Field(30.0, gt=0, le=600)           # one tool call
    max_result_chars: int = Field(20_000, ge=200, le=1_000_000)  # longer results are cut, keeping the beginning

    @model_validator(mode="after")
    def _one_transport(self) -> ToolServerConfig:
        if bool(self.command) == bool(self.url):
            raise ValueError("set exactly one of command (a program the bridge starts, e.g. "
                             "[\"python\", \"server.py\"]) or url (a streamable HTTP server, e.g. "
                             "http://127.0.0.1:9000/mcp)")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url: an http:// or https:// address of a streamable HTTP MCP server")
        return self
