"""/healthz is liveness, /readyz is readiness: platforms connected and the LLM answering."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from bridge.app import Bridge
from bridge.config import Config
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.platform import FakePlatform
from tests.waiting import until_async

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 2}
server: {port: 0}
platforms:
  github: {token: ghp_abcdef, webhook_secret: s3cr3t-value}
channels:
  - {platform: github, where: "*", trigger: always}
"""


class FlakyPlatform(FakePlatform):
    connected = True

    def status(self) -> dict[str, Any]:
        return {"ok": self.connected}


async def get(bridge: Bridge, path: str) -> tuple[int, dict[str, Any]]:
    assert bridge.server is not None
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{bridge.server.port}{path}") as r:
        return r.status, await r.json()


async def test_ready_follows_the_llm_and_the_platforms(make_config: Callable[..., Config],
                                                       fake_llm: FakeOpenAI) -> None:
    platform = FlakyPlatform()
    bridge = Bridge(make_config(YAML, LLM_URL=fake_llm.url), platforms={"github": platform},
                    llm_probe_interval_s=0.1)
    await bridge.start()
    try:
        async def ready() -> bool:
            return (await get(bridge, "/readyz"))[0] == 200

        await until_async(ready)  # the idle probe reached the LLM (GET /models)
        assert fake_llm.model_requests >= 1

        platform.connected = False
        status, body = await get(bridge, "/readyz")
        assert (status, body["reasons"]) == (503, ["github: not connected"])
        assert (await get(bridge, "/healthz"))[0] == 200  # alive: a restart would not help
        platform.connected = True

        await fake_llm.stop()  # the LLM server goes away

        async def llm_down() -> list[str]:
            status, body = await get(bridge, "/readyz")
            return [r for r in body["reasons"] if r.startswith("llm:")] if status == 503 else []

        [reason] = await until_async(llm_down)
        assert "unreachable" in reason
        status, health = await get(bridge, "/healthz")
        assert status == 200
        assert health["platforms"]["github"]["ok"] is True
    finally:
        await bridge.stop()


async def test_not_ready_before_the_llm_was_ever_reached(make_config: Callable[..., Config]) -> None:
    bridge = Bridge(make_config(YAML, LLM_URL="http://127.0.0.1:9/v1"), platforms={"github": FakePlatform()},
                    llm_probe_interval_s=0.1)
    await bridge.start()
    try:
        async def refused() -> bool:
            status, body = await get(bridge, "/readyz")
            return status == 503 and body["reasons"] == ["llm: not reachable (unreachable)"]

        await until_async(refused)
    finally:
        await bridge.stop()
