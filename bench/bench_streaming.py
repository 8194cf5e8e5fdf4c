"""One streamed answer, Slack and Discord: how many platform calls it costs, how many per second, and
how soon its first text shows (Slack: native streaming, ``chat.startStream``/``appendStream``/
``stopStream``, against the edit way, a placeholder then ``chat.update``).

`bridge run` (subprocess) with `edit_interval_s` at its default (1 s), the fake LLM streaming an
answer of ~600 characters over ``--seconds`` (default 10), the fakes enforcing each platform's
rate limits (Slack: chat.postMessage ~1/s per channel, chat.update ~50/min; Discord: 5 per 5 s per
channel — scaled to 5 per 0.5 s in the fake, which only makes a flood look cheaper).

Run: ``python -m bench.bench_streaming [--seconds 10] [--runs 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bench.harness import bridge_run, llm_process, spread
from platforms.slack.delivery import PLACEHOLDER
from tests.fakes import discord_server as fk
from tests.fakes import slack_server as slack
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack
from tests.waiting import until

ANSWER = "A streamed answer of about six hundred characters, arriving a few words at a time. " * 7
SLACK = """
storage: {url: "sqlite:///bench.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0}
server: {port: "${PORT}"}
platforms:
  slack: {bot_token: "${BOT}", signing_secret: "${SECRET}", api_url: "${API}", streaming: "${STREAMING}"}
channels:
  - {platform: slack, where: "*", trigger: mention}
"""
DISCORD = f"""
storage: {{url: "sqlite:///bench.db"}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0}}
server: {{port: "${{PORT}}"}}
platforms:
  discord: {{token: "${{TOKEN}}", api_url: "${{API}}"}}
channels:
  - {{platform: discord, where: "{fk.GENERAL}", trigger: mention}}
"""


SLACK_WRITES = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream")


async def slack_run(llm_url: str, streaming: str) -> tuple[int, float, float, int]:
    """Write calls, their span, seconds from the mention's delivery to the answer's first text, and the
    characters of text the calls carried (an edit resends the whole text; an append only what is new)."""
    fake = await FakeSlack().start()
    fake.echo = False
    fake.add_user("U0ALICE", "alice")
    env = {"LLM_URL": llm_url, "BOT": slack.BOT_TOKEN, "SECRET": slack.SIGNING_SECRET, "API": fake.url,
           "STREAMING": streaming}
    try:
        async with bridge_run(SLACK, env) as running:
            mention = slack.app_mention(f"<@{slack.BOT_USER}> tell me", user="U0ALICE", channel="C0BENCH")
            sent = time.monotonic()
            status, _ = await fake.post_http(f"{running.bridge.url}/slack/events", slack.event_callback(mention))
            assert status == 200
            await until(lambda: any(p.text == ANSWER and not p.streaming for p in fake.posted), timeout=120,
                        interval=0.05)
            calls = [c for c in fake.calls if c.method in SLACK_WRITES]
            first = next(c for c in calls if (c.args.get("markdown_text") or "").strip() not in ("", PLACEHOLDER))
    finally:
        await fake.stop()
    sent_chars = sum(len(c.args.get("markdown_text") or c.args.get("text") or "") for c in calls)
    return len(calls), calls[-1].at - calls[0].at, first.at - sent, sent_chars


async def discord_run(llm_url: str) -> tuple[int, float]:
    fake = await FakeDiscord().start()
    env = {"LLM_URL": llm_url, "TOKEN": fake.token, "API": fake.api_url}
    try:
        async with bridge_run(DISCORD, env):
            await fake.wait_until(lambda: fake.calls_to("GET", "/gateway"), timeout=30)
            await fake.say(f"<@{fk.BOT_ID}> tell me")
            await fake.wait_until(lambda: any(p.content == ANSWER for p in fake.messages_in(fk.GENERAL)),
                                  timeout=120)
            calls = [c for c in fake.calls if c.path.startswith(f"/channels/{fk.GENERAL}/messages")
                     and c.method in ("POST", "PATCH")]
    finally:
        await fake.stop()
    return len(calls), calls[-1].at - calls[0].at


async def main(seconds: float, runs: int) -> None:
    chunk = 12
    delay = seconds / (len(ANSWER) / chunk)
    rows: dict[str, list[tuple[int, float, float, int]]] = {"Slack, native streaming": [], "Slack, edits": [],
                                                       "Discord": []}
    async with llm_process(ANSWER, chunk=chunk, delay=delay) as llm_url:
        for _ in range(runs):
            rows["Slack, native streaming"].append(await slack_run(llm_url, "native"))
            rows["Slack, edits"].append(await slack_run(llm_url, "edit"))
            calls, span = await discord_run(llm_url)
            rows["Discord"].append((calls, span, float("nan"), 0))
    print(f"\n| one streamed answer ({len(ANSWER)} chars over {seconds:g} s, edit_interval_s 1) "
          f"| calls per answer | calls per second | first text after (s) | text sent (chars) |\n|---|---|---|---|---|")
    for name, results in rows.items():
        per_answer = [float(n) for n, _, _, _ in results]
        per_second = [n / max(span, 1e-6) for n, span, _, _ in results]
        firsts = [f for _, _, f, _ in results if f == f]
        first = f"{statistics.median(firsts):.2f} ({min(firsts):.2f}–{max(firsts):.2f})" if firsts else "-"
        chars = [float(c) for _, _, _, c in results]
        print(f"| {name} | {spread(per_answer)} | {spread(per_second)} | {first} | "
              f"{spread(chars) if any(chars) else '-'} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.runs))
