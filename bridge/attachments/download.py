"""A bounded download of one attached file, from the platform's own hosts only.

Bounds (each a named value): the size the platform declares and the ``Content-Length`` are checked
before reading, and a body that keeps coming is cut as soon as it passes ``max_bytes``; redirects are
followed by hand, at most ``MAX_REDIRECTS``, each hop checked against the platform's hosts (so a
redirect cannot lead the bot into the local network); the whole download has ``DOWNLOAD_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp

from bridge.attachments import problems
from bridge.attachments.hosts import FileHosts
from bridge.types import Attachment

MAX_REDIRECTS = 3           # a platform's file URL redirects once or twice (GitHub → its storage)
DOWNLOAD_TIMEOUT_S = 60.0   # one file, redirects included
CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
PLATFORM_NAMES = {"github": "GitHub", "slack": "Slack", "discord": "Discord", "console": "the terminal"}


async def download(session: aiohttp.ClientSession, attachment: Attachment, hosts: FileHosts,
                   max_bytes: int) -> bytes:
    """The file's bytes; :class:`~bridge.attachments.problems.FileProblem` with a sentence otherwise."""
    name, platform = attachment.name, PLATFORM_NAMES.get(hosts.platform, hosts.platform)
    if attachment.size > max_bytes:
        raise problems.too_big(name, max_bytes)
    if attachment.url.startswith("file:") and hosts.local:
        return await asyncio.to_thread(_read_local, attachment, max_bytes)
    url = attachment.url
    try:
        async with asyncio.timeout(DOWNLOAD_TIMEOUT_S):
            for _ in range(MAX_REDIRECTS + 1):
                if not hosts.allows(url):
                    raise problems.foreign_host(name, platform)
                headers = dict(await hosts.headers()) if hosts.credentials_for(url) else {}
                async with session.get(url, headers=headers, allow_redirects=False) as resp:
                    if resp.status in _REDIRECTS and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status in (401, 403):
                        raise problems.refused(name, platform)
                    if resp.status in (404, 410):
                        raise problems.gone(name)
                    if resp.status != 200:
                        raise problems.unreachable(name)
                    if resp.content_length is not None and resp.content_length > max_bytes:
                        raise problems.too_big(name, max_bytes)
                    # Slack answers a download without a valid token with its sign-in page (200, HTML).
                    if hosts.platform == "slack" and resp.content_type == "text/html" and \
                            not attachment.mime.startswith("text/html"):
                        raise problems.refused(name, platform)
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        body += chunk
                        if len(body) > max_bytes:  # a lying Content-Length, or none: cut here
                            raise problems.too_big(name, max_bytes)
                    return bytes(body)
            raise problems.unreachable(name)
    except TimeoutError:
        raise problems.unreachable(name) from None
    except aiohttp.ClientError:
        raise problems.unreachable(name) from None


def _read_local(attachment: Attachment, max_bytes: int) -> bytes:
    path = Path(unquote(urlsplit(attachment.url).path))
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError:
        raise problems.gone(attachment.name) from None
    if len(data) > max_bytes:
        raise problems.too_big(attachment.name, max_bytes)
    return data
