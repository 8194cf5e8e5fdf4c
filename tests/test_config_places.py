"""`where:` values that cannot be a place on their platform, and secrets that are still placeholders:
refused when the config loads, with the key and the fix; GitHub names match as GitHub compares them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ConfigError, parse_config
from bridge.conversation.rules import match_rule
from bridge.types import ThreadRef

PLATFORMS = """
platforms:
  github: {token: ghp_realLookingToken1, webhook_secret: s3cret-value}
  slack: {bot_token: xoxb-1-real, app_token: xapp-1-real}
  discord: {token: a.real.token}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="my.yaml", env={})
    return err.value.problems


def rules(*lines: str) -> str:
    return PLATFORMS + "channels:\n" + "".join(f"  - {line}\n" for line in lines)


@pytest.mark.parametrize(("rule", "said"), [
    ("{platform: slack, where: '#general'}", "'#general' is a channel name; use the channel id"),
    ("{platform: slack, where: general}", "'general' is not a Slack channel id; use the channel id"),
    ("{platform: discord, where: '12345'}", "'12345' is not a Discord channel id; use the channel or thread id"),
    ("{platform: discord, where: 12345}", "'12345' is not a Discord channel id"),
    ("{platform: discord, where: '#general'}", "'#general' is not a Discord channel id"),
    ("{platform: github, where: octo-org}", "'octo-org' has no /repo, so it can match no repository: write "
                                            "owner/repo, owner/*"),
    ("{platform: github, where: 'https://github.com/octo-org/repo'}", "is not a repository name"),
])
def test_a_place_that_cannot_exist_is_refused_with_its_index_and_the_fix(rule: str, said: str) -> None:
    [p] = problems(rules("{platform: github, where: 'octo-org/*'}", rule))
    assert p.startswith("channels[1].where: "), p
    assert said in p


def test_every_bad_place_is_reported_at_once() -> None:
    [p] = problems(rules("{platform: slack, where: '#general'}", "{platform: discord, where: '1'}"))
    assert "channels[0].where" in p
    assert "channels[1].where" in p


def test_the_forms_each_platform_has_are_accepted() -> None:
    config = parse_config(rules(
        "{platform: github, where: octo-org/octo-repo}", "{platform: github, where: 'octo-org/*'}",
        "{platform: github, where: '*/*'}", "{platform: github, where: 'octo-org/octo-repo#123'}",
        "{platform: github, where: '*'}",
        "{platform: slack, where: C0123456789}", "{platform: slack, where: 'C0*'}", "{platform: slack, where: G01}",
        "{platform: slack, where: '*'}",
        "{platform: discord, where: '112233445566778899'}", "{platform: discord, where: 112233445566778899}",
        "{platform: discord, where: '*'}"), env={})
    assert len(config.channels) == 12


def thread(repo: str, issue: str) -> ThreadRef:
    return ThreadRef("github", "", repo, issue)


def test_one_issue_rule_matches_that_issue_only() -> None:
    config = parse_config(rules("{platform: github, where: 'octo-org/octo-repo#123', persona: one}",
                                "{platform: github, where: 'octo-org/*', persona: all}"), env={})
    one = match_rule(config.channels, thread("octo-org/octo-repo", "123"))
    assert one is not None
    assert one.persona == "one"
    other = match_rule(config.channels, thread("octo-org/octo-repo", "1234"))
    assert other is not None
    assert other.persona == "all"


def test_repository_names_match_whatever_their_case() -> None:
    config = parse_config(rules("{platform: github, where: octo-case/hello-world}"), env={})
    assert match_rule(config.channels, thread("Octo-Case/Hello-World", "1")) is not None
    config = parse_config(rules("{platform: github, where: 'Octo-Case/*#7'}"), env={})
    assert match_rule(config.channels, thread("octo-case/hello-world", "7")) is not None


@pytest.mark.parametrize("secret", ["sk-...", "xoxb-...", "xoxb-your-token-here", "<your token>", "changeme",
                                    "xoxb-changeme-1234", "sk-…", "your-token"])
def test_placeholders_anywhere_in_a_secret_are_refused(secret: str) -> None:
    [p] = problems(f"llm: {{api_key: '{secret}'}}\n")
    assert p.startswith("llm.api_key: looks like a placeholder, not a real secret")
    assert secret not in p or len(secret) <= 5  # at most a short prefix is shown


def test_a_placeholder_message_shows_only_a_short_prefix() -> None:
    [p] = problems("platforms:\n  slack: {bot_token: 'xoxb-1234567890-abcdefSECRET...', app_token: xapp-1}\n")
    assert "(it starts 'xoxb-')" in p
    assert "1234567890" not in p
    assert "SECRET" not in p


def test_real_looking_secrets_pass() -> None:
    config = parse_config("llm: {api_key: sk-proj-AbC123dEf456}\n", env={})
    assert config.llm.api_key.get_secret_value() == "sk-proj-AbC123dEf456"


async def test_bridge_check_refuses_each_wrong_place_the_docs_warn_about(tmp_path: Path) -> None:
    from tests.test_cli import ROOT, bridge_cli

    path = tmp_path / "bridge.yaml"
    path.write_text(f"personas_dir: {ROOT / 'prompts'}\n" + rules(
        "{platform: slack, where: '#general'}", "{platform: slack, where: general}",
        "{platform: discord, where: '12345'}", "{platform: github, where: octo-org}"))
    code, out, err = await bridge_cli("check", "--config", str(path))
    assert code == 1, out
    for i in range(4):
        assert f"channels[{i}].where" in err
    assert "Traceback" not in err
    assert "config OK" not in out
