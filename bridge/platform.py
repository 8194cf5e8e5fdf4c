"""The one interface every platform adapter implements (matterbridge's ``Bridger``, in Python).

Data flows one way: an adapter turns native events into :class:`~bridge.types.Incoming` and hands
them to the ``Inbox``; the core answers by calling :meth:`Platform.send` with a stream of text
snapshots. An adapter never touches the store; the core never imports an adapter.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from bridge.types import Incoming, Outgoing

if TYPE_CHECKING:
    from bridge.config import Config

log = logging.getLogger(__name__)

class PlatformStartError(RuntimeError):
    """A platform could not start (refused credentials, unreachable service).

    The message names the config key to fix and never contains a secret; ``bridge run`` prints
    it and exits 1 instead of showing a traceback.
    """


class Stopping(Exception):
    """Raised by the inbox while the bridge shuts down: nothing was stored.

    Adapters should not acknowledge the event (GitHub: answer 503; Slack: let the listener fail),
    so the platform delivers it again, to the next run.
    """


Inbox = Callable[[Incoming], Awaitable[bool]]
"""Accepts a message; True when it was stored for an answer (an edit or deletion: for relayed copies
to follow), False when ignored or a duplicate.
Raises :class:`Stopping` during shutdown."""


class Platform(Protocol):
    name: str

    async def start(self, inbox: Inbox) -> None:
        """Connect, learn who the bot is, and begin delivering events to ``inbox``."""

    async def send(self, reply: Outgoing, snapshots: AsyncIterator[str]) -> None:
        """Deliver one reply. Each snapshot is the whole reply so far; the last one is final.

        Platforms that edit in place (Slack, Discord) show snapshots as they come; others post
        only the last one. Long text is the adapter's to split (see :mod:`bridge.llm.chunking`).
        Every platform message posted is reported through ``reply.record`` at once, and messages
        in ``reply.posted`` are edited rather than posted again. Raising means the platform refused
        for good (after its own retries): the core marks the message failed.
        """

    async def stop(self) -> None:
        """Stop taking events and disconnect."""

    def routes(self) -> list[web.RouteDef]:
        """HTTP routes this platform serves on the bridge's server (webhooks); may be empty."""

    def status(self) -> dict[str, Any]:
        """A small JSON-able health summary for ``/healthz``."""

    # Optional: ``accept_ratings(sink: RatingSink) -> None``. A platform that shows 👍/👎 under its
    # answers has it; the bridge hands it the sink before ``start`` (see bridge/conversation/ratings.py).
    # Optional: ``async def progress(self, reply: Outgoing, activity: str) -> None`` shows in the
    # thread, at once, that the answer is busy with something (``activity``: the tool that started),
    # e.g. a status line, typing, a reaction. Called through :func:`show_progress`; none is fine.


async def show_progress(platform: Platform, reply: Outgoing, activity: str) -> None:
    """Call the platform's optional ``progress`` hook; an adapter without one shows nothing, and a
    hook that fails never fails the answer."""
    hook = getattr(platform, "progress", None)
    if hook is None:
        return
    try:
        await hook(reply, activity)
    except Exception as exc:
        log.info("%s: showing progress failed: %s", platform.name, type(exc).__name__)


PlatformFactory = Callable[[Any, "Config"], Platform]
"""``create(settings, config)``: an adapter module's entry point."""

ENTRY_POINT_GROUP = "bridge.platforms"


def load_factory(name: str) -> PlatformFactory:
    """Find a platform adapter by name through entry points, so the core stays platform-neutral."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory: PlatformFactory = ep.load()
            return factory
    raise LookupError(f"no platform adapter named {name!r} is installed (entry point group {ENTRY_POINT_GROUP})")
