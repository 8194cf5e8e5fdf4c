"""👍/👎 from any platform → the store and ``/metrics``.

A platform hands over a :class:`~bridge.types.Rating` naming the answer by its reply key; only
answers the bridge gave are rated (a forged or stale key changes nothing), once per person per
answer, a second click replacing the first (bridge/store/feedback.py).
"""

from __future__ import annotations

import logging

from bridge.metrics import Metrics
from bridge.store.store import Store
from bridge.types import Rating

log = logging.getLogger(__name__)


class Ratings:
    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store, self._metrics = store, metrics

    async def record(self, rating: Rating) -> bool:
        """The :data:`~bridge.types.RatingSink` given to platforms; False when no such answer exists."""
        if rating.value not in (-1, 1) or not rating.user_id:
            return False
        persona = await self._store.record_feedback(rating.key, platform=rating.platform, user_id=rating.user_id,
                                                    value=rating.value)
        if persona is None:
            log.info("%s: a rating for an answer the store does not know was ignored", rating.platform)
            return False
        self._metrics.feedback.labels(platform=rating.platform, persona=persona,
                                      rating="up" if rating.value > 0 else "down").inc()
        return True
