"""10,000 conversations in flight at once: `bridge run` (subprocess) takes 10,000 GitHub webhooks for
10,000 issues while the fake LLM (its own process) takes 5 s to answer each; the bridge's peak RSS,
whether every one is answered, and the time to drain.

Run: ``python -m bench.bench_inflight [--conversations 10000] [--latency 5] [--stream true|false]``
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from bench.harness import bridge_run, llm_process, load_average, post_webhook, rss_mb
from tests.fakes.github_server import Comment, FakeGitHub
from tests.test_github import SECRET, comment_payload
from tests.waiting import until

CONFIG = """
storage: {url: "sqlite:///bench.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, stream: "${STREAM}", timeout_s: 600,
      answer_timeout_s: 900, max_concurrent: "${CONCURRENT}"}
server: {port: "${PORT}"}
platforms:
  github: {token: ghp_bench1, webhook_secret: "${SECRET}", api_url: "${GITHUB_URL}"}
channels:
  - {platform: github, where: "*", trigger: always}
"""


async def main(conversations: int, latency: float, stream: str, concurrent: int) -> None:
    gh = await FakeGitHub().start()
    answered: set[int] = set()
    gh.on_comment = lambda c: answered.add(c.number) if isinstance(c, Comment) else None
    peak = 0.0
    print(f"load average before: {load_average()}")
    async with llm_process("An answer that took its time. " * 8, chunk=16, delay=0.05, latency=latency) as url:
        env = {"LLM_URL": url, "SECRET": SECRET, "GITHUB_URL": gh.url, "STREAM": stream,
               "CONCURRENT": str(concurrent)}
        async with bridge_run(CONFIG, env) as running, aiohttp.ClientSession() as session:
            stop = asyncio.Event()

            async def sample() -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, rss_mb(running.pid))
                    await asyncio.sleep(0.2)  # a sampling period, not a wait for a condition

            sampler = asyncio.create_task(sample())
            idle_rss = rss_mb(running.pid)
            t0 = time.monotonic()
            ids = iter(range(1, conversations + 1))

            async def sender() -> None:
                for i in ids:
                    status = await post_webhook(session, running.bridge.url,
                                                comment_payload(f"question {i}", number=i, comment_id=i))
                    assert status == 202, status

            await asyncio.gather(*(sender() for _ in range(64)))
            intake = time.monotonic() - t0
            await until(lambda: len(answered) >= conversations, timeout=3600, interval=0.5)
            drained = time.monotonic() - t0
            stop.set()
            await sampler
    await gh.stop()
    print(f"load average after:  {load_average()}")
    print(f"\n| {conversations} conversations, LLM {latency:g} s per answer, stream={stream}, "
          f"max_concurrent={concurrent} | |\n|---|---|")
    print(f"| answered | {len(answered)} of {conversations} |")
    print(f"| webhooks taken in | {intake:.1f} s |")
    print(f"| time to drain (first webhook → last reply) | {drained:.1f} s |")
    print(f"| bridge RSS idle → peak | {idle_rss:.0f} MB → {peak:.0f} MB |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=5.0)
    parser.add_argument("--stream", choices=["true", "false"], default="true")
    parser.add_argument("--concurrent", type=int, default=10_000, help="llm.max_concurrent")
    args = parser.parse_args()
    asyncio.run(main(args.conversations, args.latency, args.stream, args.concurrent))
