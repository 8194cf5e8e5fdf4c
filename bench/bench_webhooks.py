"""How fast the bridge takes GitHub webhooks and answers them, on loopback.

A real Bridge (HTTP server, signature check, SQLite store, lanes, githubkit) with a fake GitHub and
a fake OpenAI-compatible server that answers instantly, so what is measured is the bridge itself:

- intake: webhook POST → 202 latency and webhooks/s, with the LLM held so that nothing else runs
  (the message is verified, translated and stored before the 202);
- answering: the LLM released, how long until every reply comment is posted. The fake LLM streams
  each answer in ~80 chunks, so this is mostly the openai SDK parsing chunks and githubkit posting.

Run: ``python -m bench.bench_webhooks [--events 600] [--issues 60] [--concurrency 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bridge.app import Bridge
from bridge.config import parse_config
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.test_github import SECRET, comment_payload, sign
from tests.waiting import until

ROOT = Path(__file__).resolve().parent.parent


async def main(events: int, issues: int, concurrency: int) -> None:
    llm = await FakeOpenAI().start()
    llm.reply = lambda _req: "An answer of a realistic length. " * 20
    gh = await FakeGitHub().start()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "prompts").symlink_to(ROOT / "prompts")
        config = parse_config(f"""
storage: {{url: "sqlite:///bench.db"}}
llm: {{base_url: "{llm.url}", model: fake, max_retries: 0}}
server: {{port: 0}}
platforms:
  github: {{token: ghp_bench1, webhook_secret: "{SECRET}", api_url: "{gh.url}"}}
channels:
  - {{platform: github, where: "*", trigger: always}}
""", base_dir=Path(tmp), env={})
        bridge = Bridge(config)
        await bridge.start()
        assert bridge.server is not None
        url = f"http://127.0.0.1:{bridge.server.port}/github/webhook"
        bodies = [json.dumps(comment_payload(f"question {i}", number=i % issues + 1, comment_id=i + 1)).encode()
                  for i in range(events)]
        latencies: list[float] = []
        sem = asyncio.Semaphore(concurrency)

        async def deliver(session: aiohttp.ClientSession, body: bytes) -> None:
            headers = {"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sign(body),
                       "Content-Type": "application/json"}
            async with sem:
                t0 = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as r:
                    assert r.status == 202, r.status
                latencies.append(time.perf_counter() - t0)

        llm.hold = asyncio.Event()
        start = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(deliver(session, b) for b in bodies))
        intake = time.perf_counter() - start
        start = time.perf_counter()
        llm.hold.set()
        await until(lambda: len(gh.comments) >= events, timeout=600)
        total = time.perf_counter() - start
        await bridge.stop()
    await gh.stop()
    await llm.stop()

    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
    print(f"events={events} issues={issues} concurrency={concurrency}")
    print(f"ack latency ms: p50={pct(0.50):.1f} p90={pct(0.90):.1f} p99={pct(0.99):.1f} "
          f"mean={statistics.mean(latencies) * 1000:.1f}")
    print(f"intake: {events / intake:.0f} webhooks/s ({intake:.2f} s)")
    print(f"answering: {events} replies posted in {total:.2f} s ({events / total:.0f} replies/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--issues", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.issues, args.concurrency))
