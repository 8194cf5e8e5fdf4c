"""A real bridge (GitHub + Slack in HTTP mode) running on its own event loop in a thread, with the
loopback fakes, so that synchronous code — hypothesis tests, a latency probe — can send it raw HTTP
requests and measure it from the outside, the way an attacker or a health checker would.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bridge.app import Bridge
from bridge.config import parse_config
from tests.fakes import slack_server as slack
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack

T = TypeVar("T")
GITHUB_SECRET = "whsec-hostile-0123456789"
REPO = "Codertocat/Hello-World"
SLACK_CHANNEL = "C0GENERAL"
PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
ALICE = "U0ALICE"

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: gpt-4o-mini, max_retries: 0, timeout_s: 5}
server: {port: 0, max_body_bytes: 1048576}
platforms:
  github:
    token: ghp_hostiletoken
    webhook_secret: ${GITHUB_WEBHOOK_SECRET}
    api_url: ${GITHUB_URL}
  slack:
    bot_token: ${SLACK_BOT_TOKEN}
    signing_secret: ${SLACK_SIGNING_SECRET}
    api_url: ${SLACK_API_URL}
    edit_interval_s: 0.05
channels:
  - {platform: github, where: "Codertocat/*", trigger: always}
  - {platform: slack, where: C0GENERAL, trigger: mention}
"""


class Records(logging.Handler):
    """Every log record of the run (INFO and up), from every thread."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def problems(self, since: int = 0) -> list[str]:
        """Records that show a traceback, or an unbounded/unescaped message."""
        found = []
        for record in self.records[since:]:
            message = record.getMessage()
            if record.exc_info or "Traceback" in message:
                found.append(f"traceback: {record.name}: {message[:200]}")
            elif len(message) > 400 or "\n" in message:
                found.append(f"unbounded: {record.name}: {message[:200]!r}")
        return found


class LiveBridge:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-bridge", daemon=True)
        self.llm = FakeOpenAI()
        self.github = FakeGitHub()
        self.slack = FakeSlack()
        self.bridge: Bridge | None = None
        self.port = 0
        self.log = Records()

    # ------------------------------------------------------------------ lifecycle

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> LiveBridge:
        logging.getLogger().addHandler(self.log)
        self.thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        await self.llm.start()
        await self.github.start()
        await self.slack.start()
        self.slack.add_user(ALICE, "alice", real_name="Alice Liddell")
        shutil.copytree(PROMPTS, self.tmp / "prompts", dirs_exist_ok=True)
        env = {"LLM_URL": self.llm.url, "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET, "GITHUB_URL": self.github.url,
               "SLACK_BOT_TOKEN": slack.BOT_TOKEN, "SLACK_SIGNING_SECRET": slack.SIGNING_SECRET,
               "SLACK_API_URL": self.slack.url}
        config = parse_config(YAML, source=str(self.tmp / "bridge.yaml"), base_dir=self.tmp, env=env)
        self.bridge = Bridge(config)
        await self.bridge.start()
        assert self.bridge.server is not None
        self.port = self.bridge.server.port

    def stop(self) -> None:
        try:
            if self.bridge is not None:
                self.call(self.bridge.stop(), timeout=120)
            self.call(self.slack.stop())
            self.call(self.github.stop())
            self.call(self.llm.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            logging.getLogger().removeHandler(self.log)

    # ------------------------------------------------------------------ raw HTTP, from outside

    def request(self, method: str, path: str, body: bytes = b"",
                headers: Mapping[str, str | bytes] | None = None, timeout: float = 10) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def github_post(self, body: bytes, *, event: str = "issue_comment", signature: str | bytes | None = None,
                    content_type: str | bytes = "application/json") -> tuple[int, bytes]:
        sig = signature if signature is not None else github_sign(body)
        return self.request("POST", "/github/webhook", body, {
            "X-GitHub-Event": event, "X-GitHub-Delivery": "hostile", "Content-Type": content_type,
            "X-Hub-Signature-256": sig})

    def slack_post(self, body: bytes, *, timestamp: str | bytes | None = None, signature: str | bytes | None = None,
                   content_type: str | bytes = "application/json") -> tuple[int, bytes]:
        ts = timestamp if timestamp is not None else str(int(time.time()))
        sig = signature if signature is not None else slack.sign(body, slack.SIGNING_SECRET, int(ts))
        return self.request("POST", "/slack/events", body, {
            "Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})

    # ------------------------------------------------------------------ waiting on the fakes

    def until(self, check: Callable[[], T], timeout: float = 10) -> T:
        deadline = time.monotonic() + timeout
        while not (value := check()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(0.01)
        return value

    def sessions(self) -> int:
        assert self.bridge is not None
        assert self.bridge.store is not None
        return len(self.call(self.bridge.store.sessions()))


def github_sign(body: bytes) -> str:
    return "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()


def dumps(value: Any) -> bytes:
    """JSON as Python writes it, lone surrogates included (``ensure_ascii`` escapes them)."""
    return json.dumps(value).encode()
