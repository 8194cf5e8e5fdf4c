"""The access and budget settings: mistakes named with their key path and fix; `bridge check` explains
each rule's effective access and limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ConfigError, parse_config
from tests.test_cli import ROOT, bridge_cli

BASE = "platforms:\n  github: {token: ghp_x1, webhook_secret: whs-1}\n  discord: {token: abc.def}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + text, source="my.yaml", env={})
    return err.value.problems


def test_unknown_access_keys_get_a_suggestion() -> None:
    [p] = problems("channels: [{platform: github, allow: {user: [octocat]}}]\n")
    assert p.startswith("channels.0.allow.user: unknown key. did you mean 'users'?")
    [p] = problems("limits: {user_tokens_a_day: 5}\n")
    assert p.startswith("limits.user_tokens_a_day: unknown key. did you mean 'user_tokens_per_day'?")
    [p] = problems("admins: {githb: [octocat]}\n")
    assert p.startswith("admins.githb: unknown key. did you mean 'github'?")
    [p] = problems("llm: {prices: {gpt-4o-mini: {prompt: 0.15, complete: 0.6}}}\n")
    assert p.startswith("llm.prices.gpt-4o-mini.complete: unknown key. did you mean 'completion'?")


def test_values_that_cannot_work_say_how_to_fix_them() -> None:
    [p] = problems("channels: [{platform: github, allow: {associations: [owner, MAINTAINER]}}]\n")
    assert p.startswith("channels.0.allow.associations.1: Input should be 'OWNER', 'MEMBER'")
    [p] = problems("channels: [{platform: github, allow: {teams: [maintainers]}}]\n")
    assert "channels.0.allow.teams: 'maintainers' is not a team: write ORG/TEAM-SLUG" in p
    [p] = problems("channels: [{platform: github, deny: {roles: [123]}}]\n")
    assert "channels.0.deny.roles: role ids only exist on Discord" in p
    [p] = problems("channels: [{platform: discord, allow: {associations: [OWNER]}}]\n")
    assert "channels.0.allow.associations: only GitHub has associations; on discord use allow.users or roles" in p
    [p] = problems("limits: {user_tokens_per_day: -1}\n")
    assert p.startswith("limits.user_tokens_per_day: Input should be greater than or equal to 0")


def test_ids_may_be_unquoted_and_rule_limits_override_key_by_key() -> None:
    config = parse_config(BASE + "limits: {user_tokens_per_day: 100, total_tokens_per_day: 1000}\n"
                          "admins: {discord: 80351110224678912}\n"
                          "channels: [{platform: discord, allow: {roles: [223344556677889900]}, "
                          "limits: {user_tokens_per_day: 5}}]\n", env={})
    rule = config.channels[0]
    assert rule.allow is not None
    assert rule.allow.roles == ("223344556677889900",)
    assert config.admins is not None
    assert config.admins.includes("discord", "80351110224678912")
    merged = config.limits.over(rule.limits)
    assert (merged.user_tokens_per_day, merged.total_tokens_per_day) == (5, 1000)


CHECK = """
llm: {base_url: "http://127.0.0.1:9/v1", model: fake}
platforms:
  github: {token: ghp_x1, webhook_secret: whs-1}
channels:
  - {platform: github, where: octo-org/public, allow: {users: ["*"]}, deny: {users: [spammer]}, refusal_message: ""}
  - {platform: github, where: "octo-org/*", limits: {user_tokens_per_day: 5000}}
limits: {user_tokens_per_day: 200000, total_tokens_per_day: 10000000}
admins: {github: [octocat]}
"""


async def test_check_explains_access_and_limits(tmp_path: Path) -> None:
    (tmp_path / "prompts").symlink_to(ROOT / "prompts")
    (tmp_path / "bridge.yaml").write_text(CHECK)
    code, out, err = await bridge_cli("check", "--config", str(tmp_path / "bridge.yaml"))
    assert code == 0, err
    assert "0. github octo-org/public: answers everyone; never users spammer" in out
    assert "refused people are told nothing" in out
    assert ("1. github octo-org/*: answers associations OWNER, MEMBER, COLLABORATOR (the GitHub default; "
            "set allow: to change it)") in out
    assert "limits: user_tokens_per_day 5,000, total_tokens_per_day 10,000,000" in out
    assert "admins:    github: octocat (only they may /persona, /reset shared sessions and /usage all)" in out
