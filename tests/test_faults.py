"""Fault injection (issue 8): `bridge run` as a subprocess over the loopback fakes, under crashes,
a failing LLM and a Slack rate-limit storm. Each scenario prints lost / duplicated / answered / plain-error counts.

Run apart with ``pytest -m faults -s`` (``BRIDGE_FAULT_SEED=N`` for other kill times and faults);
the project's test command runs them too.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from tests.fakes import slack_server as slack
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.procs import ROOT, BridgeProcess, free_port
from tests.test_github import SECRET, comment_payload, sign
from tests.waiting import until

pytestmark = pytest.mark.faults
SEED = int(os.environ.get("BRIDGE_FAULT_SEED", "8"))  # another seed: other kill times, other faults

CONFIG = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 6, timeout_s: 1, answer_timeout_s: 60}
server: {port: "${PORT}"}
platforms:
  github: {token: ghp_fault_token, webhook_secret: "${SECRET}", api_url: "${GITHUB_URL}"}
channels:
  - {platform: github, where: "octo-org/*", trigger: always}
"""
MARKER = re.compile(r"<!-- bridge:reply github:comment:(\d+) part 0 -->")


def setup(tmp_path: Path, llm: FakeOpenAI, gh: FakeGitHub) -> BridgeProcess:
    (tmp_path / "prompts").symlink_to(ROOT / "prompts")
    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG)
    port = free_port()
    env = {"LLM_URL": llm.url, "PORT": str(port), "SECRET": SECRET, "GITHUB_URL": gh.url}
    return BridgeProcess(config, env, port)


async def deliver(session: aiohttp.ClientSession, bridge: BridgeProcess, payload: dict[str, object]) -> None:
    """One webhook delivery, redelivered (as an operator would from GitHub's settings) until accepted."""
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sign(body),
               "Content-Type": "application/json"}
    for _ in range(400):
        try:
            async with session.post(f"{bridge.url}/github/webhook", data=body, headers=headers) as r:
                if r.status < 500:
                    assert r.status == 202, await r.text()
                    return
        except (aiohttp.ClientError, ConnectionError):
            pass
        await asyncio.sleep(0.05)  # the bridge is down or restarting: try again shortly
    raise AssertionError("never accepted")


def answers(gh: FakeGitHub) -> dict[int, list[tuple[int, str]]]:
    """Comment id answered → [(issue number, reply body)], from the hidden markers."""
    out: dict[int, list[tuple[int, str]]] = {}
    for c in gh.comments:
        m = MARKER.search(c.body)
        if m:
            out.setdefault(int(m.group(1)), []).append((c.number, c.body))
    return out


def report(name: str, sent: int, got: dict[int, list[tuple[int, str]]]) -> tuple[int, int, int, int]:
    lost = sum(1 for cid in range(1, sent + 1) if cid not in got)
    duplicated = sum(len(v) - 1 for v in got.values() if len(v) > 1)
    errors = sum(1 for v in got.values() if v[0][1].startswith("⚠️"))
    answered = len(got) - errors
    print(f"\n{name}: sent {sent}, lost {lost}, duplicated {duplicated}, answered {answered}, plain errors {errors}")
    return lost, duplicated, answered, errors


