"""The files attached to an issue or comment: the ``user-attachments`` links GitHub writes into the body.

GitHub has no list of attachments: uploading a file puts a link in the Markdown
(``[lease.pdf](https://github.com/user-attachments/files/123/lease.pdf)``, an image as
``![shot](https://github.com/user-attachments/assets/UUID)`` or ``<img src=...>``). Only such links on
GitHub's own hosts count (github.com, ``*.githubusercontent.com``, or the origin of a GitHub
Enterprise ``api_url``); any other URL written in a message is text, never fetched. Pure functions.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from bridge.attachments.hosts import FileHosts
from bridge.types import Attachment

MAX_FILES = 10  # attachment links read from one body
_LINK = re.compile(r"(!?)\[([^\]\n]{0,200})\]\((https?://[^\s)]+)\)|<img[^>]*\bsrc=\"(https?://[^\"]+)\"[^>]*>"
                   r"|(https?://[^\s)<>\"'\]]+)")
_ALT = re.compile(r"\balt=\"([^\"]{0,200})\"")


def _is_attachment(url: str) -> bool:
    parts = urlsplit(url)
    return "/user-attachments/" in parts.path or (parts.hostname or "") == "user-images.githubusercontent.com"


def attachment_links(body: str, hosts: FileHosts) -> tuple[Attachment, ...]:
    """The attachment links of ``body``, in order, each once."""
    out: list[Attachment] = []
    seen: set[str] = set()
    for m in _LINK.finditer(body):
        label, url = m.group(2) or "", m.group(3) or m.group(4) or m.group(5) or ""
        if m.group(4):
            alt = _ALT.search(m.group(0))
            label = alt.group(1) if alt else ""
        if url in seen or not _is_attachment(url) or not hosts.allows(url):
            continue
        seen.add(url)
        last = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
        name = label.strip() if "." in label else (last if "." in last else (label.strip() or last or "file"))
        out.append(Attachment(name[:200], url))
        if len(out) == MAX_FILES:
            break
    return tuple(out)
