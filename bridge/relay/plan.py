"""Which places a message of a relay share is copied to: pure, from the config alone.

A place is one rule's ``where`` (a Slack channel, a Discord channel or thread, a GitHub issue),
named ``platform:where``. A message belongs to the place of the rule it matched; its copies go to
every other place of the share.
"""

from __future__ import annotations

from bridge.config import ChannelRule, Config
from bridge.store.relays import RelayPlan
from bridge.types import Incoming, ThreadRef


def relay_share(config: Config, rule: ChannelRule | None, msg: Incoming) -> str | None:
    """The share this message is relayed in, or None (no share, a share without ``relay``, a DM)."""
    if rule is None or not rule.share or msg.direct:
        return None
    share = config.shares.get(rule.share)
    return rule.share if share is not None and share.relay else None


def place_name(rule: ChannelRule) -> str:
    where = rule.where.lower() if rule.platform == "github" else rule.where
    return f"{rule.platform}:{where}"


def target_of(rule: ChannelRule) -> ThreadRef:
    """Where a copy is posted in a rule's place (a Slack channel's thread is chosen when posting)."""
    if rule.platform == "github":
        repo, _, number = rule.where.partition("#")
        return ThreadRef("github", "", repo, number)
    return ThreadRef(rule.platform, "", rule.where, rule.where)


def plan_for(config: Config, rule: ChannelRule | None, msg: Incoming, *, answers: bool) -> RelayPlan | None:
    """The copies of ``msg`` (and of its answer when ``answers``), or None when it is not relayed."""
    share = relay_share(config, rule, msg)
    if share is None or rule is None:
        return None
    origin = place_name(rule)
    targets: dict[str, ThreadRef] = {}
    for other in config.channels:
        if other.share == share and place_name(other) != origin:
            targets.setdefault(place_name(other), target_of(other))
    return RelayPlan(share=share, origin=origin, targets=tuple(targets.items()), avatar=msg.author.avatar,
                     answers=answers)
