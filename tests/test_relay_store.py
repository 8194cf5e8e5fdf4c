"""The relay outbox in the store, on SQLite and PostgreSQL: copies stored with their message, an
answer's copies held until it is delivered, one worker per place at a time, in order."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.store.relays import RelayPlan
from bridge.store.store import Store
from bridge.types import Author, ThreadRef
from tests.conftest import new_database

SLACK = ThreadRef("slack", "T1", "C1", "1.000")
DISCORD = ThreadRef("discord", "", "2002", "2002")
GITHUB = ThreadRef("github", "", "octo-org/support", "7")
PLAN = RelayPlan(share="room", origin="slack:C1", targets=(("discord:2002", DISCORD), ("github:octo-org/support#7",
                                                                                         GITHUB)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one database: two replicas (SQLite: two connections to the same file)."""
    if request.param == "sqlite":
        pair = (await Store.open(str(tmp_path / "b.db")), await Store.open(str(tmp_path / "b.db")))
    else:
        url = await new_database(request.getfixturevalue("pg_cluster"))
        pair = (await Store.open_postgres(url), await Store.open_postgres(url))
    yield pair
    for s in pair:
        await s.close()


async def accept(store: Store, n: int, *, answers: bool = False, heard: bool = False) -> int:
    accepted = await store.accept(event_id=f"slack:C1:{n}", session_key="share:room", persona="assistant",
                                  thread=SLACK, author=Author("U1", "ann"), content=f"message {n}",
                                  relay=RelayPlan(PLAN.share, PLAN.origin, PLAN.targets, answers=answers),
                                  heard=heard)
    assert accepted is not None
    return accepted[1]


async def test_copies_are_claimed_one_place_at_a_time_in_order(stores: tuple[Store, Store]) -> None:
    a, b = stores
    first = await accept(a, 1, heard=True)
    await accept(a, 2, heard=True)
    assert sorted(await b.relay_places_due()) == ["discord:2002", "github:octo-org/support#7"]
    head = await a.claim_relay("discord:2002", "a", lease_s=60)
    assert head is not None
    assert head.message_id == first
    assert head.text == "message 1"
    assert head.attempts == 1
    assert await b.claim_relay("discord:2002", "b", lease_s=60) is None, "the place is a's while it holds it"
    other = await b.claim_relay("github:octo-org/support#7", "b", lease_s=60)
    assert other is not None
    assert other.message_id == first, "other places go on in parallel"
    await a.relay_posted(head.id, ["111"])
    await a.relay_done(head.id, "delivered")
    second = await b.claim_relay("discord:2002", "b", lease_s=60)
    assert second is not None
    assert second.text == "message 2"
    (message,) = [m for m in await a.messages(head.session_id) if m.id == first]
    assert message.status == "answered", "heard: history, never answered"
    copies = await a.copies([first])
    assert [(c.place, c.state, c.platform_ids) for c in copies[first]] == [
        ("discord:2002", "delivered", ("111",)), ("github:octo-org/support#7", "pending", ())]


async def test_a_lease_that_ran_out_is_taken_over_and_counted_as_a_retry(stores: tuple[Store, Store]) -> None:
    a, b = stores
    await accept(a, 1, heard=True)
    taken = await a.claim_relay("discord:2002", "a", lease_s=-1)  # a died holding it: its lease is over
    assert taken is not None
    again = await b.claim_relay("discord:2002", "b", lease_s=60)
    assert again is not None
    assert (again.id, again.attempts) == (taken.id, 2), "b must look before posting again"


async def test_an_answer_is_copied_once_delivered_and_only_if_answered(stores: tuple[Store, Store]) -> None:
    a, _ = stores
    asked = await accept(a, 1, answers=True)
    refused = await accept(a, 2, answers=True)
    for place in ("discord:2002", "github:octo-org/support#7"):  # the two questions' own copies
        for _ in range(2):
            claimed = await a.claim_relay(place, "a", lease_s=60)
            assert claimed is not None
            assert claimed.what == "message"
            await a.relay_done(claimed.id, "delivered")
        assert await a.claim_relay(place, "a", lease_s=60) is None, "answers are held"
    await a.save_final(asked, "the answer", 3)
    await a.delivered(asked)
    await a.refuse(refused, "budget", "over budget")
    await a.delivered(refused)
    answer = await a.claim_relay("discord:2002", "a", lease_s=60)
    assert answer is not None
    assert (answer.what, answer.text, answer.message_id) == ("answer", "the answer", asked)
    await a.relay_done(answer.id, "delivered")
    assert await a.claim_relay("discord:2002", "a", lease_s=60) is None, "a refusal is not copied"


async def test_an_edit_follows_each_copy_and_a_repeat_is_nothing(stores: tuple[Store, Store]) -> None:
    a, _ = stores
    await accept(a, 1, heard=True)
    assert await a.relay_change("slack:C1:1", "message one", deleted=False) == 2
    assert await a.relay_change("slack:C1:1", "message one", deleted=False) == 0, "the same edit again"
    assert await a.relay_change("slack:C1:404", "", deleted=True) == 0, "not a relayed message"
    first = await a.claim_relay("discord:2002", "a", lease_s=60)
    assert first is not None
    assert first.what == "message"
    await a.relay_done(first.id, "delivered")
    change = await a.claim_relay("discord:2002", "a", lease_s=60)
    assert change is not None
    assert (change.what, change.copy_of, change.text) == ("edit", first.id, "message one")
    assert time.time() >= change.ready_at
