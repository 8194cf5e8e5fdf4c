"""Discord with several replicas: one gateway owner (a PostgreSQL advisory lock), failover after a SIGKILL,
and replies over REST from whichever replica answers."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from tests import pgcluster
from tests.fakes import discord_server as fk
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.openai_server import FakeOpenAI
from tests.procs import ROOT, BridgeProcess, free_port
from tests.waiting import until_async

pytestmark = pytest.mark.postgres

LEASE_S = 3.0
CONFIG = f"""
storage: {{url: "postgresql://bridge:${{PGPASSWORD}}@127.0.0.1:${{PGPORT}}/${{PGDATABASE}}", lease_s: {LEASE_S}}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0, timeout_s: 5}}
server: {{port: "${{PORT}}"}}
platforms:
  discord: {{token: "${{DISCORD_BOT_TOKEN}}", api_url: "${{DISCORD_API_URL}}", edit_interval_s: 0.05}}
channels:
  - {{platform: discord, where: "{fk.GENERAL}", trigger: always}}
"""


def replica(tmp_path: Path, i: int, pg_url: str, llm: FakeOpenAI, discord: FakeDiscord) -> BridgeProcess:
    folder = tmp_path / f"replica{i}"
    folder.mkdir()
    (folder / "prompts").symlink_to(ROOT / "prompts")
    (folder / "bridge.yaml").write_text(CONFIG)
    port = free_port()
    env = {"PGPASSWORD": pgcluster.PASSWORD, "PGPORT": pg_url.rsplit(":", 1)[1].split("/")[0],
           "PGDATABASE": pg_url.rsplit("/", 1)[1], "LLM_URL": llm.url, "PORT": str(port),
           "DISCORD_BOT_TOKEN": discord.token, "DISCORD_API_URL": discord.api_url}
    return BridgeProcess(folder / "bridge.yaml", env, port)


async def health(bridge: BridgeProcess) -> dict[str, object]:
    async with aiohttp.ClientSession() as s, s.get(f"{bridge.url}/healthz") as r:
        data: dict[str, object] = await r.json()
        return data


async def owns(bridge: BridgeProcess) -> bool:
    replica = (await health(bridge))["replica"]
    assert isinstance(replica, dict)
    return replica["gateway_owner"] == ["discord"]


def answered(discord: FakeDiscord, text: str) -> int:
    return sum(1 for p in discord.messages_in(fk.GENERAL) if p.content == f"You said: {text}")


async def test_one_gateway_owner_and_failover_after_a_sigkill(tmp_path: Path, fake_llm: FakeOpenAI,
                                                              pg_url: str) -> None:
    discord = await FakeDiscord().start()
    a, b = (replica(tmp_path, i, pg_url, fake_llm, discord) for i in range(2))
    try:
        await a.start()
        await until_async(lambda: owns(a), timeout=20)
        await b.start()
        standby = await health(b)
        assert not await owns(b)
        assert standby["status"] == "ok"  # a standby replica is healthy: it sends over REST
        assert "standby" in str(standby["platforms"])
        assert len(discord.identifies) == 1  # one gateway connection for the whole bot

        await discord.say("first question")
        await discord.wait_until(lambda: answered(discord, "first question") == 1)

        await a.kill()
        killed = time.monotonic()
        await until_async(lambda: owns(b), timeout=LEASE_S * 4)
        took = time.monotonic() - killed
        print(f"\nDiscord gateway failover: {took:.2f} s after the SIGKILL (lease {LEASE_S:g} s)")
        assert took <= LEASE_S + 3.0  # the lock retry (lease/3) and discord.py's guild wait (2 s)
        assert len(discord.identifies) == 2

        await discord.say("second question")
        await discord.wait_until(lambda: answered(discord, "second question") == 1)
        assert await b.stop() == 0
    finally:
        await a.kill()
        await b.kill()
        await discord.stop()
    assert answered(discord, "first question") == 1
    assert answered(discord, "second question") == 1
    for p in (a, b):
        assert pgcluster.PASSWORD not in p.log.read_text()
        assert discord.token not in p.log.read_text()
