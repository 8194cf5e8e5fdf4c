"""The GitHub path under load, as users run it: `bridge run` (subprocess) between a fake GitHub and an
instant, non-streaming fake LLM, both on loopback.

Figures (each run prints them; ``--runs N`` repeats and prints median (min–max)):

- CPU per message: the bridge process's CPU time for N messages over N sessions, divided by N;
- sustained messages/s: N webhooks (N sessions) sent as fast as the bridge acknowledges them, until
  the N-th reply comment is posted;
- overhead webhook → comment at concurrency 1 and 50 (the LLM answers instantly, so this is the
  bridge: verify, store, queue, request, parse, post, record).

Run: ``python -m bench.bench_load [--messages 1000] [--runs 3] [--profile out.prof]``
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time

import aiohttp

from bench.harness import bridge_run, cpu_seconds, load_average, pct, post_webhook, spread
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.test_github import SECRET, comment_payload
from tests.waiting import until

CONFIG = """
storage: {url: "sqlite:///bench.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, stream: false}
server: {port: "${PORT}"}
platforms:
  github: {token: ghp_bench1, webhook_secret: "${SECRET}", api_url: "${GITHUB_URL}"}
channels:
  - {platform: github, where: "*", trigger: always}
"""
MARKER = re.compile(r"bridge:reply github:comment:(\d+) part 0")


async def one_run(messages: int, profile: str | None) -> dict[str, float]:
    llm = await FakeOpenAI().start()
    llm.reply = lambda _req: "An answer of a realistic length. " * 20
    gh = await FakeGitHub().start()
    env = {"LLM_URL": llm.url, "SECRET": SECRET, "GITHUB_URL": gh.url}
    out: dict[str, float] = {}
    try:
        async with bridge_run(CONFIG, env, profile=profile) as running, aiohttp.ClientSession() as session:
            url = running.bridge.url
            sent: dict[int, float] = {}

            async def send(i: int, number: int) -> None:
                sent[i] = time.monotonic()
                status = await post_webhook(session, url, comment_payload(f"question {i}", number=number,
                                                                          comment_id=i, repo="octo-org/load"))
                assert status == 202, status

            def latencies(ids: range) -> list[float]:
                done = {int(m.group(1)): c.at for c in gh.comments if (m := MARKER.search(c.body))}
                return [(done[i] - sent[i]) * 1000 for i in ids]

            async def wait_for(count: int) -> None:
                await until(lambda: len(gh.comments) >= count, timeout=600, interval=0.002)

            # warm up: first requests open connections, fill caches
            for i in range(1, 21):
                await send(i, 100_000 + i)
            await wait_for(20)

            # concurrency 1: one message at a time, each to its own session
            base = 1000
            for i in range(base, base + 200):
                await send(i, i)
                await wait_for(len(sent))
            lat1 = latencies(range(base, base + 200))
            out["c1_p50"], out["c1_p99"] = pct(lat1, 0.5), pct(lat1, 0.99)

            # concurrency 50: 50 senders, each waiting for its own reply before the next
            base = 10_000
            sem_ids = iter(range(base, base + 1000))

            async def worker() -> None:
                for i in sem_ids:
                    await send(i, i)
                    await until(lambda i=i: any(c.number == i for c in gh.comments[-200:]), interval=0.001)

            await asyncio.gather(*(worker() for _ in range(50)))
            await wait_for(len(sent))
            lat50 = latencies(range(base, base + 1000))
            out["c50_p50"], out["c50_p99"] = pct(lat50, 0.5), pct(lat50, 0.99)

            # sustained: N messages over N sessions as fast as they are acknowledged (64 in flight)
            base = 100_000
            before = len(gh.comments)
            cpu0, t0 = cpu_seconds(running.pid), time.monotonic()
            ids = iter(range(base, base + messages))

            async def blaster() -> None:
                for i in ids:
                    await send(i, i)

            await asyncio.gather(*(blaster() for _ in range(64)))
            await wait_for(before + messages)
            elapsed, cpu = time.monotonic() - t0, cpu_seconds(running.pid) - cpu0
            out["msgs_per_s"] = messages / elapsed
            out["cpu_ms_per_msg"] = cpu * 1000 / messages
    finally:
        await gh.stop()
        await llm.stop()
    return out


async def main(messages: int, runs: int, profile: str | None) -> None:
    print(f"load average before: {load_average()}")
    results = [await one_run(messages, profile if i == 0 else None) for i in range(runs)]
    print(f"load average after:  {load_average()}")
    rows = [
        ("bridge CPU per message, GitHub path, non-streaming (ms)", "cpu_ms_per_msg"),
        (f"sustained messages/s over {messages} sessions", "msgs_per_s"),
        ("overhead webhook → comment, concurrency 1: p50 (ms)", "c1_p50"),
        ("overhead webhook → comment, concurrency 1: p99 (ms)", "c1_p99"),
        ("overhead webhook → comment, concurrency 50: p50 (ms)", "c50_p50"),
        ("overhead webhook → comment, concurrency 50: p99 (ms)", "c50_p99"),
    ]
    print(f"\n| figure | median of {runs} (min–max) |\n|---|---|")
    for label, key in rows:
        print(f"| {label} | {spread([r[key] for r in results])} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", help="write a cProfile of the first run's bridge to this file")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.runs, args.profile))