async def test_sigkills_during_load_lose_nothing_and_answer_nothing_twice(tmp_path: Path,
                                                                          fake_llm: FakeOpenAI) -> None:
    rng = random.Random(SEED)
    gh = await FakeGitHub().start()
    fake_llm.chunk_delay = 0.002  # answers take a little while, so kills land mid-answer
    bridge = setup(tmp_path, fake_llm, gh)
    messages, issues = 300, 40
    payloads = [comment_payload(f"question {i}", number=rng.randrange(1, issues + 1), comment_id=i,
                                repo="octo-org/load") for i in range(1, messages + 1)]
    deliveries = [p for p in payloads for _ in range(3)]  # every delivery sent three times
    rng.shuffle(deliveries)
    await bridge.start()
    try:
        async with aiohttp.ClientSession() as session:
            async def killer() -> None:
                for _ in range(3):
                    await until(lambda: len(gh.comments) >= rng.randrange(10, messages // 2), timeout=60)
                    await bridge.kill()
                    await bridge.start()

            kills = asyncio.create_task(killer())
            for i in range(0, len(deliveries), 30):
                await asyncio.gather(*(deliver(session, bridge, p) for p in deliveries[i:i + 30]))
            await kills
        await until(lambda: len(answers(gh)) >= messages, timeout=120)
        await bridge.stop()
    finally:
        await bridge.kill()
        await gh.stop()
    got = answers(gh)
    lost, duplicated, _, errors = report("SIGKILL x3, every delivery x3", messages, got)
    assert (lost, duplicated, errors) == (0, 0, 0)
    with sqlite3.connect(tmp_path / "bridge.db") as db:  # the order in which the bridge received them
        arrived = db.execute("SELECT s.key, m.event_id FROM messages m JOIN sessions s ON s.id = m.session_id "
                             "ORDER BY m.id").fetchall()
    for number in range(1, issues + 1):  # per-session order kept: answers in the order the questions arrived
        key = f"github:octo-org/load#{number}"
        asked = [int(event.rsplit(":", 1)[1]) for k, event in arrived if k == key]
        replied = [cid for c in gh.comments if c.number == number and (m := MARKER.search(c.body))
                   for cid in [int(m.group(1))]]
        assert replied == asked, number


async def test_an_llm_failing_30_percent_of_calls_still_answers_nearly_all(tmp_path: Path,
                                                                           fake_llm: FakeOpenAI) -> None:
    gh = await FakeGitHub().start()
    fake_llm.chaos(0.3, seed=SEED + 22, hang_s=2.0)
    bridge = setup(tmp_path, fake_llm, gh)
    messages = 200
    await bridge.start()
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(deliver(session, bridge, comment_payload(f"q {i}", number=i % 40 + 1,
                                                                            comment_id=i, repo="octo-org/x"))
                                   for i in range(1, messages + 1)))
        await until(lambda: len(answers(gh)) >= messages, timeout=180)
        async with aiohttp.ClientSession() as session, session.get(f"{bridge.url}/metrics") as r:
            metrics = await r.text()
        await bridge.stop()
    finally:
        await bridge.kill()
        await gh.stop()
    got = answers(gh)
    lost, duplicated, answered, _ = report(f"LLM failing 30% ({fake_llm.chaos_faults})", messages, got)
    assert (lost, duplicated) == (0, 0)
    assert answered >= 0.99 * messages
    assert all(not body.startswith("⚠️") or "\n" not in body.split("<!--")[0].strip()
               for v in got.values() for _, body in v), "an error is never glued to half an answer"
    def total(prefix: str, skip: str = "\x00") -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith(prefix) and skip not in line)

    # Every request is counted, and every failed one was retried (all were answered in the end).
    assert total("bridge_llm_attempts_total{") == len(fake_llm.requests)
    assert total("bridge_llm_retries_total{") == total("bridge_llm_attempts_total{", skip='outcome="ok"') > 0


SLACK_CONFIG = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 6, timeout_s: 5}
server: {port: "${PORT}"}
platforms:
  slack: {bot_token: "${BOT}", signing_secret: "${SIGNING}", api_url: "${API}", edit_interval_s: 0.2,
          reply_deadline_s: 60}
channels:
  - {platform: slack, where: "*", trigger: mention}
