"""The ``shares:`` block, and what ``relay: true`` asks of the rules that name the share.

Kept apart from :mod:`bridge.config` (which validates it like every other block) so the rules of
relaying live in one small file. A relayed copy must go to one known place: a glob names no place
to post into, so every rule of a relay share must name exactly one channel, thread or issue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict

_SLACK = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_DISCORD = re.compile(r"^\d{1,20}$")  # one id, no glob (the form of ids is checked elsewhere)
_GITHUB_ISSUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+#[1-9]\d*$")
_EXAMPLES = {"slack": "a channel id such as C0123456789",
             "discord": "a channel or thread id such as 112233445566778899",
             "github": "one issue such as octo-org/support#7"}


class ShareConfig(BaseModel):
    """``shares.NAME``: what a share group does besides being one session."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    relay: bool = False  # people see each other: every message appears in every place of the share


class _Rule(Protocol):
    @property
    def platform(self) -> str: ...
    @property
    def where(self) -> str: ...
    @property
    def share(self) -> str | None: ...


def exact_place(platform: str, where: str) -> bool:
    """Whether ``where`` names one place a copy can be posted into (no glob, no repository-wide rule)."""
    pattern = {"slack": _SLACK, "discord": _DISCORD, "github": _GITHUB_ISSUE}.get(platform)
    return pattern is not None and pattern.match(where) is not None


def relay_problems(rules: Sequence[_Rule], shares: Mapping[str, ShareConfig]) -> list[str]:
    """Config errors, each naming its key path: a relay rule that is not one exact place, a share unused."""
    problems = []
    used = {rule.share for rule in rules if rule.share}
    for name in shares:
        if name not in used:
            problems.append(f"shares.{name}: no channel rule has share: {name}; add it to the rules it joins "
                            "or remove this entry")
    for i, rule in enumerate(rules):
        share = shares.get(rule.share) if rule.share else None
        if share is None or not share.relay or exact_place(rule.platform, rule.where):
            continue
        wanted = _EXAMPLES.get(rule.platform, "a Slack, Discord or GitHub place")
        problems.append(f"channels[{i}].where: {rule.where!r} is not one exact place, but share {rule.share!r} "
                        f"relays messages and must know where to post them: write {wanted}")
    return problems
