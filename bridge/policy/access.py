"""Who may talk to the bot in a conversation: a channel rule's ``allow:``/``deny:``, and ``admins:``.

Decided at intake from the facts the adapter put on the message (user id or login, Discord roles,
GitHub ``author_association``), so a refused message never reaches a lane or the LLM. GitHub team
membership is the one fact that needs the network: the GitHub adapter offers
``member_of(login, team)``, found by duck typing (the core never imports an adapter), and answers
are cached for ``ttl_s``.

- ``deny:`` wins over ``allow:``.
- No ``allow:``: everybody, except on GitHub, where only ``OWNER``, ``MEMBER`` and ``COLLABORATOR``
  are answered (anyone can open an issue on a public repository, and each answer costs money).
- An ``allow:`` replaces that default: it lists everyone who may talk (``users: ["*"]`` for anybody).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bridge.config import ChannelRule, Config
from bridge.policy.config import EVERYONE, GITHUB_DEFAULT, AccessList, github_names
from bridge.types import Incoming

log = logging.getLogger(__name__)

TEAM_CACHE_S = 600.0      # how long a team membership answer is trusted
TEAM_CHECK_TIMEOUT_S = 5.0  # GitHub wants the webhook answered within 10 s

MemberOf = Callable[[str, str], Awaitable[bool]]
UserId = Callable[[str], Awaitable[str | None]]  # login -> the user id, None when nobody has it


class AccessUnknown(Exception):  # not an error of the person's: the check could not be made
    """Whether the author may talk could not be decided (a team check failed or timed out).

    Not a refusal: nothing is stored and nobody is told they may not talk. The adapter answers so
    that the platform delivers the event again (GitHub: 503, redelivered at the next start for an App).
    """


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    why: str  # for logs and metrics: "deny.users", "allow.teams", "not allowed", "github default"...


def effective_allow(rule: ChannelRule | None) -> AccessList | None:
    """The allow list in force; None means everybody."""
    if rule is not None and rule.allow is not None:
        return None if EVERYONE in rule.allow.users else rule.allow
    if rule is not None and rule.platform == "github":
        return AccessList(associations=GITHUB_DEFAULT)
    return None


def describe(rule: ChannelRule) -> str:
    """One line for ``bridge check``: who is answered under this rule."""
    allow = effective_allow(rule)
    if allow is None:
        text = "everyone"
    else:
        text = _list(allow)
        if rule.allow is None:
            text += " (the GitHub default; set allow: to change it)"
    if rule.deny is not None and not rule.deny.empty:
        text += f"; never {_list(rule.deny)}"
    return text


def _list(entry: AccessList) -> str:
    parts = []
    for key in ("users", "roles", "teams", "associations"):
        values = [v for v in getattr(entry, key) if v != EVERYONE]
        if values:
            parts.append(f"{key} {', '.join(values)}")
    return " or ".join(parts) or "nobody"


def is_admin(config: Config, platform: str, user: str, name: str = "") -> bool:
    """Without ``admins:`` everyone may run every command, as before the setting existed. ``name``:
    the author's name, which is the login on GitHub (``user`` is the numeric id there)."""
    return config.admins is None or config.admins.includes(platform, user, name)


class Access:
    """The access check the router runs; holds the team-membership cache."""

    def __init__(self, config: Config, platforms: Mapping[str, object], ttl_s: float = TEAM_CACHE_S) -> None:
        self._config = config
        self._platforms = platforms
        self._ttl_s = ttl_s
        self._teams: dict[tuple[str, str], tuple[float, bool]] = {}
        self._github_ids: dict[str, str | None] = {}  # login (lower case) -> user id when first looked up

    async def check(self, rule: ChannelRule | None, msg: Incoming) -> Decision:
        if rule is not None and rule.deny is not None:
            matched = await self._matches(rule.deny, msg)
            if matched:
                return Decision(False, f"deny.{matched}")
        allow = effective_allow(rule)
        if allow is None:
            return Decision(True, "everyone")
        matched = await self._matches(allow, msg)
        if matched:
            return Decision(True, f"allow.{matched}")
        return Decision(False, "github default" if rule is not None and rule.allow is None else "not allowed")

    async def _matches(self, entry: AccessList, msg: Incoming) -> str | None:
        """Which key of the list names this author, or None. The network is asked last."""
        github = msg.thread.platform == "github"
        if EVERYONE in entry.users or (not github and msg.author.id in entry.users):
            return "users"
        if set(msg.roles) & set(entry.roles):
            return "roles"
        if msg.association is not None and msg.association.upper() in entry.associations:
            return "associations"
        if github:
            for name in entry.users:
                if await self._github_names(name, msg):
                    return "users"
        for team in entry.teams:  # GitHub asks by login: the author's name there
            if await self.member_of(msg.thread.platform, msg.author.name if github else msg.author.id, team):
                return "teams"
        return None

    async def _github_names(self, entry: str, msg: Incoming) -> bool:
        """A GitHub ``users:`` entry against the author. A login is looked up once and its id compared,
        so renaming does not escape a ``deny:`` and a login given up does not pass to whoever takes it;
        when the lookup cannot be made, the login itself is compared."""
        if entry.isdigit():
            return github_names(entry, msg.author.id, msg.author.name)
        known, found = await self._github_id(entry)
        if not known:
            return github_names(entry, msg.author.id, msg.author.name)
        return found == msg.author.id  # None: nobody has this login

    async def _github_id(self, login: str) -> tuple[bool, str | None]:
        """(looked up, the user id holding ``login`` when first asked; None: nobody)."""
        key = login.lower()
        if key in self._github_ids:
            return True, self._github_ids[key]
        lookup: UserId | None = getattr(self._platforms.get("github"), "user_id", None)
        if lookup is None:
            return False, None
        try:
            async with asyncio.timeout(TEAM_CHECK_TIMEOUT_S):
                found = await lookup(login)
        except Exception as exc:  # the SDK's text may carry URLs or tokens: its class name only
            log.warning("looking up the GitHub user id of %s failed (%s): comparing the login this time",
                        login, type(exc).__name__)
            return False, None
        self._github_ids[key] = found
        if found is None:
            log.warning("no GitHub user has the login %s named in allow:/deny: (renamed?); it matches nobody",
                        login)
        else:
            log.info("GitHub login %s is user id %s; writing the id in allow:/deny:/admins: keeps it matching "
                     "after a rename", login, found)
        return True, found

    async def member_of(self, platform: str, login: str, team: str) -> bool:
        """Team membership through the platform, cached; a failed check raises :class:`AccessUnknown`
        (a timeout or a GitHub hiccup must not tell a team member they may not talk)."""
        key = (login.lower(), team.lower())
        now = time.monotonic()
        cached = self._teams.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        check: MemberOf | None = getattr(self._platforms.get(platform), "member_of", None)
        if check is None:
            return False
        try:
            async with asyncio.timeout(TEAM_CHECK_TIMEOUT_S):
                answer = bool(await check(login, team))
        except Exception as exc:  # the SDK's text may carry URLs or tokens: its class name only
            log.warning("checking whether %s is in team %s failed (%s): neither answered nor refused; "
                        "the platform is asked to deliver it again", login, team, type(exc).__name__)
            raise AccessUnknown(f"could not check whether {login} is in team {team} "
                                f"({type(exc).__name__})") from None
        self._teams[key] = (now + self._ttl_s, answer)
        return answer
