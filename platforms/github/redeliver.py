"""At start, ask GitHub to redeliver the App's webhook deliveries that failed while the bridge was away.

GitHub never retries a failed webhook by itself. A GitHub App can list its webhook's recent
deliveries (``GET /app/hook/deliveries``, newest first, cursor pages in the ``Link`` header) and ask
for one to be sent again (``POST /app/hook/deliveries/{id}/attempts``), both with the app's JWT.
A redelivered event arrives at ``/github/webhook`` like any other; the event-id dedupe makes one
that was stored after all harmless. Token auth has no such API for us: redeliver by hand.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

from githubkit import GitHub
from githubkit.exception import RequestFailed
from githubkit.utils import UNSET
from githubkit_schemas.latest.models import HookDeliveryItem

log = logging.getLogger(__name__)

PER_PAGE = 100   # GitHub's largest page
MAX_PAGES = 50   # 5,000 deliveries: past that, a busy app's window is cut short rather than listed forever


@dataclass(frozen=True, slots=True)
class Redelivered:
    """What one pass did: deliveries seen in the window, events that never got through, redeliveries asked."""

    listed: int
    failed: int
    requested: int
    refused: int = 0  # redeliveries GitHub would not make (e.g. the delivery is too old)


def succeeded(status_code: int) -> bool:
    """A delivery the bridge took: 2xx (its 202s) or a redirect; 0 means GitHub could not connect at all."""
    return 200 <= status_code < 400


def pick_failed(deliveries: Iterable[HookDeliveryItem]) -> list[HookDeliveryItem]:
    """One delivery per event (``guid``) none of whose attempts succeeded, oldest first.

    An event redelivered successfully later has another entry with the same guid: it is skipped.
    Oldest first so that an issue's missed comments arrive in the order they were written.
    """
    items = list(deliveries)
    done = {d.guid for d in items if succeeded(d.status_code)}
    first: dict[str, HookDeliveryItem] = {}
    for d in sorted(items, key=lambda d: d.delivered_at):
        if d.guid not in done:
            first.setdefault(d.guid, d)
    return list(first.values())


def _next_cursor(response: Any) -> str | None:
    """The ``cursor`` of the ``rel="next"`` page in GitHub's Link header, or None on the last page."""
    nxt = response.raw_response.links.get("next")
    if not nxt:
        return None
    cursors = parse_qs(urlsplit(str(nxt.get("url", ""))).query).get("cursor")
    return cursors[0] if cursors else None


async def list_recent(app: GitHub[Any], since: dt.datetime) -> list[HookDeliveryItem]:
    """The app webhook's deliveries at or after ``since`` (pages are newest first: stop at the first older one)."""
    found: list[HookDeliveryItem] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        response = await app.rest.apps.async_list_webhook_deliveries(per_page=PER_PAGE,
                                                                     cursor=UNSET if cursor is None else cursor)
        page = response.parsed_data
        recent = [d for d in page if d.delivered_at >= since]
        found += recent
        cursor = _next_cursor(response)
        if cursor is None or len(recent) < len(page):
            break
    return found


async def redeliver_failed(app: GitHub[Any], hours: float) -> Redelivered:
    """Ask GitHub once to redeliver every event of the last ``hours`` that never reached the bridge."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
    recent = await list_recent(app, since)
    failed = pick_failed(recent)
    requested = refused = 0
    for d in failed:
        try:
            await app.rest.apps.async_redeliver_webhook_delivery(d.id)
        except RequestFailed as exc:
            if exc.response.status_code in (403, 404):
                raise  # the whole API is out of reach: redeliver_in_background says so once
            refused += 1
            log.warning("github: GitHub refused to redeliver delivery %d (%s.%s, HTTP %d)", d.id, d.event,
                        d.action or "", exc.response.status_code)
        else:
            requested += 1
    return Redelivered(listed=len(recent), failed=len(failed), requested=requested, refused=refused)


async def redeliver_in_background(app: GitHub[Any], hours: float) -> Redelivered | None:
    """:func:`redeliver_failed`, made safe to run as a start-up task: it logs, it never raises."""
    try:
        result = await redeliver_failed(app, hours)
    except RequestFailed as exc:
        status = exc.response.status_code
        if status in (403, 404):
            log.warning("github: cannot use the app's webhook deliveries API (HTTP %d): failed deliveries are not "
                        "redelivered automatically — give the app access to its webhook, or redeliver them from "
                        "the app's settings → Advanced → Recent Deliveries", status)
        else:
            log.warning("github: listing or redelivering failed webhook deliveries failed (HTTP %d)", status)
        return None
    except Exception as exc:  # unreachable, an answer githubkit cannot parse: start-up must not care
        log.warning("github: redelivering failed webhook deliveries failed (%s)", type(exc).__name__)
        return None
    log.info("github: webhook deliveries of the last %g h: %d listed, %d failed, %d asked to be redelivered%s",
             hours, result.listed, result.failed, result.requested,
             f", {result.refused} refused" if result.refused else "")
    return result


RedeliveryTask: TypeAlias = asyncio.Task[Redelivered | None]


def start_redelivery(app: GitHub[Any] | None, hours: float) -> RedeliveryTask | None:
    """Start the pass in the background (start-up never waits for it); None without App auth or with hours 0."""
    if app is None or hours <= 0:
        return None
    return asyncio.create_task(redeliver_in_background(app, hours), name="github-redeliver")


async def stop_redelivery(task: RedeliveryTask | None) -> None:
    """Cancel a pass still running at stop (its HTTP pool is about to close)."""
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait([task])  # waits without re-raising the task's cancellation into stop()
