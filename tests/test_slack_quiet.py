"""Bolt reads SLACK_BOT_TOKEN from the environment on its own; with the variable exported, as the docs
tell people to, the Slack adapter still starts without a warning about an unused token."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from bridge.config import SlackConfig
from platforms.slack import SlackPlatform


def test_an_exported_slack_bot_token_draws_no_warning(monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    caplog.set_level(logging.DEBUG)
    SlackPlatform(SlackConfig(bot_token=SecretStr("xoxb-1-real"), app_token=SecretStr("xapp-1-real")))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
