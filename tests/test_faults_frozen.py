"""A frozen replica (issue 17): `bridge run` SIGSTOPped past its lease while answering, then SIGCONTed.

The other replica takes the sessions over and answers; the one that wakes must not act for work it no
longer holds — no second answer, no 👀 put up by its expired timers, no late write over the reply
that was delivered. Run apart with ``pytest -m faults -s`` (PostgreSQL: a throwaway cluster).
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.test_github import comment_payload
from tests.test_replicas import deliver, health, replicas
from tests.waiting import until, until_async

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

MARKER = re.compile(r"\n\n<!-- bridge:reply github:comment:(\d+) part 0 -->$")


def replica_config(folder: Path, lease_s: float) -> None:
    config = folder / "bridge.yaml"
    text = re.sub(r"lease_s: [\d.]+", f"lease_s: {lease_s:g}", config.read_text())
    # A generous LLM timeout: on waking, the frozen replica's answers are complete in its sockets, so it
    # reaches the point of saving and posting them (the stale answer the fencing must stop).
    config.write_text(text.replace("timeout_s: 5", "timeout_s: 30"))


async def test_a_frozen_replica_answers_nothing_it_no_longer_holds(tmp_path: Path, fake_llm: FakeOpenAI,
                                                                  pg_url: str) -> None:
    lease_s, messages = 2.0, 6
    gh = await FakeGitHub().start()
    a, b = replicas(tmp_path, 2, pg_url, fake_llm, gh)
    for p in (a, b):
        replica_config(p.config.parent, lease_s)
    fake_llm.hold = asyncio.Event()  # every answer waits: A is mid-answer when it freezes
    frozen_for = 0.0
    a_holds = 0
    try:
        await asyncio.gather(a.start(), b.start())
        assert a.proc is not None
        assert b.proc is not None
        async with aiohttp.ClientSession() as session:
            b.proc.send_signal(signal.SIGSTOP)  # (briefly, holding nothing) so that A claims every session
            for i in range(1, messages + 1):
                await deliver(session, [a], comment_payload(f"question {i}", number=i, comment_id=i,
                                                            repo="octo-org/frozen"), 0)
            await until(lambda: len(fake_llm.requests) >= messages)
            a_holds = (await health(a))["replica"]["sessions_claimed"]  # type: ignore[index]
            b.proc.send_signal(signal.SIGCONT)
            a.proc.send_signal(signal.SIGSTOP)  # mid-answer, before its 2 s 👀 timers fire
            stopped = time.monotonic()

            async def b_holds_all() -> bool:
                return (await health(b))["replica"]["sessions_claimed"] == messages  # type: ignore[index,no-any-return]

            await until_async(b_holds_all, timeout=lease_s * 6)  # A's leases ran out; B took every session
            fake_llm.hold.set()  # B answers (and A's held answers are sent into its sockets, unread)

            def answered() -> dict[int, list[str]]:
                out: dict[int, list[str]] = {}
                for c in gh.comments:
                    if m := MARKER.search(c.body):
                        out.setdefault(int(m.group(1)), []).append(c.body[:m.start()])
                return out

            await until(lambda: len(answered()) == messages, timeout=30)
            # Frozen for three leases at least: every timer A had set has run out when it wakes.
            await until(lambda: time.monotonic() - stopped >= 3 * lease_s, timeout=3 * lease_s + 1)
            frozen_for = time.monotonic() - stopped
            a.proc.send_signal(signal.SIGCONT)

            async def a_settled() -> bool:
                data = await health(a)
                return data["in_flight"] == 0 and data["replica"]["sessions_claimed"] == 0  # type: ignore[index]

            await until_async(a_settled, timeout=lease_s * 5)

            async def b_holds_nothing() -> bool:
                return (await health(b))["replica"]["sessions_claimed"] == 0  # type: ignore[index,no-any-return]

            await until_async(b_holds_nothing, timeout=lease_s * 5)
        await asyncio.gather(a.stop(), b.stop())
    finally:
        for p in (a, b):
            if p.proc is not None and p.proc.returncode is None:
                p.proc.send_signal(signal.SIGCONT)
            await p.kill()
        await gh.stop()
    got = answered()
    duplicated = {cid: v for cid, v in got.items() if len(v) > 1}
    eyes_left = [r.target for r in gh.reactions if r.content == "eyes"]
    eyes_after_wake = [e for e in gh.reaction_log if e.action == "add" and e.at > stopped + frozen_for]
    print(f"\nfrozen replica ({frozen_for:.1f} s, lease {lease_s:g} s): sent {messages}, answered {len(got)}, "
          f"duplicated {len(duplicated)}, 👀 added after waking {len(eyes_after_wake)}, 👀 left {len(eyes_left)}")
    assert a_holds > 0, "A held sessions when it froze"
    assert len(got) == messages
    assert duplicated == {}
    assert eyes_after_wake == [], "an expired 👀 timer acted for a session another replica held"
    assert eyes_left == []
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT m.event_id, r.text, m.status FROM messages m JOIN replies r "
                                "ON r.message_id = m.id")
    finally:
        await conn.close()
    for event_id, text, status in rows:  # the history holds what was delivered, not a late overwrite
        cid = int(str(event_id).rsplit(":", 1)[1])
        assert (status, text) == ("answered", got[cid][0]), cid

