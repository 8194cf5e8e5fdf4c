"""Several `bridge run` processes on one PostgreSQL: each message answered once, in its session's order,
whichever replica a webhook reached — also when one replica is SIGKILLed mid-load.

Run apart with ``pytest -m postgres -s`` (the figures are printed); the project's test command runs them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import random
import re
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests import pgcluster
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.procs import ROOT, BridgeProcess, free_port
from tests.test_github import SECRET, comment_payload, sign
from tests.waiting import until, until_async

pytestmark = pytest.mark.postgres

# A recovering reply looks for its own marked comment on GitHub (the delivery work, platforms/github/delivery.py).
FINDS_OWN_POSTS = importlib.util.find_spec("platforms.github.delivery") is not None
LEASE_S = 3.0
CONFIG = """
storage: {url: "postgresql://bridge:${PGPASSWORD}@127.0.0.1:${PGPORT}/${PGDATABASE}", lease_s: LEASE}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 2, timeout_s: 5}
server: {port: "${PORT}"}
platforms:
  github: {token: ghp_replica_token, webhook_secret: "${SECRET}", api_url: "${GITHUB_URL}"}
channels:
  - {platform: github, where: "octo-org/*", trigger: always}
""".replace("LEASE", str(LEASE_S))
MARKER = re.compile(r"<!-- bridge:reply github:comment:(\d+) part 0 -->")


def replicas(tmp_path: Path, n: int, pg_url: str, llm: FakeOpenAI, gh: FakeGitHub) -> list[BridgeProcess]:
    database = pg_url.rsplit("/", 1)[1]
    out = []
    for i in range(n):
        folder = tmp_path / f"replica{i}"
        folder.mkdir()
        (folder / "prompts").symlink_to(ROOT / "prompts")
        (folder / "bridge.yaml").write_text(CONFIG)
        port = free_port()
        env = {"PGPASSWORD": pgcluster.PASSWORD, "PGPORT": pg_url.rsplit(":", 1)[1].split("/")[0],
               "PGDATABASE": database, "LLM_URL": llm.url, "PORT": str(port), "SECRET": SECRET,
               "GITHUB_URL": gh.url}
        out.append(BridgeProcess(folder / "bridge.yaml", env, port))
    return out


async def deliver(session: aiohttp.ClientSession, targets: list[BridgeProcess], payload: dict[str, object],
                  start: int) -> None:
    """A load balancer: one delivery, to the next replica that takes it (a dead one is skipped)."""
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sign(body),
               "Content-Type": "application/json"}
    for attempt in range(200):
        bridge = targets[(start + attempt) % len(targets)]
        try:
            async with session.post(f"{bridge.url}/github/webhook", data=body, headers=headers) as r:
                if r.status < 500:
                    assert r.status == 202, await r.text()
                    return
        except (aiohttp.ClientError, ConnectionError):
            pass
        await asyncio.sleep(0.02)
    raise AssertionError("no replica accepted the delivery")


def answers(gh: FakeGitHub) -> dict[int, list[int]]:
    """Comment id answered → the issue numbers it was answered on (one entry per reply posted)."""
    out: dict[int, list[int]] = {}
    for c in gh.comments:
        m = MARKER.search(c.body)
        if m:
            out.setdefault(int(m.group(1)), []).append(c.number)
    return out


async def arrival_order(pg_url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT s.key, m.event_id FROM messages m JOIN sessions s ON s.id = m.session_id "
                                "ORDER BY m.id")
    finally:
        await conn.close()
    return [(r[0], r[1]) for r in rows]


async def health(bridge: BridgeProcess) -> dict[str, object]:
    async with aiohttp.ClientSession() as s, s.get(f"{bridge.url}/healthz") as r:
        data: dict[str, object] = await r.json()
        return data


@pytest.mark.parametrize("n", [2, 3])
async def test_replicas_under_load_with_one_sigkilled(tmp_path: Path, fake_llm: FakeOpenAI, pg_url: str,
                                                      n: int) -> None:
    rng = random.Random(n)
    gh = await FakeGitHub().start()
    fake_llm.chunk_delay = 0.002  # answers take a little while, so the kill lands mid-answer
    procs = replicas(tmp_path, n, pg_url, fake_llm, gh)
    messages, issues = 150, 20
    payloads = [comment_payload(f"question {i}", number=rng.randrange(1, issues + 1), comment_id=i,
                                repo="octo-org/load") for i in range(1, messages + 1)]
    deliveries = [p for p in payloads for _ in range(2)]  # each delivered twice (GitHub redelivery)
    rng.shuffle(deliveries)
    await asyncio.gather(*(p.start() for p in procs))
    victim = procs[0]
    killed_at = 0
    alive = procs[1:]
    try:
        roles = [await health(p) for p in procs]
        assert len({r["replica"]["replica"] for r in roles}) == n  # type: ignore[index]
        async with aiohttp.ClientSession() as session:
            async def killer() -> None:
                nonlocal killed_at
                await until(lambda: len(gh.comments) >= messages // 4, timeout=60)
                await victim.kill()
                killed_at = len(gh.comments)

            kills = asyncio.create_task(killer())
            turn = itertools.count()
            for i in range(0, len(deliveries), 20):
                targets = procs if victim.proc and victim.proc.returncode is None else alive
                await asyncio.gather(*(deliver(session, targets, p, next(turn)) for p in deliveries[i:i + 20]))
            await kills
        started = time.monotonic()
        await until(lambda: len(answers(gh)) >= messages, timeout=90)
        print(f"\n{n} replicas: the last answers {time.monotonic() - started:.1f} s after the load ended "
              f"(lease {LEASE_S:g} s)")
        after = [await health(p) for p in alive]
        await asyncio.gather(*(p.stop() for p in alive))
    finally:
        for p in procs:
            await p.kill()
        await gh.stop()
    got = answers(gh)
    positions: dict[int, list[int]] = {}
    for index, c in enumerate(gh.comments):
        if m := MARKER.search(c.body):
            positions.setdefault(int(m.group(1)), []).append(index)
    lost = [cid for cid in range(1, messages + 1) if cid not in got]
    duplicated = {cid: v for cid, v in got.items() if len(v) > 1}
    print(f"{n} replicas, one SIGKILLed: sent {messages}, lost {len(lost)}, duplicated {len(duplicated)}")
    assert lost == []
    # Posted by the killed replica in the instant before it recorded the post: only the platform can tell
    # (the GitHub adapter finding its own marked comment on recovery). Anything else is a real double answer.
    crash_window = {cid for cid in duplicated if positions[cid][0] < killed_at <= positions[cid][1]}
    print(f"   of which posted by the killed replica but not yet recorded when it died: {len(crash_window)}")
    assert set(duplicated) == crash_window
    if FINDS_OWN_POSTS:
        assert duplicated == {}
    arrived = await arrival_order(pg_url)
    assert len(arrived) == messages  # every event stored once, whichever replica got it
    for number in range(1, issues + 1):  # per-session order: answers in the order the questions arrived
        key = f"github:octo-org/load#{number}"
        asked = [int(event.rsplit(":", 1)[1]) for k, event in arrived if k == key]
        replied = [int(m.group(1)) for c in gh.comments if c.number == number and (m := MARKER.search(c.body))]
        assert list(dict.fromkeys(replied)) == asked, number  # a crash-window repeat aside (see above)
    for p in procs:  # the database password never reaches a log
        assert pgcluster.PASSWORD not in p.log.read_text()
    assert all(r["status"] == "ok" for r in after)


async def test_a_dead_replicas_session_is_taken_over_within_the_lease(tmp_path: Path, fake_llm: FakeOpenAI,
                                                                       pg_url: str) -> None:
    gh = await FakeGitHub().start()
    a, b = replicas(tmp_path, 2, pg_url, fake_llm, gh)
    await a.start()
    fake_llm.hold = asyncio.Event()  # A takes the message and is stuck in the LLM call
    try:
        async with aiohttp.ClientSession() as session:
            await deliver(session, [a], comment_payload("slow one", number=7, comment_id=1, repo="octo-org/x"), 0)
            await until(lambda: len(fake_llm.requests) >= 1)
            await b.start()

            async def b_claims_nothing() -> bool:
                data = await health(b)
                return data["replica"]["sessions_claimed"] == 0  # type: ignore[index,no-any-return]

            assert await b_claims_nothing()
            await a.kill()
            killed = time.monotonic()
            fake_llm.hold.set()
            await until(lambda: len(answers(gh)) >= 1, timeout=LEASE_S * 3)
            took = time.monotonic() - killed
            print(f"\ntakeover: answered {took:.2f} s after the SIGKILL (lease {LEASE_S:g} s)")
            assert took <= LEASE_S + 1.5
            await deliver(session, [b], comment_payload("next", number=7, comment_id=2, repo="octo-org/x"), 0)
            started = time.monotonic()
            await until(lambda: len(answers(gh)) >= 2, timeout=5)
            assert time.monotonic() - started < 1.0  # woken by NOTIFY, not by the slow safety sweep
            await until_async(b_claims_nothing)  # released once the queue was empty
        await b.stop()
    finally:
        await a.kill()
        await b.kill()
        await gh.stop()
    assert answers(gh) == {1: [7], 2: [7]}
