"""Parsing a webhook body that was signed but may still be hostile: bounded, and never raising
anything but :class:`BadBody` (a plain reason for a ``400``).

The standard library's parser is used because it keeps lone surrogates (made storable later by
:func:`bridge.untrusted.text.storable`) instead of refusing a whole signed message; its recursion is bounded
by the interpreter (``RecursionError``, caught here) and the result is then held to ``MAX_DEPTH``,
so nothing downstream (Bolt parses the body again, pydantic, logging) recurses deeply.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # real Slack and GitHub payloads nest fewer than 10 levels


class BadBody(ValueError):
    """The body is not a JSON object we can read; ``str(exc)`` is a short reason, safe to return."""


def depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (a scalar is 0), counted without recursion; stops past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        stack.extend((child, level) for child in children if isinstance(child, dict | list))
    return deepest


def parse_object(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """``raw`` (UTF-8 bytes or text) as a JSON object, or :class:`BadBody` saying why not."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadBody("the body is not UTF-8") from None
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BadBody("the body nests too deeply") from None
    except ValueError:  # JSONDecodeError, and integers too long to convert
        raise BadBody("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadBody("the body is not a JSON object")
    if depth(data, max_depth) > max_depth:
        raise BadBody("the body nests too deeply")
    return data
