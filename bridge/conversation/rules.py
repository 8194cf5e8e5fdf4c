"""Channel rules: which conversations the bridge joins, and as whom (first match wins)."""

from __future__ import annotations

from fnmatch import fnmatchcase

from bridge.config import ChannelRule
from bridge.types import Incoming, ThreadRef


def matches(rule: ChannelRule, thread: ThreadRef) -> bool:
    """Whether ``where`` covers this thread: a channel (``*`` globs allowed) or, on GitHub, one issue.

    GitHub names are case-insensitive (``Octo-Org/Repo`` is ``octo-org/repo``), so they are compared so.
    """
    if rule.platform != thread.platform:
        return False
    if thread.platform == "discord":  # a thread is matched by its own id or its channel's
        return fnmatchcase(thread.channel, rule.where) or fnmatchcase(thread.thread, rule.where)
    if thread.platform != "github":
        return fnmatchcase(thread.channel, rule.where)
    where = rule.where.lower()
    if "#" in where:
        return f"{thread.channel}#{thread.thread}".lower() == where
    return fnmatchcase(thread.channel.lower(), where)


def match_rule(rules: list[ChannelRule], thread: ThreadRef) -> ChannelRule | None:
    """The first rule for this platform whose ``where`` matches the thread."""
    for rule in rules:
        if matches(rule, thread):
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
    """Whether a message from a matched (or direct) conversation should be answered."""
    if msg.direct or msg.mentioned:
        return True
    if rule is None:
        return False
    if rule.trigger == "always":
        return True
    return msg.in_thread and rule.continue_threads and thread_known
