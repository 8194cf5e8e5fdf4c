"""Config mistakes a new user makes in the first hour, each answered with the key, the cause and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ConfigError, parse_config
from bridge.personas import load_personas


def problems(text: str, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="my.yaml", env=env)
    return err.value.problems


def test_a_bad_substituted_value_names_its_variable() -> None:
    [p] = problems("server:\n  port: ${BRIDGE_PORT}\n", BRIDGE_PORT="eighty")
    assert p.startswith("server.port: Input should be a valid integer")
    assert "(the value comes from ${BRIDGE_PORT})" in p
    assert "eighty" not in p  # values are never echoed (they may be secrets)


def test_a_key_at_the_wrong_indentation_says_where_it_belongs() -> None:
    [p] = problems("server:\n  host: 0.0.0.0\nport: 8080\n")
    assert p.startswith("port: unknown key. did you mean server.port (check the indentation)?")
    [p] = problems("platforms: {}\nchannels: []\ntrigger: always\n")
    assert "did you mean channels[].trigger" in p


def test_persona_key_typos_get_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("name: p\nsystem: hi\ntemprature: 0.2\n")
    with pytest.raises(ConfigError) as err:
        load_personas(tmp_path)
    assert "p.yaml: temprature: unknown key. did you mean 'temperature'?" in str(err.value)


def test_a_disabled_platform_may_keep_placeholders() -> None:
    config = parse_config("platforms:\n  discord: {enabled: false, token: your-token-here}\n", env={})
    assert config.platforms.enabled() == {}
    [p] = problems("platforms:\n  discord: {enabled: true, token: your-token-here}\n")
    assert p.startswith("platforms.discord.token: looks like a placeholder")


def test_commands_without_platforms_need_no_platform_variables() -> None:
    text = "platforms:\n  github: {token: '${GITHUB_TOKEN}', webhook_secret: '${SECRET}'}\n"
    assert problems(text)  # `bridge run` needs them...
    config = parse_config(text, env={}, platforms=False)  # ...`bridge chat`, `sessions`, `backup` do not
    assert config.platforms.enabled() == {}
