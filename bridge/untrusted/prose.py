"""The prose of a Markdown reply, apart from its code and URLs (for outbound rewriting).

Mention neutralising must not touch code (a Python ``@decorator`` copied from a reply must stay
exact, and no platform notifies from code) nor URLs (``https://example.com/@name`` must stay a
working link). Fenced blocks (``` or ~~~, closed or running to the end) and inline code spans
are code; ``scheme://…`` runs are URLs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_LITERAL = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`|\b[A-Za-z][A-Za-z0-9+.-]*://[^\s<>`]*", re.S)


def map_prose(text: str, rewrite: Callable[[str], str]) -> str:
    """``text`` with ``rewrite`` applied to every stretch outside code and URLs."""
    out: list[str] = []
    pos = 0
    for m in _LITERAL.finditer(text):
        out.append(rewrite(text[pos:m.start()]))
        out.append(m.group())
        pos = m.end()
    out.append(rewrite(text[pos:]))
    return "".join(out)
