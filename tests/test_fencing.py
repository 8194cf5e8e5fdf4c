"""PostgreSQL leases with fencing: work done under a lease stops — in the store and on the platform — once
the database has given the session to another replica; refusal notices are delivered there as on SQLite.

In-process, against the throwaway cluster (tests/pgcluster.py); the frozen `bridge run` replica is in
tests/test_faults_frozen.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import pytest

from bridge.app import Bridge
from bridge.config import Config
from bridge.conversation.responder import STORE_FAILED
from bridge.store.claims import Claims
from bridge.store.fencing import CURRENT, PROOF_SHARE, Lease, LeaseLost, guard
from bridge.store.postgres import PgDatabase
from bridge.store.store import Store
from bridge.types import Author, ThreadRef
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.platform import FakePlatform
from tests.waiting import until, until_async

pytestmark = pytest.mark.postgres

THREAD = ThreadRef("github", "", "octo-org/x", "7")


async def test_a_write_under_a_lease_taken_over_is_refused(pg_url: str) -> None:
    store = await Store.open_postgres(pg_url)
    assert store.pg is not None
    try:
        accepted = await store.accept(event_id="github:1", session_key="github:octo-org/x#7", persona="assistant",
                                      thread=THREAD, author=Author("alice", "alice"), content="hello")
        assert accepted is not None
        session, message_id = accepted
        a, b = Claims(store.pg, "replica-a", 30.0), Claims(store.pg, "replica-b", 30.0)
        sent = time.monotonic()
        [(sid, gen_a)] = (await a.claim(None, 10)).items()
        lease_a = Lease(sid, "replica-a", gen_a, sent + 30.0 * PROOF_SHARE)
        token = CURRENT.set(lease_a)
        try:
            await store.save_final(message_id, "A's answer", 2)  # A holds it: written
        finally:
            CURRENT.reset(token)
        conn = await asyncpg.connect(pg_url)  # A froze: its lease ran out, B claimed the session
        try:
            await conn.execute("UPDATE sessions SET lease_until = 0 WHERE id = $1", session.id)
        finally:
            await conn.close()
        [(_, gen_b)] = (await b.claim(None, 10)).items()
        assert gen_b == gen_a + 1
        await store.save_final(message_id, "B's answer", 2)
        token = CURRENT.set(lease_a)  # A wakes up and goes on where it was
        try:
            with pytest.raises(LeaseLost):
                await store.save_final(message_id, "A's late answer", 2)
            with pytest.raises(LeaseLost):
                await store.delivered(message_id)
            lease_a.proven_until = time.monotonic()  # its last renew was before the freeze
            with pytest.raises(LeaseLost):
                guard()  # and no platform call either
        finally:
            CURRENT.reset(token)
        assert await a.renew({sid: gen_a}, timeout=5) == set(), "A's renew does not revive the old claim"
        reply = await store.reply(message_id)
        assert reply is not None
        assert reply.text == "B's answer", "the late write did not overwrite the new holder's reply"
        msg = await store.message(message_id)
        assert msg is not None
        assert msg.status == "pending"
    finally:
        await store.close()


YAML = """
storage: {url: "${PG_URL}", lease_s: 3}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 5}
server: {port: 0}
refusal_message: "Sorry, not for you."
platforms:
  github: {token: ghp_abcdef, webhook_secret: s3cr3t-value}
channels:
  - {platform: github, where: "*", trigger: always, allow: {users: [alice]}}
"""


async def test_refused_people_are_told_on_postgresql(make_config: Callable[..., Config], fake_llm: FakeOpenAI,
                                                     pg_url: str) -> None:
    platform = FakePlatform()
    bridge = Bridge(make_config(YAML, LLM_URL=fake_llm.url, PG_URL=pg_url), platforms={"github": platform})
    await bridge.start()
    try:
        assert await platform.say("let me in", author="mallory") is False
        notice = await platform.reply()
        assert notice.text == "Sorry, not for you."
        await platform.say("hello", author="alice")
        assert (await platform.reply()).text == "You said: hello"
        assert len(fake_llm.requests) == 1, "the refused message never reached the model"
    finally:
        await bridge.stop()


OPEN_YAML = """
storage: {url: "${PG_URL}", lease_s: 3}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 5}
server: {port: 0}
platforms:
  github: {token: ghp_abcdef, webhook_secret: s3cr3t-value}
