"""What a tool returned, as bounded text for the model.

A tool's result goes back to the model as one ``tool`` message. It is capped in characters
(``max_result_chars``, per server): the beginning is kept, since that is where search results and
file heads put what matters, and the model is told the result was cut and by how much.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["ok", "error", "timeout", "unavailable", "unknown"]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """One call's outcome: ``ok``, or why not, with the text the model sees either way."""

    outcome: Outcome
    text: str
    cut: bool = False


def cap(text: str, limit: int) -> tuple[str, bool]:
    """The first ``limit`` characters and a note saying how much was left out."""
    if len(text) <= limit:
        return text, False
    return (text[:limit] + f"\n\n[The result was cut: it had {len(text):,} characters and only the first "
            f"{limit:,} are shown. Ask for something narrower if you need the rest.]"), True


def to_text(content: list[Any], structured: Any, is_error: bool) -> str:
    """Text blocks as they are; other blocks named rather than inlined (the model reads text)."""
    parts: list[str] = []
    for block in content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(block.text))
        elif kind == "resource":
            resource = block.resource
            parts.append(str(getattr(resource, "text", None) or f"[a binary resource: {resource.uri}]"))
        elif kind == "resource_link":
            parts.append(f"[a resource: {block.uri}]")
        else:
            parts.append(f"[{kind or 'a'} content, not shown]")
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(parts) or "(the tool returned nothing)"
    return f"The tool reported an error: {text}" if is_error else text
