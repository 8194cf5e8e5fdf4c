"""Channel rules: which conversations the bridge joins, and as whom (first match wins)."""

from __future__ import annotations

from bridge.config import ChannelRule
from bridge.places import matches
from bridge.types import Incoming, ThreadRef

# GitHub conversations other than issues say what they are in the thread's first segment
# ("discussions/4", "reviews/2/284312630"), so a stored message still finds its rule (limits) later.
_GITHUB_KINDS = {"discussions": "discussion", "reviews": "review"}


def thread_kind(thread: ThreadRef) -> str | None:
    """``issue``, ``discussion`` or ``review`` for a GitHub conversation; None elsewhere (no kinds)."""
    if thread.platform != "github":
        return None
    head, sep, _ = thread.thread.partition("/")
    return _GITHUB_KINDS.get(head, "issue") if sep else "issue"


def match_rule(rules: list[ChannelRule], thread: ThreadRef, category: str | None = None) -> ChannelRule | None:
    """The first rule for this platform whose ``where`` matches the channel (``*`` globs allowed).

    On GitHub the rule's ``kind`` (unset: issue) must be the conversation's, and its ``category``
    the discussion's; ``category=None`` means "not known here" (a stored message), not "none".
    """
    kind = thread_kind(thread)
    for rule in rules:
        if rule.platform != thread.platform or not matches(rule.where, thread):
            continue
        if kind is not None and (rule.kind or "issue") != kind:
            continue
        if rule.category is not None and category is not None and rule.category.casefold() != category.casefold():
            continue
        return rule
    return None


def session_key(rule: ChannelRule | None, msg: Incoming) -> str:
    """``share:`` names one session for every conversation bound to it; otherwise the thread's own.

    A direct message is private: it never joins a shared session, even under a ``*`` rule.
    """
    if rule is not None and rule.share and not msg.direct:
        return f"share:{rule.share}"
    return msg.thread.key


def triggered(rule: ChannelRule | None, msg: Incoming, thread_known: bool) -> bool:
    """Whether a message from a matched (or direct) conversation should be answered.

    ``label:NAME`` answers only while the conversation carries the label, mentioned or not:
    taking the label off is how people stop the bot there.
    """
    if msg.direct:
        return True
    if rule is not None and rule.trigger.startswith("label:"):
        wanted = rule.trigger.removeprefix("label:").casefold()
        return any(label.casefold() == wanted for label in msg.labels)
    if msg.mentioned:
        return True
    if rule is None:
        return False
    if rule.trigger == "always":
        return True
    return msg.in_thread and rule.continue_threads and thread_known
