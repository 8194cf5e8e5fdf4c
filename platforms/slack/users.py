"""People's names for the model: ``users.info``, cached, never in the way of an answer.

A failed lookup (no ``users:read`` scope, a deleted user, Slack slow) falls back to the user id;
the message is still answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.untrusted.logs import excerpt

log = logging.getLogger(__name__)


def display_name(user: dict[str, Any]) -> str:
    """What Slack shows: the display name, else the full name, else the handle."""
    profile = user.get("profile") or {}
    for candidate in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return str(user.get("id") or "")


class UserNames:
    def __init__(self, client: AsyncWebClient, *, ttl_s: float = 3600.0, max_entries: int = 5000,
                 timeout_s: float = 2.0) -> None:
        self._client = client
        self._ttl = ttl_s
        self._max = max_entries
        self._timeout = timeout_s  # Slack wants an ack within 3 s; names are not worth a retry
        self._cache: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._warned = False
        self._inflight: dict[str, asyncio.Task[str | None]] = {}

    def _cached(self, user_id: str) -> str | None:
        hit = self._cache.get(user_id)
        if hit is None or time.monotonic() - hit[0] > self._ttl:
            return None
        self._cache.move_to_end(user_id)
        return hit[1]

    async def _lookup(self, user_id: str) -> str | None:
        try:
            resp = await self._client.users_info(user=user_id)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error == "missing_scope" and not self._warned:
                self._warned = True
                log.warning("slack: users.info needs the users:read scope; showing user ids instead of names "
                            "until it is added (then reinstall the app)")
            elif error != "missing_scope":
                log.info("slack: users.info for %s failed: %s", excerpt(user_id), excerpt(error))
            return None
        except Exception as exc:  # Slack slow or unreachable: the message is answered anyway
            log.warning("slack: looking up a user's name failed: %s", type(exc).__name__)
            return None
        user = resp.get("user")
        if not isinstance(user, dict):
            return None
        name = display_name(user)
        self._cache[user_id] = (time.monotonic(), name)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return name

    def _lookup_task(self, user_id: str) -> asyncio.Task[str | None]:
        """One lookup per user at a time; it may outlive a caller's timeout and still fill the cache."""
        task = self._inflight.get(user_id)
        if task is None:
            task = asyncio.ensure_future(self._lookup(user_id))
            self._inflight[user_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(user_id, None))
        return task

    async def resolve(self, user_ids: Iterable[str]) -> dict[str, str]:
        """Names for the ids known or found within the timeout; the others are left out."""
        names: dict[str, str] = {}
        missing: list[str] = []
        for uid in dict.fromkeys(user_ids):
            cached = self._cached(uid)
            if cached is not None:
                names[uid] = cached
            else:
                missing.append(uid)
        if not missing:
            return names
        tasks = {uid: self._lookup_task(uid) for uid in missing}
        await asyncio.wait(tasks.values(), timeout=self._timeout)
        for uid, task in tasks.items():
            if task.done() and not task.cancelled() and task.result():
                names[uid] = str(task.result())
        return names

    def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
