"""Files a fake platform serves, the way the platform does: behind its credentials or signed URLs.

Each fake mounts a :class:`FileShelf` on its own server. Tests put files on it, then read how
often each was downloaded and with which credentials, and how many bytes a hostile one sent before
the client hung up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Shelved:
    data: bytes
    content_type: str = "application/octet-stream"
    endless: bool = False            # no Content-Length, and the body never ends (a lying declared size)
    downloads: int = 0
    sent: int = 0                    # bytes written to the client, endless files included
    headers_seen: list[str] = field(default_factory=list)
    hung_up: bool = False            # an endless body stopped because the client closed the connection


class FileShelf:
    """``path`` → file. ``auth``: the Authorization header a download needs (None: public/signed)."""

    def __init__(self, auth: str | None = None, *, refuse_with_html: bool = False) -> None:
        self.auth = auth
        self.refuse_with_html = refuse_with_html  # Slack: a download without the token gets its sign-in page
        self.files: dict[str, Shelved] = {}
        self.refused = 0

    def put(self, path: str, data: bytes, content_type: str = "application/octet-stream", *,
            endless: bool = False) -> Shelved:
        shelved = self.files[path] = Shelved(data, content_type, endless)
        return shelved

    def downloads(self) -> int:
        return sum(f.downloads for f in self.files.values())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        shelved = self.files.get(request.path)
        if shelved is None:
            return web.Response(status=404, text="Not Found")
        shelved.headers_seen.append(request.headers.get("Authorization", ""))
        if self.auth is not None and request.headers.get("Authorization") != self.auth:
            self.refused += 1
            if self.refuse_with_html:
                return web.Response(status=200, content_type="text/html", text="<html>Sign in to Slack</html>")
            return web.Response(status=404, text="Not Found")
        shelved.downloads += 1
        if not shelved.endless:
            shelved.sent += len(shelved.data)
            return web.Response(body=shelved.data, content_type=shelved.content_type)
        response = web.StreamResponse(headers={"Content-Type": shelved.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = shelved.data or b"\0" * 65536
        try:
            for _ in range(100_000):  # 6.5 GB, unless the client hangs up
                await response.write(chunk)
                shelved.sent += len(chunk)
        except (ConnectionResetError, ConnectionError):
            shelved.hung_up = True
        return response
