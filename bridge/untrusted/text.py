"""Making platform text storable: what a hostile (or merely odd) payload can put in a ``str``.

JSON allows lone surrogates (``"\\ud800"``) and NUL characters; Python keeps them in a ``str``, but
SQLite's UTF-8 encoder refuses surrogates, and a message that cannot be stored is refused on every
redelivery. Each is replaced with U+FFFD, the character Unicode reserves for "something was here".
"""

from __future__ import annotations

import dataclasses
import re

from bridge.types import Incoming

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with lone surrogates and NUL characters replaced by U+FFFD; otherwise unchanged."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def storable_incoming(msg: Incoming) -> Incoming:
    """Every string of ``msg`` the store writes (text, author, thread, event id) made storable."""
    thread, author = msg.thread, msg.author
    return dataclasses.replace(
        msg,
        thread=dataclasses.replace(thread, workspace=storable(thread.workspace), channel=storable(thread.channel),
                                   thread=storable(thread.thread)),
        author=dataclasses.replace(author, id=storable(author.id), name=storable(author.name)),
        event_id=storable(msg.event_id),
        text=storable(msg.text),
        attachments=tuple(dataclasses.replace(a, name=storable(a.name), url=storable(a.url), mime=storable(a.mime))
                          for a in msg.attachments),
        context=storable(msg.context),
    )
