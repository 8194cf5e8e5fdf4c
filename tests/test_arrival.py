"""platforms/arrival.py on its own: the order guarantees the Slack and GitHub adapters rely on."""

from __future__ import annotations

import asyncio

from platforms.arrival import Arrivals, Place
from tests.waiting import until


async def test_each_waits_for_every_earlier_one_in_its_conversation_only() -> None:
    arrivals = Arrivals()
    first, second, third = (arrivals.place("C1") for _ in range(3))
    elsewhere = arrivals.place("C2")
    done: list[str] = []

    async def hand_over(name: str, place: Place) -> None:
        async with place:
            done.append(name)

    later = [asyncio.create_task(hand_over("third", third)), asyncio.create_task(hand_over("second", second))]
    await hand_over("elsewhere", elsewhere)  # another conversation does not wait for C1
    await asyncio.sleep(0)
    assert done == ["elsewhere"], "nothing in C1 before the first is handed over"
    await hand_over("first", first)
    await asyncio.gather(*later)
    assert done == ["elsewhere", "first", "second", "third"]
    await until(lambda: arrivals.waiting == 0)


async def test_one_that_gives_up_early_still_keeps_the_next_behind_the_one_before() -> None:
    arrivals = Arrivals()
    first, second = arrivals.place("C1"), arrivals.place("C1")
    waiting = asyncio.create_task(second.turn())
    await asyncio.sleep(0)
    waiting.cancel()  # the request behind the first was cancelled: the first must not be
    second.release()
    third = arrivals.place("C1")
    turn = asyncio.create_task(third.turn())
    await asyncio.sleep(0)
    assert not turn.done(), "the first is still being handed over"
    first.release()
    await turn
    third.release()
    await until(lambda: arrivals.waiting == 0)
