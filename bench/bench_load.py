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
from tests.fakes.github_server import Comment, FakeGitHub
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
            done: dict[int, float] = {}
            waiting: dict[int, asyncio.Future[None]] = {}
            loop = asyncio.get_running_loop()

            def posted(comment: Comment) -> None:  # the fake GitHub calls this as each comment is kept
                if (m := MARKER.search(comment.body)) is not None:
                    cid = int(m.group(1))
                    done[cid] = comment.at
                    if (future := waiting.pop(cid, None)) is not None and not future.done():
                        future.set_result(None)

            gh.on_comment = posted

            async def ask(i: int, *, wait: bool) -> None:
                if wait:
                    waiting[i] = loop.create_future()
                sent[i] = time.monotonic()
                status = await post_webhook(session, url, comment_payload(f"question {i}", number=i, comment_id=i,
                                                                          repo="octo-org/load"))
                assert status == 202, status
                if wait:
                    await asyncio.wait_for(waiting[i], 60)

            def latencies(ids: range) -> list[float]:
                return [(done[i] - sent[i]) * 1000 for i in ids]

            for i in range(1, 21):  # warm up: connections opened, caches filled
                await ask(100_000_000 + i, wait=True)

            base = 1000  # concurrency 1: one message at a time, each to its own session
            for i in range(base, base + 200):
                await ask(i, wait=True)
            lat1 = latencies(range(base, base + 200))
            out["c1_p50"], out["c1_p99"] = pct(lat1, 0.5), pct(lat1, 0.99)

            base = 10_000  # concurrency 50: 50 senders, each waiting for its reply before the next
            ids = iter(range(base, base + 1000))

            async def sender() -> None:
                for i in ids:
                    await ask(i, wait=True)

            await asyncio.gather(*(sender() for _ in range(50)))
            lat50 = latencies(range(base, base + 1000))
            out["c50_p50"], out["c50_p99"] = pct(lat50, 0.5), pct(lat50, 0.99)

            base = 100_000  # sustained: N messages over N sessions as fast as they are acknowledged
            cpu0, t0 = cpu_seconds(running.pid), time.monotonic()
            ids = iter(range(base, base + messages))

            async def blaster() -> None:
                for i in ids:
                    await ask(i, wait=False)

            await asyncio.gather(*(blaster() for _ in range(64)))
            await until(lambda: all(i in done for i in range(base + messages - 64, base + messages))
                        and len(done) >= 20 + 200 + 1000 + messages, timeout=600, interval=0.01)
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
