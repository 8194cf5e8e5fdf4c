"""Which hosts a platform's files may come from, and the credentials that go with them.

Each platform adapter describes its own file hosts (the core never imports a platform); the
downloader refuses every other URL, including one a platform host redirects to. Credentials are
only sent to ``credentialed`` hosts, so a redirect to a signed storage URL never carries the token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


async def _no_headers() -> Mapping[str, str]:
    return {}


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL (the port always written), lower case; "" when it has none."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


def _matches(url: str, patterns: tuple[str, ...]) -> bool:
    """``patterns`` are origins (``https://files.slack.com``) or ``https://*.suffix`` wildcards."""
    have = origin(url)
    if not have:
        return False
    scheme, _, hostport = have.partition("://")
    host = hostport.rsplit(":", 1)[0]
    for pattern in patterns:
        if pattern.startswith(f"{scheme}://*."):
            suffix = pattern.split("://*.", 1)[1].lower()
            if host.endswith("." + suffix) and have.endswith(":443" if scheme == "https" else ":80"):
                return True
        elif origin(pattern) == have:
            return True
    return False


@dataclass(frozen=True, slots=True)
class FileHosts:
    """What a platform lets the core download: ``allowed`` origins, and ``headers`` for ``credentialed`` ones.

    ``local`` is for the terminal (``bridge chat``): ``file:`` paths its operator typed may be read.
    """

    platform: str
    allowed: tuple[str, ...]
    credentialed: tuple[str, ...] = ()
    headers: Callable[[], Awaitable[Mapping[str, str]]] = field(default=_no_headers)
    local: bool = False

    def allows(self, url: str) -> bool:
        if url.startswith("file:"):
            return self.local
        return _matches(url, self.allowed)

    def credentials_for(self, url: str) -> bool:
        return _matches(url, self.credentialed)


def api_origin(api_url: str, default_api_url: str) -> tuple[str, ...]:
    """The origin of an overridden ``api_url`` (a GitHub Enterprise server, a test's loopback fake)."""
    if origin(api_url) and origin(api_url) != origin(default_api_url):
        return (origin(api_url),)
    return ()
