"""Logging what an attacker controls: a bounded, escaped excerpt, never the whole thing.

A request body, a header or a user's text can be megabytes long and contain newlines or terminal
escapes that forge log lines. :func:`excerpt` is what may be logged of such a value;
:class:`BoundedMessages` is a filter for third-party loggers (slack-bolt) whose messages may embed
request bodies.
"""

from __future__ import annotations

import logging

EXCERPT_CHARS = 80
MESSAGE_CHARS = 300


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr`` of the first ``limit`` characters (or bytes): one line, escaped, bounded."""
    if not isinstance(value, str | bytes):
        value = str(value)
    cut = value[:limit]
    more = f"…(+{len(value) - limit})" if len(value) > limit else ""
    return repr(cut) + more


class BoundedMessages(logging.Filter):
    """Rewrites each record's message to at most ``limit`` escaped characters (no newlines)."""

    def __init__(self, limit: int = MESSAGE_CHARS) -> None:
        super().__init__()
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string in a library: keep the template only
            message = str(record.msg)
        if len(message) > self.limit or not message.isprintable():
            record.msg = excerpt(message, self.limit)
            record.args = None
        return True
