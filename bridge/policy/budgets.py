"""Budgets (``limits:``): whether one more answer may be asked for, and the sentence when not.

Windows are calendar ones, in UTC — a day from 00:00, an hour from :00 — so "when it resets" is
one plain time everybody can read. Usage comes from the store (``usage`` rows), so budgets hold
across restarts and across ``/reset``.

The check runs once an answer slot (``llm.max_concurrent``) is held, right before the LLM is
asked, and an answer's cost is recorded before its slot is given back. So a limit is passed by at
most the answers being written when it was reached — one with ``max_concurrent: 1``, at most
``max_concurrent`` per replica otherwise — each by its own size. Every attempt that reached the
model counts, cut, failed or retried. Day limits read running totals: one key lookup each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bridge.policy.config import Limits
from bridge.store.usage import (
    DayTotals,
    TotalsQuery,
    UsageQueries,
    UserTotalsSince,
    channel_scope,
    session_scope,
    user_scope,
)

HOUR_S = 3600
DAY_S = 86400


@dataclass(frozen=True, slots=True)
class Scope:
    """Who and where one message is, as budgets count it."""

    platform: str
    user_id: str
    channel: str
    session_key: str


@dataclass(frozen=True, slots=True)
class Budget:
    """One limit in force: what it allows, what is used, and when the window starts again."""

    key: str        # the ``limits:`` key, e.g. ``user_tokens_per_day``
    limit: int
    used: int
    resets_at: float

    @property
    def exceeded(self) -> bool:
        return self.used >= self.limit

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


_SENTENCES = {
    "user_messages_per_hour": "You have sent the {limit:,} messages an hour I can answer for one person",
    "user_tokens_per_day": "You have used your daily allowance of {limit:,} tokens with me",
    "session_tokens_per_day": "This conversation has used its daily allowance of {limit:,} tokens",
    "channel_tokens_per_day": "This channel has used its daily allowance of {limit:,} tokens",
    "total_tokens_per_day": "I have used the whole daily allowance of {limit:,} tokens my operator set",
}
# Checked in this order: the first one exceeded is the one named.
ORDER = tuple(_SENTENCES)


def window_start(now: float, length: int) -> float:
    return now - now % length  # UTC: the epoch starts at 00:00 UTC


def when(at: float, now: float) -> str:
    """``00:00 UTC, in 3 h 12 min``."""
    clock = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%H:%M UTC")
    minutes = max(int((at - now + 59) // 60), 1)
    hours, minutes = divmod(minutes, 60)
    left = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"{clock}, in {left}"


def sentence(budget: Budget, now: float) -> str:
    """One plain sentence: which limit, and when it resets. Nothing was sent to the model."""
    what = _SENTENCES[budget.key].format(limit=budget.limit)
    return f"⏳ {what} ({budget.key}), so I won't answer this one. It resets at {when(budget.resets_at, now)}."


def _query(key: str, scope: Scope, day: float, hour: float) -> TotalsQuery:
    """What one limit counts: the person's answers this hour, or a scope's tokens today."""
    if key == "user_messages_per_hour":
        return UserTotalsSince(hour, scope.platform, scope.user_id)
    if key == "user_tokens_per_day":
        return DayTotals(day, user_scope(scope.platform, scope.user_id))
    if key == "session_tokens_per_day":
        return DayTotals(day, session_scope(scope.session_key))
    if key == "channel_tokens_per_day":
        return DayTotals(day, channel_scope(scope.platform, scope.channel))
    return DayTotals(day, "total")


async def budgets(store: UsageQueries, limits: Limits, scope: Scope, now: float) -> list[Budget]:
    """Every limit that is set, with its usage so far, in :data:`ORDER` (read together: one trip)."""
    day, hour = window_start(now, DAY_S), window_start(now, HOUR_S)
    keys = [key for key in ORDER if getattr(limits, key) is not None]
    used = await store.totals([_query(key, scope, day, hour) for key in keys])
    return [Budget(key, getattr(limits, key), totals.messages, hour + HOUR_S) if key == "user_messages_per_hour"
            else Budget(key, getattr(limits, key), totals.tokens, day + DAY_S)
            for key, totals in zip(keys, used, strict=True)]


async def first_exceeded(store: UsageQueries, limits: Limits, scope: Scope, now: float) -> Budget | None:
    for budget in await budgets(store, limits, scope, now):
        if budget.exceeded:
            return budget
    return None


def describe(limits: Limits) -> str:
    """One line for ``bridge check``: the limits in force, or "none"."""
    parts = [f"{key} {getattr(limits, key):,}" for key in ORDER if getattr(limits, key) is not None]
    return ", ".join(parts) or "none"
