"""Messages answered per second with 1, 2 and 3 `bridge run` replicas on PostgreSQL, and 1 on SQLite.

The same load each time: signed ``issue_comment`` webhooks spread over many issues, sent round-robin
to the replicas (a load balancer), an instant fake LLM and the fake GitHub on loopback. The clock
runs from the first webhook to the last reply posted. Run: ``python -m bench.bench_replicas``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

from tests import pgcluster
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.procs import ROOT, BridgeProcess, free_port
from tests.test_github import SECRET, comment_payload, sign
from tests.waiting import until

MESSAGES, ISSUES, CONCURRENCY = 600, 120, 30
CONFIG = """
storage: {url: "STORAGE"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 10}
server: {port: "${PORT}"}
platforms:
  github: {token: ghp_bench_token, webhook_secret: "${SECRET}", api_url: "${GITHUB_URL}"}
channels:
  - {platform: github, where: "octo-org/*", trigger: always}
"""


async def run(storage: str, replicas: int, env: dict[str, str], folder: Path) -> float:
    llm = await FakeOpenAI().start()
    gh = await FakeGitHub().start()
    procs = []
    for i in range(replicas):
        sub = folder / f"replica{i}"
        sub.mkdir(parents=True)
        (sub / "prompts").symlink_to(ROOT / "prompts")
        (sub / "bridge.yaml").write_text(CONFIG.replace("STORAGE", storage))
        port = free_port()
        procs.append(BridgeProcess(sub / "bridge.yaml", {**env, "LLM_URL": llm.url, "PORT": str(port),
                                                         "SECRET": SECRET, "GITHUB_URL": gh.url}, port))
    try:
        await asyncio.gather(*(p.start() for p in procs))
        bodies = [json.dumps(comment_payload(f"q{i}", number=i % ISSUES + 1, comment_id=i,
                                             repo="octo-org/bench")).encode() for i in range(1, MESSAGES + 1)]
        started = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            gate = asyncio.Semaphore(CONCURRENCY)

            async def send(i: int, body: bytes) -> None:
                headers = {"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sign(body),
                           "Content-Type": "application/json"}
                async with gate, session.post(f"{procs[i % replicas].url}/github/webhook", data=body,
                                              headers=headers) as r:
                    assert r.status == 202, await r.text()

            await asyncio.gather(*(send(i, b) for i, b in enumerate(bodies)))
        await until(lambda: len(gh.comments) >= MESSAGES, timeout=600, interval=0.01)
        elapsed = time.perf_counter() - started
        await asyncio.gather(*(p.stop() for p in procs))
        return MESSAGES / elapsed
    finally:
        for p in procs:
            await p.kill()
        await gh.stop()
        await llm.stop()


async def main() -> None:
    cluster = pgcluster.Cluster.create()
    results: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results["sqlite, 1 replica"] = await run("sqlite:///bridge.db", 1, {}, Path(tmp) / "sqlite")
            for n in (1, 2, 3):
                conn = await asyncpg.connect(cluster.url())
                await conn.execute(f"CREATE DATABASE bench{n}")
                await conn.close()
                url = f"postgresql://{pgcluster.USER}:${{PGPASSWORD}}@127.0.0.1:{cluster.port}/bench{n}"
                results[f"postgresql, {n} replica{'s' if n > 1 else ''}"] = await run(
                    url, n, {"PGPASSWORD": pgcluster.PASSWORD}, Path(tmp) / f"pg{n}")
    finally:
        cluster.stop()
    base = results["postgresql, 1 replica"]
    print(f"{MESSAGES} webhooks over {ISSUES} issues, {CONCURRENCY} at a time, instant fake LLM:")
    for name, rate in results.items():
        print(f"  {name:<24} {rate:7.1f} messages/s   ×{rate / base:.2f} of one PostgreSQL replica")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