"""


async def slack_event(session: aiohttp.ClientSession, bridge: BridgeProcess, event: dict[str, object]) -> None:
    """One Events API request, delivered again (as Slack retries) until the bridge acknowledges it."""
    raw = json.dumps(slack.event_callback(event)).encode()
    for attempt in range(400):
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(ts),
                   "X-Slack-Signature": slack.sign(raw, slack.SIGNING_SECRET, ts)}
        if attempt:
            headers.update({"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"})
        try:
            async with session.post(f"{bridge.url}/slack/events", data=raw, headers=headers) as r:
                if r.status == 200:
                    return
        except (aiohttp.ClientError, ConnectionError):
            pass
        await asyncio.sleep(0.05)  # Slack retries after a while
    raise AssertionError("never acknowledged")


async def test_slack_429_storm_and_sigkills_every_thread_ends_with_the_whole_answer(
        tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    rng = random.Random(SEED + 12)
    fake = await FakeSlack().start()
    fake.echo = False
    fake.add_user("U0ALICE", "alice")
    answer = "The whole answer, which must arrive complete in its thread whatever Slack says. " * 4
    fake_llm.reply = lambda _req: answer
    fake_llm.chunk_delay = 0.01
    (tmp_path / "prompts").symlink_to(ROOT / "prompts")
    config = tmp_path / "bridge.yaml"
    config.write_text(SLACK_CONFIG)
    port = free_port()
    bridge = BridgeProcess(config, {"LLM_URL": fake_llm.url, "BOT": slack.BOT_TOKEN, "SIGNING": slack.SIGNING_SECRET,
                                    "API": fake.url, "PORT": str(port)}, port)
    threads = 60
    mentions = [slack.app_mention(f"<@{slack.BOT_USER}> question {i}", user="U0ALICE", channel=f"C0STORM{i % 12:02d}")
                for i in range(threads)]
    await bridge.start()
    fake.storm(20.0, share=0.5)  # half of all posts and edits refused with 429 for 20 s
    try:
        async with aiohttp.ClientSession() as session:
            async def killer() -> None:
                for _ in range(2):
                    await until(lambda: len(fake.posted) >= rng.randrange(5, threads), timeout=60)
                    await bridge.kill()
                    await bridge.start()

            kills = asyncio.create_task(killer())
            await asyncio.gather(*(slack_event(session, bridge, m) for m in mentions))
            await kills

            def complete() -> int:
                return sum(1 for m in mentions
                           if [p.text for p in fake.replies(str(m["channel"]), str(m["ts"]))] == [answer])

            await until(lambda: complete() == threads, timeout=180)
        await bridge.stop()
    finally:
        await bridge.kill()
        await fake.stop()
    per_thread = {str(m["ts"]): fake.replies(str(m["channel"]), str(m["ts"])) for m in mentions}
    lost = sum(1 for posts in per_thread.values() if not posts)
    duplicated = sum(len(posts) - 1 for posts in per_thread.values() if len(posts) > 1)
    refused = sum(1 for c in fake.calls if c.status == 429)
    print(f"\nSlack 429 storm (½ of calls, 20 s) + SIGKILL x2: threads {threads}, lost {lost}, duplicated "
          f"{duplicated}, complete {sum(1 for p in per_thread.values() if [x.text for x in p] == [answer])}, "
          f"429s answered {refused}")
    assert (lost, duplicated) == (0, 0)
    assert refused > 0


async def test_a_second_process_on_the_same_sqlite_file_refuses_to_start(tmp_path: Path,
                                                                          fake_llm: FakeOpenAI) -> None:
    """Two bridges on one file would both answer every message: the second one stops at once, saying
    which file and which pid hold it; readers still work beside the first, and after it dies the
    file is free again (a SIGKILL leaves no stale lock)."""
    gh = await FakeGitHub().start()
    first = setup(tmp_path, fake_llm, gh)
    await first.start()
    assert first.proc is not None
    env = {**os.environ, **first.env, "PORT": str(free_port())}

    async def bridge_cli(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *first.argv, *args, "--config", str(first.config), env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:  # it did not refuse: it runs beside the first one
            proc.kill()
            await proc.wait()
            raise AssertionError(f"`bridge {args[0]}` did not stop on a file in use") from None
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    try:
        code, out = await bridge_cli("run")
        print(f"\nsecond bridge run: exit {code}: {out.strip()}")
        assert code == 1
        assert str(tmp_path / "bridge.db") in out
        assert f"pid {first.proc.pid}" in out
        assert "Traceback" not in out
        code, out = await bridge_cli("migrate", "--to", "postgresql://bridge@127.0.0.1:1/bridge")
        assert (code, "Traceback" in out) == (1, False)
        assert f"pid {first.proc.pid}" in out
        assert (await bridge_cli("sessions"))[0] == 0
        assert (await bridge_cli("usage"))[0] == 0
        assert (await bridge_cli("backup", str(tmp_path / "copy.db")))[0] == 0
        await first.kill()
        second = BridgeProcess(first.config, {**first.env, "PORT": env["PORT"]}, int(env["PORT"]))
        await second.start()  # the kernel dropped the dead process's lock
        await second.stop()
    finally:
        await first.kill()
        await gh.stop()


async def test_a_write_lock_held_from_outside_while_webhooks_arrive(tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    """An operator's ``sqlite3`` shell (or a backup tool) holds the write lock for 3 s while webhooks
    arrive: ``/healthz`` keeps answering within 250 ms, and every message is answered once after."""
    gh = await FakeGitHub().start()
    bridge = setup(tmp_path, fake_llm, gh)
    await bridge.start()
    messages = 20
    worst = 0.0
    try:
        async with aiohttp.ClientSession() as session:
            await deliver(session, bridge, comment_payload("before", number=1, comment_id=1, repo="octo-org/lock"))
            await until(lambda: len(answers(gh)) == 1)
            outside = sqlite3.connect(tmp_path / "bridge.db", isolation_level=None, check_same_thread=False)
            await asyncio.to_thread(outside.execute, "BEGIN IMMEDIATE")
            loop = asyncio.get_running_loop()
            held_until = loop.time() + 3

            async def health() -> None:
                nonlocal worst
                while loop.time() < held_until + 0.5:
                    started = loop.time()
                    async with session.get(f"{bridge.url}/healthz") as r:
                        await r.read()
                    worst = max(worst, loop.time() - started)
                    await asyncio.sleep(0.05)

            probe = asyncio.create_task(health())
            sends = asyncio.gather(*(deliver(session, bridge, comment_payload(
                f"question {i}", number=i, comment_id=i, repo="octo-org/lock")) for i in range(2, messages + 2)))
            await asyncio.sleep(3)  # the hold: how long the outside connection keeps the lock is the fault
            await asyncio.to_thread(outside.execute, "COMMIT")
            await asyncio.to_thread(outside.close)
            await sends
            await probe
            await until(lambda: len(answers(gh)) >= messages + 1, timeout=60)
        await bridge.stop()
    finally:
        await bridge.kill()
        await gh.stop()
    got = answers(gh)
    lost, duplicated, _, errors = report("write lock held 3 s from outside", messages + 1, got)
    print(f"/healthz slowest answer while the lock was held: {worst * 1000:.0f} ms")
    assert (lost, duplicated, errors) == (0, 0, 0)
    assert worst < 0.25
