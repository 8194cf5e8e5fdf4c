"""The one HTTP server: platform webhooks, ``/healthz`` (liveness), ``/readyz`` (readiness), ``/metrics``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bridge.metrics import Metrics


def build_app(*, routes: list[web.RouteDef], health: Callable[[], dict[str, Any]], metrics: Metrics,
              max_body_bytes: int, ready: Callable[[], dict[str, Any]] | None = None) -> web.Application:
    """Routes come from the platforms; the body limit answers oversized webhooks with 413.

    ``/healthz`` is liveness: 200 once started, whatever the platforms and the LLM are doing (a
    restart would not fix them). ``/readyz`` is readiness: 200 only when ``ready()`` says so.
    """
    app = web.Application(client_max_size=max_body_bytes)

    async def healthz(_: web.Request) -> web.Response:
        body = health()
        return web.json_response(body, status=503 if body.get("status") == "starting" else 200)

    async def readyz(_: web.Request) -> web.Response:
        body = ready() if ready is not None else {"ready": True, "reasons": []}
        return web.json_response(body, status=200 if body.get("ready") else 503)

    async def metrics_view(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics_view),
                    *routes])
    return app


class MalformedRequests(logging.Filter):
    """aiohttp answers a request it cannot parse (a NUL in a header, a bad request line) with 400
    and logs it at ERROR with a traceback; anyone can send one. Such a record becomes one INFO line
    naming the error class, never the request's bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "refused a malformed HTTP request (%s, HTTP %s)", (type(exc).__name__, exc.code)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class Server:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        server_log = logging.getLogger("aiohttp.server")
        if not any(isinstance(f, MalformedRequests) for f in server_log.filters):
            server_log.addFilter(MalformedRequests())
        self._runner = web.AppRunner(app, access_log=None)
        self._host, self._port = host, port
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        if self._runner.addresses:  # the real port when 0 was asked for (tests)
            self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()
