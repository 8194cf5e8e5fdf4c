"""Slack HTTP events under full reply load, streaming on: `bridge run` (subprocess) between a fake
Slack that enforces Slack's per-channel rate limits and a fake LLM that streams ~650 characters.

200 threads × 3 turns; the first turn of each thread arrives as Slack sends a mention, twice
(``app_mention`` and ``message``), so 800 signed requests. Figures:

- ack latency of every request (Slack retries anything slower than 3 s): late count, p50, p99;
- platform calls (chat.postMessage, chat.update and the native streaming methods) per streamed answer;
- the bridge's CPU per answer.

``--no-stream`` asks the LLM for whole answers (``llm.stream: false``), as ``bench.bench_load``
does: the Slack path and the GitHub path then compare like for like (answers of ~650 characters in
both).

``--no-limits`` switches the fake Slack's per-channel rate limits off. With them (as on Slack), a
turn's five answers per channel exceed ``chat.postMessage``'s 1 a second: refused calls (429) are
retried after ``Retry-After``, which ``bench.bench_load``'s fake GitHub never asks for.

Run: ``python -m bench.bench_slack [--threads 200] [--runs 3] [--concurrency 32] [--no-stream] [--no-limits]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

from bench.harness import bridge_run, cpu_seconds, llm_process, load_average, pct, spread
from tests.fakes import slack_server as slack
from tests.fakes.slack_server import FakeSlack
from tests.waiting import until

CONFIG = """
storage: {url: "sqlite:///bench.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, stream: true}
server: {port: "${PORT}"}
platforms:
  slack: {bot_token: "${BOT}", signing_secret: "${SECRET}", api_url: "${API}"}
channels:
  - {platform: slack, where: "*", trigger: mention}
"""
# 656 characters: about as long as bench_load's answer (660), so the two paths compare like for like.
ANSWER = "A streamed answer of about six hundred characters, written a few words at a time. " * 8
CHANNELS = 40

# What a streamed answer costs in Slack calls: edits, or the native streaming methods (the default).
WRITE_METHODS = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream")


async def one_run(threads: int, concurrency: int, profile: str | None = None, *,
                  stream: bool = True, limits: bool = True) -> dict[str, float]:
    fake = await FakeSlack().start()
    fake.echo = False
    if not limits:
        fake.limits = {}
    fake.add_user("U0ALICE", "alice")
    acks: list[float] = []
    try:
        async with llm_process(ANSWER, chunk=12, delay=0.02) as llm_url:  # ~1 s of streaming per answer
            env = {"LLM_URL": llm_url, "BOT": slack.BOT_TOKEN, "SECRET": slack.SIGNING_SECRET, "API": fake.url}
            config = CONFIG.replace("stream: true", f"stream: {'true' if stream else 'false'}")
            async with bridge_run(config, env, profile=profile) as running, aiohttp.ClientSession() as session:
                url = f"{running.bridge.url}/slack/events"

                gate = asyncio.Semaphore(concurrency)  # Slack's delivery: many at once, not all at once

                async def deliver(event: dict[str, object]) -> None:
                    async with gate:
                        await post(event)

                async def post(event: dict[str, object]) -> None:
                    raw = json.dumps(slack.event_callback(event)).encode()
                    ts = int(time.time())
                    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(ts),
                               "X-Slack-Signature": slack.sign(raw, slack.SIGNING_SECRET, ts)}
                    t0 = time.monotonic()
                    async with session.post(url, data=raw, headers=headers) as r:
                        await r.read()
                        assert r.status == 200, r.status
                    acks.append(time.monotonic() - t0)

                def finished() -> int:
                    return sum(1 for p in fake.posted if p.text == ANSWER)

                roots: list[tuple[str, str]] = []
                cpu0 = cpu_seconds(running.pid)
                for turn in range(3):
                    sends = []
                    for i in range(threads):
                        channel = f"C0BENCH{i % CHANNELS:03d}"
                        if turn == 0:
                            mention = slack.app_mention(f"<@{slack.BOT_USER}> question {i}", user="U0ALICE",
                                                        channel=channel)
                            roots.append((channel, str(mention["ts"])))
                            twin = slack.message(str(mention["text"]), user="U0ALICE", channel=channel,
                                                 ts=str(mention["ts"]))
                            sends += [deliver(mention), deliver(twin)]
                        else:
                            channel, root = roots[i]
                            sends.append(deliver(slack.message(f"follow-up {turn} of {i}", user="U0ALICE",
                                                               channel=channel, thread_ts=root)))
                    await asyncio.gather(*sends)
                    await until(lambda t=turn: finished() >= threads * (t + 1), timeout=600, interval=0.1)
                cpu = cpu_seconds(running.pid) - cpu0
                calls = len([c for c in fake.calls if c.method in WRITE_METHODS])
    finally:
        await fake.stop()
    answers = threads * 3
    return {"late": float(sum(a > 3 for a in acks)), "requests": float(len(acks)),
            "ack_p50": pct(acks, 0.5) * 1000, "ack_p99": pct(acks, 0.99) * 1000,
            "calls_per_answer": calls / answers, "cpu_ms_per_answer": cpu * 1000 / answers}


async def main(threads: int, runs: int, concurrency: int, profile: str | None, stream: bool, limits: bool) -> None:
    print(f"load average before: {load_average()}")
    results = [await one_run(threads, concurrency, profile if i == 0 else None, stream=stream, limits=limits)
               for i in range(runs)]
    print(f"load average after:  {load_average()}")
    kind = "streamed" if stream else "non-streamed"
    rows = [
        (f"Slack HTTP events acknowledged later than 3 s (of {int(results[0]['requests'])})", "late"),
        ("ack latency p50 (ms)", "ack_p50"),
        ("ack latency p99 (ms)", "ack_p99"),
        (f"platform calls per {kind} answer (~650 chars)", "calls_per_answer"),
        (f"bridge CPU per {kind} answer (ms)", "cpu_ms_per_answer"),
    ]
    print(f"\n| figure ({threads} threads × 3 turns, {kind}, {concurrency} requests in flight"
          f"{'' if limits else ', no rate limits'}) "
          f"| median of {runs} (min–max) |\n|---|---|")
    for label, key in rows:
        print(f"| {label} | {spread([r[key] for r in results])} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="Slack requests in flight at once")
    parser.add_argument("--profile", help="write a cProfile of the first run's bridge to this file")
    parser.add_argument("--no-stream", dest="stream", action="store_false",
                        help="whole answers from the LLM (llm.stream: false), as bench.bench_load gets them")
    parser.add_argument("--no-limits", dest="limits", action="store_false",
                        help="the fake Slack enforces no rate limits (no 429s, as bench.bench_load's fake GitHub)")
    args = parser.parse_args()
    asyncio.run(main(args.threads, args.runs, args.concurrency, args.profile, args.stream, args.limits))
