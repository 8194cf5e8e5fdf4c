"""Putting the model's tool calls together from what the server sends.

Streamed, a call arrives in pieces keyed by ``index``: the id and name once, the JSON arguments
in fragments. Not streamed, each call arrives whole. Either way the result is a tuple of
:class:`~bridge.llm.client.ToolCall`; a call without an id gets one, since every call must be
answered by its id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.llm.client import ToolCall

MAX_CALLS = 32           # per model turn: more is a confused model, not a plan
MAX_ARGUMENT_CHARS = 100_000


class ToolCalls:
    def __init__(self) -> None:
        self._parts: dict[int, dict[str, str]] = {}

    def add_deltas(self, deltas: Any) -> None:
        for delta in deltas or ():
            if not isinstance(delta, dict):
                continue
            index = delta.get("index")
            index = index if isinstance(index, int) else len(self._parts)
            if index not in self._parts and len(self._parts) >= MAX_CALLS:
                continue
            part = self._parts.setdefault(index, {"id": "", "name": "", "arguments": ""})
            function = delta.get("function") or {}
            if delta.get("id"):
                part["id"] = str(delta["id"])
            if function.get("name") and not part["name"]:
                part["name"] = str(function["name"])
            if function.get("arguments") and len(part["arguments"]) < MAX_ARGUMENT_CHARS:
                part["arguments"] += str(function["arguments"])

    def add_whole(self, calls: Any) -> None:
        for i, call in enumerate(calls or ()):
            if isinstance(call, dict):
                self.add_deltas([{**call, "index": i}])

    def done(self) -> tuple[ToolCall, ...]:
        from bridge.llm.client import ToolCall

        out = []
        for n, (_, part) in enumerate(sorted(self._parts.items())):
            if part["name"]:
                out.append(ToolCall(part["id"] or f"call_{n}", part["name"], part["arguments"]))
        return tuple(out)
