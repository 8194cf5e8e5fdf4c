"""Waiting for something a server records, with a deadline (tests poll the loopback fakes' logs)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def until(check: Callable[[], T], timeout: float = 10, interval: float = 0.02) -> T:
    """Return ``check()`` once it is truthy; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := check()):
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s (last value: {value!r})")
        await asyncio.sleep(interval)
    return value


async def until_async(check: Callable[[], Awaitable[T]], timeout: float = 10, interval: float = 0.02) -> T:
    """:func:`until` for a check that must await (an HTTP request to the bridge)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := await check()):
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s (last value: {value!r})")
        await asyncio.sleep(interval)
    return value
