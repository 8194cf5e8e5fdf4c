"""What a relayed copy shows: pure, so each platform only decides how to post it.

A person's message is shown as that person where the platform allows (a Slack name and icon, a
Discord webhook's name and avatar): ``body`` alone. Where it does not (GitHub, a missing scope or
permission), the copy is posted by the bot with ``text``: the body headed with the author's name and
platform in bold. The bot's answers are the bot's own posts, headed with whom they answer.
Mentions are not this module's concern: every platform's posting makes them inert.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.conversation.responder import PLATFORM_NAMES, speaker_label
from bridge.store.attachments import StoredFile
from bridge.store.relays import Relay

# Slack files need the bot's token to open: a link would show others an error page.
_PRIVATE_FILES = {"slack"}


@dataclass(frozen=True, slots=True)
class Copy:
    """One relayed copy, as every platform needs it."""

    key: str           # stable across restarts: tagged on the post where the platform allows, to find it again
    name: str          # the author's name, cleaned (shown as the poster's name)
    platform: str      # where the author wrote it: "Slack", "Discord", "GitHub"
    avatar: str        # the author's picture URL, or ""
    body: str          # what they wrote (with links to their files)
    text: str          # ``body`` headed with who wrote it where: what the bot posts itself
    as_author: bool    # a person's message (shown as them where possible), not the bot's answer
    since: float       # when it became ready to post: a lookup for an unrecorded post starts here


def _files(relay: Relay, files: list[StoredFile]) -> str:
    origin = relay.origin.platform if relay.origin else ""
    lines = []
    for f in files:
        shown = f.name or "a file"
        lines.append(f"📎 {shown} (shared on {PLATFORM_NAMES.get(origin, origin)})" if origin in _PRIVATE_FILES
                     else f"📎 [{shown}]({f.url})")
    return "\n".join(lines)


def make_copy(relay: Relay, files: list[StoredFile]) -> Copy:
    origin = relay.origin.platform if relay.origin else ""
    label = speaker_label(relay.author.name or relay.author.id, origin or None)
    name = speaker_label(relay.author.name or relay.author.id, None).strip('"')
    platform = PLATFORM_NAMES.get(origin, origin)
    if relay.what == "answer":
        body = relay.text
        text = f"↪ _to {label}_\n\n{body}"
        return Copy(f"relay:{relay.id}", relay.persona, platform, "", body, text, False, relay.ready_at)
    attached = _files(relay, files)
    body = "\n\n".join(part for part in (relay.text, attached) if part) or "(an empty message)"
    return Copy(f"relay:{relay.id}", name, platform, relay.avatar, body, f"**{label}**:\n{body}", True,
                relay.ready_at)
