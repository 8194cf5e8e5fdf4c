"""The config blocks for who may talk to the bot and how much it may cost: ``allow:``/``deny:``,
``limits:``, ``admins:`` and ``llm.prices``.

Kept apart from :mod:`bridge.config` so the rules about access live in one small file; the loader
there validates them like every other block (unknown keys are errors, with did-you-mean).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Association = Literal["OWNER", "MEMBER", "COLLABORATOR", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER",
                      "NONE", "MANNEQUIN"]
# Who a GitHub rule answers when it has no ``allow:``: people with a stake in the repository. On a
# public repository anyone can open an issue, and every answer is paid for by the operator.
GITHUB_DEFAULT: tuple[Association, ...] = ("OWNER", "MEMBER", "COLLABORATOR")
EVERYONE = "*"  # ``users: ["*"]``: anybody
_TEAM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ids(value: Any) -> Any:
    """Unquoted Discord ids arrive as ints; a single id may be written without a list."""
    if isinstance(value, (str, int)):
        value = [value]
    if isinstance(value, list):
        return [str(v) if isinstance(v, int) else v for v in value]
    return value


def github_names(entry: str, user_id: str, login: str) -> bool:
    """Whether a GitHub entry names this author: all digits is the user id, which survives a rename;
    anything else is a login (case-insensitive), which names whoever holds it now."""
    if entry.isdigit():
        return entry == user_id
    return entry.lower() in (login.lower(), user_id.lower())


class AccessList(_Strict):
    """Who an ``allow:`` (or ``deny:``) names. A person matching any entry matches the list."""

    users: tuple[str, ...] = ()          # Slack/Discord user ids, GitHub user ids or logins; "*" for anybody
    roles: tuple[str, ...] = ()          # Discord role ids
    teams: tuple[str, ...] = ()          # GitHub "org/team-slug"
    associations: tuple[Association, ...] = ()   # GitHub author_association

    @field_validator("users", "roles", "teams", mode="before")
    @classmethod
    def _as_ids(cls, v: Any) -> Any:
        return _ids(v)

    @field_validator("associations", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        v = [v] if isinstance(v, str) else v
        return [a.upper() if isinstance(a, str) else a for a in v] if isinstance(v, list) else v

    @field_validator("teams")
    @classmethod
    def _team_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for team in v:
            if not _TEAM.match(team):
                raise ValueError(f"{team!r} is not a team: write ORG/TEAM-SLUG, e.g. octo-org/maintainers "
                                 "(the slug from the team's URL)")
        return v

    @property
    def empty(self) -> bool:
        return not (self.users or self.roles or self.teams or self.associations)


class Limits(_Strict):
    """Budgets; each unset one is unlimited. On a channel rule, the keys it sets replace the top-level ones."""

    user_tokens_per_day: int | None = Field(None, ge=0)
    user_messages_per_hour: int | None = Field(None, ge=0)
    session_tokens_per_day: int | None = Field(None, ge=0)
    channel_tokens_per_day: int | None = Field(None, ge=0)
    total_tokens_per_day: int | None = Field(None, ge=0)

    def over(self, rule: Limits | None) -> Limits:
        """These limits with a rule's own values taking precedence."""
        if rule is None:
            return self
        return self.model_copy(update=rule.model_dump(exclude_unset=True))


class Admins(_Strict):
    """Ids (Slack, Discord) and user ids or logins (GitHub) who may run the commands that affect others."""

    slack: tuple[str, ...] = ()
    discord: tuple[str, ...] = ()
    github: tuple[str, ...] = ()
    console: tuple[str, ...] = ()  # the local user name in `bridge chat`

    @field_validator("slack", "discord", "github", "console", mode="before")
    @classmethod
    def _as_ids(cls, v: Any) -> Any:
        return _ids(v)

    def includes(self, platform: str, user: str, name: str = "") -> bool:
        """``user`` is the author's id; on GitHub ``name`` is the login (see :func:`github_names`)."""
        names: tuple[str, ...] = getattr(self, platform, ())
        if platform == "github":
            return any(github_names(entry, user, name) for entry in names)
        return user in names


class Price(_Strict):
    """US dollars per million tokens."""

    prompt: float = Field(0.0, ge=0)
    completion: float = Field(0.0, ge=0)


def check_rule_access(platform: str, allow: AccessList | None, deny: AccessList | None) -> list[str]:
    """Keys that cannot apply on this platform: say so instead of silently never matching."""
    problems = []
    for name, entry in (("allow", allow), ("deny", deny)):
        if entry is None:
            continue
        if entry.roles and platform != "discord":
            problems.append(f"{name}.roles: role ids only exist on Discord; on {platform} use {name}.users"
                            + (", teams or associations" if platform == "github" else ""))
        for key in ("teams", "associations"):
            if getattr(entry, key) and platform != "github":
                problems.append(f"{name}.{key}: only GitHub has {key}; on {platform} use {name}.users"
                                + (" or roles" if platform == "discord" else ""))
    if deny is not None and EVERYONE in deny.users:
        problems.append('deny.users: "*" would refuse everybody; remove the rule instead')
    return problems