channels:
  - {platform: github, where: "*", trigger: always}
"""


async def test_a_message_the_store_keeps_refusing_is_told_once_not_retried_forever(
        make_config: Callable[..., Config], fake_llm: FakeOpenAI, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    platform = FakePlatform()
    bridge = Bridge(make_config(OPEN_YAML, LLM_URL=fake_llm.url, PG_URL=pg_url), platforms={"github": platform})
    await bridge.start()
    assert bridge.responder is not None
    bridge.responder.store_retry_s = 1.0
    try:  # a write PostgreSQL refuses for one message only, as a full tablespace or a constraint would
        await conn.execute("""
            CREATE FUNCTION refuse_first() RETURNS trigger AS $$ BEGIN
              IF (SELECT content FROM messages WHERE id = NEW.message_id) = 'first' THEN
                RAISE EXCEPTION 'could not extend file: No space left on device';
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_first BEFORE INSERT ON replies FOR EACH ROW EXECUTE FUNCTION refuse_first();""")
        await platform.say("first", event="e1")
        await platform.say("second", event="e2")
        notice, answer = await platform.reply(), await platform.reply()
        assert (notice.text, answer.text) == (STORE_FAILED, "You said: second"), "told, in order, then went on"

        async def settled() -> bool:
            rows = await conn.fetch("SELECT content, status FROM messages ORDER BY id")
            return [tuple(r) for r in rows] == [("first", "failed"), ("second", "answered")]

        await until_async(settled)
    finally:
        await bridge.stop()
        await conn.close()


HUNG_YAML = OPEN_YAML.replace("lease_s: 3", "lease_s: 1.5")


async def test_a_hung_renew_stops_the_work_before_the_lease_runs_out(
        make_config: Callable[..., Config], fake_llm: FakeOpenAI, pg_url: str) -> None:
    """A renew that never returns (here: blocked by a row lock, as a half-open connection would leave it)
    gives up after lease_s/3; once the lease cannot be proven the answer is stopped, and the session is
    answered once after the database answers again."""
    platform = FakePlatform()
    bridge = Bridge(make_config(HUNG_YAML, LLM_URL=fake_llm.url, PG_URL=pg_url), platforms={"github": platform})
    await bridge.start()
    conn = await asyncpg.connect(pg_url)
    fake_llm.hold = asyncio.Event()
    try:
        assert bridge.replica is not None
        replica = bridge.replica
        await platform.say("hello", event="e1")
        await until(lambda: len(fake_llm.requests) == 1 and replica.claimed == 1)
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT id FROM sessions FOR SHARE")  # renews (UPDATE) wait; claims skip the row
        await until(lambda: replica.claimed == 0, timeout=1.5 * 3)  # stopped: the lease could not be proven
        fake_llm.hold.set()  # its answer arrives now, to nobody
        assert platform.sent.empty()
        await tx.rollback()
        assert (await platform.reply()).text == "You said: hello", "claimed again and answered"
        assert len(fake_llm.requests) == 2
        assert platform.sent.empty(), "once"
    finally:
        fake_llm.hold.set()
        await conn.close()
        await bridge.stop()


async def test_a_transaction_left_idle_by_a_frozen_replica_is_ended_by_the_server(pg_url: str) -> None:
    """A replica frozen mid-transaction holds its session's row lock; the server ends such a transaction,
    so another replica can claim the session (here after 1 s instead of the default)."""
    frozen = await PgDatabase.connect(pg_url, min_size=1, max_size=1, idle_in_transaction_s=1.0)
    store = await Store.open_postgres(pg_url)
    other = await asyncpg.connect(pg_url)
    try:
        accepted = await store.accept(event_id="github:1", session_key="github:octo-org/x#7", persona="assistant",
                                      thread=THREAD, author=Author("alice", "alice"), content="hello")
        assert accepted is not None
        async with frozen.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await conn.execute("SELECT id FROM sessions FOR SHARE")  # ...and then the process stops

            async def claimable() -> bool:
                async with other.transaction():
                    row = await other.fetchrow("SELECT id FROM sessions FOR UPDATE SKIP LOCKED")
                return row is not None

            assert not await claimable()
            await until_async(claimable, timeout=10)
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
                await conn.execute("SELECT 1")  # on waking, its transaction (and connection) are gone
    finally:
        await other.close()
        await store.close()
        await frozen.pool.close()
