"""Outbound text for GitHub: the model's reply must not notify anyone.

GitHub notifies ``@user`` and ``@org/team`` wherever they appear in a comment's prose. A zero-width
space after the ``@`` (the way dependency bots quote release notes) keeps the text readable and
copyable as a name while GitHub no longer sees a mention. Code spans, code blocks and URLs are left
exactly as written (GitHub does not notify from them), and so are e-mail addresses (``a@b.com``:
an ``@`` after a letter or digit is no mention).
"""

from __future__ import annotations

import re

from bridge.untrusted.prose import map_prose

ZWSP = "\u200b"
# An @ not preceded by a letter or digit, followed by a login's first character.
_MENTION = re.compile(r"(?<![A-Za-z0-9])@(?=[A-Za-z0-9])")


def neutralise_mentions(text: str) -> str:
    """``text`` with every ``@login`` / ``@org/team`` outside code and URLs made inert."""
    if "@" not in text:
        return text
    return map_prose(text, lambda prose: _MENTION.sub("@" + ZWSP, prose))
