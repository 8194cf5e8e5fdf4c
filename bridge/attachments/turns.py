"""Reading a message's shared files once, when it is answered, and what the author is told about them.

Files are fetched when the message is answered, not when it arrives: a webhook is acknowledged at
once, and a restart reads what is still pending. A file read (or refused) is stored with its
turn, so a second question, a retry or a restart never downloads it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import aiohttp

from bridge.attachments import problems
from bridge.attachments.config import AttachmentsConfig
from bridge.attachments.download import download
from bridge.attachments.hosts import FileHosts
from bridge.attachments.prompt import FILE_WRAPPER_TOKENS
from bridge.attachments.reading import read
from bridge.metrics import Metrics
from bridge.store.attachments import StoredFile
from bridge.store.store import Message, Store
from bridge.types import Attachment, ThreadRef

log = logging.getLogger(__name__)

CANNOT_SEE = ("I can't see images with this persona: I was only told that you shared {names}. "
              "Describe what matters in it, or paste its text.")


class SharedFiles:
    def __init__(self, config: AttachmentsConfig, store: Store, metrics: Metrics) -> None:
        self._config = config
        self._store = store
        self._metrics = metrics
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # No proxy from the environment, no cookies: each download stands alone.
            self._http = aiohttp.ClientSession(trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def prepare(self, msg: Message, files: list[StoredFile], hosts: FileHosts | None,
                      model: str) -> list[StoredFile]:
        """Read the message's pending ``files`` (once); return all its files as stored now. Called only
        when one is pending: most messages have none, and need neither their hosts nor this."""
        for f in files:
            if f.state != "pending":
                continue
            try:
                if hosts is None:
                    raise problems.unreachable(f.name)
                data = await download(self._session(), _attachment(f), hosts, self._config.max_bytes)
                got = await read(data, f.name, f.mime, self._config, model)
            except problems.FileProblem as problem:
                log.info("message %s: file %d not read: %s", msg.id, f.position, problem.reason)
                self._metrics.files.labels(platform=hosts.platform if hosts else "", outcome=problem.reason).inc()
                await self._store.file_failed(f.id, str(problem))
                continue
            self._metrics.files.labels(platform=hosts.platform, outcome=got.kind).inc()
            tokens = got.tokens + FILE_WRAPPER_TOKENS if got.kind != "image" else 0
            await self._store.file_read(f.id, kind=got.kind, text=got.text, tokens=tokens, cut=got.cut,
                                        image=got.image)
        return (await self._store.files([msg.id])).get(msg.id, [])

    async def notices(self, msg: Message, files: list[StoredFile], *, vision: bool) -> str:
        """The sentences that go before the answer: one per problem file, and once per conversation
        that this persona cannot see images."""
        lines = [f"⚠️ {f.problem}" for f in files if f.state == "failed" and f.problem]
        images = [f for f in files if f.state == "read" and f.image]
        if images and not vision and await self._store.blind_notice_due(msg.session_id, msg.id):
            lines.append(CANNOT_SEE.format(names=", ".join(problems.shown(f.name) for f in images)))
        return "\n".join(lines) + "\n\n" if lines else ""


def _attachment(f: StoredFile) -> Attachment:
    return Attachment(f.name, f.url, f.size, f.mime)


def hosts_of(platforms: Mapping[str, object], name: str, thread: ThreadRef) -> FileHosts | None:
    """The file hosts a running platform adapter describes (``file_hosts(thread)``), if it has any."""
    describe = getattr(platforms.get(name), "file_hosts", None)
    hosts = describe(thread) if callable(describe) else None
    return hosts if isinstance(hosts, FileHosts) else None

