"""Store.refuse_telling_once on both stores: told once per person and thread, never "told" without the notice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.store.store import Store
from bridge.types import Author
from tests.storefault import accept_inserts, refuse_inserts
from tests.test_store import thread

ANN = Author("583231", "ann")


async def refused(s: Store, event: str) -> int:
    accepted = await s.accept(event_id=event, session_key="github:octo/repo#1", persona="assistant",
                              thread=thread(1), author=ANN, content="spend your money", refused="access: not allowed")
    assert accepted is not None
    return accepted[1]


async def test_the_notice_is_stored_with_the_first_refusal_only(store: Store) -> None:
    first, second = await refused(store, "e1"), await refused(store, "e2")
    assert await store.refuse_telling_once(first, thread(1).key, ANN.id, "Not here, sorry.")
    assert not await store.refuse_telling_once(second, thread(1).key, ANN.id, "Not here, sorry.")
    told = await store.reply(first)
    assert told is not None
    assert (told.text, told.final) == ("Not here, sorry.", True)
    assert await store.reply(second) is None


async def test_a_notice_that_could_not_be_stored_leaves_the_person_to_be_told_next_time(tmp_path: Path) -> None:
    db = tmp_path / "bridge.db"
    s = await Store.open(str(db))
    try:
        first = await refused(s, "e1")
        await refuse_inserts(db, "replies")
        with pytest.raises(Exception, match="disk is full"):
            await s.refuse_telling_once(first, thread(1).key, ANN.id, "Not here, sorry.")
        await accept_inserts(db, "replies")
        second = await refused(s, "e2")
        assert await s.refuse_telling_once(second, thread(1).key, ANN.id, "Not here, sorry."), \
            "the failed attempt did not count as telling them"
    finally:
        await s.close()
