"""bridge.yaml and persona files: what a user sees when they get something wrong."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config, parse_config
from bridge.personas import load_personas

ROOT = Path(__file__).resolve().parent.parent


def problems(text: str, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="my.yaml", env=env)
    assert str(err.value).startswith("my.yaml: ")
    return err.value.problems


def test_shipped_config_is_valid_without_any_environment() -> None:
    config = load_config(ROOT / "bridge.yaml", env={})
    assert config.platforms.enabled() == {}
    assert config.personas_dir == ROOT / "prompts"
    assert [r.persona for r in config.channels] == ["assistant", "legal-adviser", "rust-tutor"]


def test_shipped_config_enables_a_platform_once_its_variables_are_set(tmp_path: Path) -> None:
    text = (ROOT / "bridge.yaml").read_text().replace("enabled: false                    # set to true once the two",
                                                      "enabled: true # the two")
    config = parse_config(text, env={"GITHUB_TOKEN": "ghp_real1", "GITHUB_WEBHOOK_SECRET": "s3cret!"},
                          base_dir=ROOT)
    assert list(config.platforms.enabled()) == ["github"]
    with pytest.raises(ConfigError) as err:
        parse_config(text, env={}, base_dir=ROOT)
    [message] = err.value.problems
    assert "GITHUB_TOKEN, GITHUB_WEBHOOK_SECRET" in message
    assert "platforms.github.token" in message
    assert "SLACK" not in message  # Slack is disabled: its variables are not needed


def test_interpolation_and_defaults() -> None:
    config = parse_config("""
llm:
  base_url: ${URL:-http://localhost:8000/v1}
  model: ${MODEL}
  context_tokens: ${CTX:-4000}
  stream: ${STREAM:-false}
server: {port: "${PORT}"}
""", env={"MODEL": "llama3", "PORT": "9000"})
    assert config.llm.base_url == "http://localhost:8000/v1"
    assert config.llm.model == "llama3"
    assert config.llm.context_tokens == 4000
    assert config.llm.stream is False
    assert config.server.port == 9000


def test_unknown_keys_name_the_path_and_suggest() -> None:
    [p] = problems("llm:\n  modle: gpt-4o\n")
    assert p.startswith("llm.modle: unknown key. did you mean 'model'?")
    [p] = problems("channels:\n  - {platform: github, persna: x}\nplatforms: {github: {enabled: false}}\n")
    assert p.startswith("channels.0.persna: unknown key. did you mean 'persona'?")


def test_wrong_values_name_the_path() -> None:
    assert problems("llm: {timeout_s: -1}") == ["llm.timeout_s: Input should be greater than 0"]
    [p] = problems("channels: [{platform: teams}]")
    assert p.startswith("channels.0.platform: Input should be")
    [p] = problems("platforms:\n  slack: {bot_token: xoxb-1}\n")
    assert p == "platforms.slack: set app_token (xapp-..., Socket Mode) or signing_secret (HTTP Events API)"
    [p] = problems("platforms: {}\nchannels: [{platform: discord, where: '1'}]")
    assert "add platforms.discord" in p


def test_placeholder_secrets_are_rejected() -> None:
    [p] = problems("platforms:\n  discord: {token: your-token-here}\n")
    assert p.startswith("platforms.discord.token: looks like a placeholder")


def test_yaml_errors_say_where() -> None:
    [p] = problems("llm: [unclosed\n")
    assert p.startswith("not valid YAML (line 2")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert "file not found" in str(err.value)


def test_errors_never_echo_secret_values() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("platforms:\n  github: {token: ghp_SECRET123, webhook_secret: wh_SECRET456, bogus: 1}\n", env={})
    assert "SECRET" not in str(err.value)


def test_shipped_personas() -> None:
    personas = load_personas(ROOT / "prompts")
    assert {"assistant", "legal-adviser", "rust-tutor", "collaborator"} <= set(personas)
    legal = personas["legal-adviser"]
    assert "lawyer" in legal.system
    assert "not legal advice" in legal.system
    assert personas["collaborator"].speaker_names
    text = personas["rust-tutor"].render_system(user="ann", platform="discord", channel="123",
                                                today=dt.date(2026, 1, 2))
    assert "helping ann on discord. Today is 2026-01-02." in text
    assert "`fn main() {}`" in text  # braces in prompts are left alone


def test_broken_persona_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: b\nsystem: hi\n")
    (tmp_path / "c.yaml").write_text("name: c\nsytem: hi\n")
    with pytest.raises(ConfigError) as err:
        load_personas(tmp_path)
    text = str(err.value)
    assert "a.yaml: name: 'b' must match the file name ('a')" in text
    assert "c.yaml: sytem: unknown key" in text
    assert "c.yaml: system: Field required" in text
