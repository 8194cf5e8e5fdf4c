"""Answering through store failures: retry one message with backoff, in its place, until it is settled.

A store error while answering (a full disk, a lock held from outside, a lost database connection)
must neither skip the message — the next one in the session would be answered first, with a
history missing it — nor be retried blindly forever. So the lane's message is tried again with
exponential backoff for ``retry_for_s`` seconds; past that the user is told (once) and the bridge
keeps trying, at most every :data:`MAX_DELAY_S`, to record the message as failed before the lane moves
on. Lost leases and cancellation are not failures: they end the work at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bridge.store.fencing import LeaseLost

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0       # the longest wait between two tries
RETRY_FOR_S = 120.0      # how long a message is retried before the user is told


class StoreFailed(Exception):
    """A store write failed while the platform was being used: the platform is not to blame."""


async def until_settled(message_id: int, attempt: Callable[[], Awaitable[None]], *,
                        tell: Callable[[BaseException], Awaitable[None]],
                        settle: Callable[[], Awaitable[None]], retry_for_s: float = RETRY_FOR_S) -> None:
    """Run ``attempt`` until it succeeds; past ``retry_for_s`` call ``tell`` once, then ``settle``
    (record the message as failed) until that succeeds. Raises only :class:`LeaseLost` and cancellation."""
    deadline = time.monotonic() + retry_for_s
    delay = FIRST_DELAY_S
    while True:
        try:
            await attempt()
            return
        except LeaseLost:
            raise
        except Exception as exc:  # a store error, or the rare bug: never the platform's (handled inside)
            if time.monotonic() + delay > deadline:
                log.error("message %s: could not be answered for %g s (%s); telling the user", message_id,
                          retry_for_s, type(exc).__name__)
                await tell(exc)
                break
            log.warning("message %s: answering failed (%s); trying again in %.1f s", message_id,
                        type(exc).__name__, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_S)
    while True:
        try:
            await settle()
            return
        except LeaseLost:
            raise
        except Exception as exc:
            log.warning("message %s: cannot record it as failed yet (%s); trying again in %.1f s", message_id,
                        type(exc).__name__, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_S)
