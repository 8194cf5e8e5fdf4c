"""The core's vocabulary: what every platform adapter translates its native events into.

Identities are small frozen dataclasses, never strings to be parsed later: a string's parts
are easy to mix up and cannot be checked by the type checker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """Where a conversation happens, and where its replies go.

    - ``workspace``: the Slack team, the Discord guild; empty for GitHub and DMs without one.
    - ``channel``: what channel rules match: ``owner/repo``, a Slack or Discord channel id.
    - ``thread``: the conversation inside it: an issue number, a Slack thread root ``ts``,
      a Discord thread (or channel) id.
    """

    platform: str
    workspace: str
    channel: str
    thread: str

    @property
    def key(self) -> str:
        """A readable, stable session key, e.g. ``github:octo-org/octo-repo#42``."""
        where = f"{self.workspace}/{self.channel}" if self.workspace else self.channel
        return f"{self.platform}:{where}#{self.thread}"

    def to_json(self) -> dict[str, str]:
        return {"platform": self.platform, "workspace": self.workspace,
                "channel": self.channel, "thread": self.thread}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ThreadRef:
        return cls(str(data["platform"]), str(data["workspace"]), str(data["channel"]), str(data["thread"]))


@dataclass(frozen=True, slots=True)
class Author:
    id: str
    name: str
    is_bot: bool = False
    avatar: str = field(default="", compare=False)  # their picture's URL, for relayed copies; may be empty


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a message, as the platform describes it (never fetched by the adapter).

    ``url`` is where the platform serves it (Slack ``url_private_download``, a Discord CDN URL, a
    GitHub ``user-attachments`` link); the credentials to fetch it are the adapter's to give at
    download time, so none is ever stored. ``size`` is the size the platform declares (0: unknown).
    """

    name: str
    url: str
    size: int = 0
    mime: str = ""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One user message, normalised. The adapter decides the facts; the router decides what to do.

    ``event_id`` identifies the *message* (not the delivery), so the same message delivered twice —
    a GitHub redelivery, a Slack retry, ``app_mention`` plus ``message``, a gateway replay — is one id.
    """

    thread: ThreadRef
    event_id: str
    author: Author
    text: str
    mentioned: bool = False   # the bot was addressed (mention, reply to the bot)
    direct: bool = False      # a direct message: always answered
    in_thread: bool = False   # part of a thread the bot may already be in (Slack thread replies)
    roles: tuple[str, ...] = ()      # the author's Discord role ids, for ``allow:``/``deny:``
    association: str | None = None   # GitHub ``author_association`` (OWNER, MEMBER, NONE...)
    attachments: tuple[Attachment, ...] = ()  # files shared with the message, from the platform's own hosts
    context: str = ""         # what the author looks at beside the conversation (Slack pane: a channel id)
    labels: tuple[str, ...] = ()     # GitHub: the issue's, PR's or discussion's labels now (``trigger: label:``)
    category: str | None = None      # GitHub: the discussion's category (``category:``)
    change: str = ""  # "edited" or "deleted": a change to the message ``event_id`` names (relayed copies follow)
    raw: Any = field(default=None, compare=False, repr=False)  # the native payload, opaque to the core


async def _ignore(_: list[str]) -> None:
    return None


def _free() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One reply to deliver, and what is already known of its delivery (so a restart resumes it).

    - ``key``: the reply's identity, stable across restarts (the id of the message it answers).
      Adapters mark what they post with it where the platform allows (a hidden GitHub marker,
      Slack message metadata, a Discord nonce), to recognise a post a crash left unrecorded.
    - ``answers``: the platform's own id of the message being answered (reactions, references).
    - ``posted``: the platform message ids already posted for this reply, in order (after a crash
      or a retry): edit them, do not post again.
    - ``record``: call it with the whole list of posted ids each time it grows, right after posting.
    - ``recovering``: an earlier attempt ran; something may have been posted but not recorded.
    - ``guard``: call it right before every platform call (post, edit, reaction, a timer's action): it
      raises when this process may no longer act for the reply (another replica took the session over
      while this one was frozen). Let that exception through: it is neither a refusal nor a failure.
    - ``asker``: the platform id of who wrote the message answered (Slack streams to a recipient).
    - ``rateable``: a model's answer (not a command's confirmation or a notice): 👍/👎 may go under it.
    """

    thread: ThreadRef
    key: str
    answers: str = ""
    posted: tuple[str, ...] = ()
    record: Callable[[list[str]], Awaitable[None]] = _ignore
    recovering: bool = False
    guard: Callable[[], None] = _free
    asker: str = ""
    rateable: bool = False


@dataclass(frozen=True, slots=True)
class Rating:
    """A person's 👍 (+1) or 👎 (-1) on an answer, named by the answer's ``Outgoing.key``."""

    platform: str
    key: str
    user_id: str
    value: int


RatingSink = Callable[[Rating], Awaitable[bool]]
"""Records a rating; True when it named an answer the bridge gave (see ``Platform.accept_ratings``)."""
