"""GitHub App: webhook deliveries that failed while the bridge was away are redelivered at start.

A real Bridge with App auth, githubkit against the loopback fake GitHub, which keeps the app's
Recent Deliveries and, asked to redeliver one, POSTs it signed to the bridge's webhook as GitHub does.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.config import Config
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.test_github import REPO, SECRET, YAML, GitHubHarness, comment_payload
from tests.waiting import until

HOUR = dt.timedelta(hours=1)


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    gh = await FakeGitHub().start()
    yield gh
    await gh.stop()


@pytest.fixture
def app_bridge(make_config: Callable[..., Config], fake_llm: FakeOpenAI, fake_github: FakeGitHub,
               tmp_path: Path) -> Callable[..., Bridge]:
    """A Bridge signing in as a GitHub App (a fresh RSA key), ``redeliver_hours`` as given."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "app.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))

    def make(redeliver_hours: float = 24) -> Bridge:
        yaml_text = YAML.replace("token: ${GITHUB_TOKEN}",
                                 f"app_id: 29310\n    private_key: app.pem\n    redeliver_hours: {redeliver_hours}")
        return Bridge(make_config(yaml_text, LLM_URL=fake_llm.url, GITHUB_WEBHOOK_SECRET=SECRET,
                                  GITHUB_URL=fake_github.url))
    return make


def app_comment(body: str, *, number: int, comment_id: int) -> dict[str, Any]:
    payload = comment_payload(body, number=number, comment_id=comment_id)
    payload["installation"] = {"id": 4242, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg=="}
    return payload


async def test_the_failed_delivery_is_redelivered_once_and_answered(
        app_bridge: Callable[..., Bridge], fake_github: FakeGitHub, fake_llm: FakeOpenAI,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    gh = fake_github
    missed = gh.add_delivery("issue_comment", app_comment("missed", number=1, comment_id=11), status_code=503,
                             ago=2 * HOUR)
    retried = gh.add_delivery("issue_comment", app_comment("retried", number=2, comment_id=12), status_code=0,
                              ago=3 * HOUR)
    gh.add_delivery("issue_comment", retried.payload, status_code=202, ago=HOUR, guid=retried.guid, redelivery=True)
    gh.add_delivery("issue_comment", app_comment("received", number=3, comment_id=13), status_code=202,
                    ago=HOUR / 2)
    for hours in (30, 40, 50):  # failed, but older than redeliver_hours: left alone
        gh.add_delivery("issue_comment", app_comment(f"old {hours}", number=4, comment_id=100 + hours),
                        status_code=502, ago=hours * HOUR)
    gh.max_per_page = 2  # four pages of deliveries; the third reaches past the window, so the fourth is not read

    bridge = app_bridge()
    await bridge.start()  # the redelivery pass runs in the background: start never waits for it
    try:
        h = GitHubHarness(bridge, gh, fake_llm)
        gh.deliver_webhooks_to(h.url, SECRET)
        assert await h.comments(REPO, 1, 1) == ["You said: missed"]
        await until(lambda: any(d.redelivery and d.guid == missed.guid for d in gh.hook_deliveries))
        answer = next(d for d in gh.hook_deliveries if d.redelivery and d.guid == missed.guid)
        assert answer.status_code == 202
        assert gh.redelivery_requests == [missed.id]
        assert len(gh.delivery_listings) == 3
        assert [gh.comments_on(REPO, n) for n in (2, 3, 4)] == [[], [], []]
        assert len(fake_llm.requests) == 1
        await until(lambda: "asked to be redelivered" in caplog.text)
        assert "deliveries of the last 24 h: 4 listed, 1 failed, 1 asked to be redelivered" in caplog.text
        assert "Bearer" not in caplog.text
        assert "eyJ" not in caplog.text  # the app's JWT is never logged
    finally:
        await bridge.stop()


async def test_redeliver_hours_zero_asks_for_nothing(app_bridge: Callable[..., Bridge], fake_github: FakeGitHub,
                                                     fake_llm: FakeOpenAI) -> None:
    fake_github.add_delivery("issue_comment", app_comment("missed", number=1, comment_id=11), status_code=503,
                             ago=HOUR)
    bridge = app_bridge(redeliver_hours=0)
    await bridge.start()
    try:
        h = GitHubHarness(bridge, fake_github, fake_llm)
        fake_github.deliver_webhooks_to(h.url, SECRET)
        # A whole webhook round trip: a pass started at start would have listed deliveries by now.
        await h.deliver("issue_comment", app_comment("new", number=2, comment_id=21))
        await h.comments(REPO, 2, 1)
        assert fake_github.delivery_listings == []
        assert fake_github.redelivery_requests == []
        assert fake_github.comments_on(REPO, 1) == []
    finally:
        await bridge.stop()


async def test_an_app_without_the_deliveries_api_warns_once_and_runs(
        app_bridge: Callable[..., Bridge], fake_github: FakeGitHub, fake_llm: FakeOpenAI,
        caplog: pytest.LogCaptureFixture) -> None:
    fake_github.deliveries_status = 403
    fake_github.add_delivery("issue_comment", app_comment("missed", number=1, comment_id=11), status_code=503,
                             ago=HOUR)
    bridge = app_bridge()
    await bridge.start()
    try:
        await until(lambda: "cannot use the app's webhook deliveries API (HTTP 403)" in caplog.text)
        warnings = [r for r in caplog.records if r.name == "platforms.github.redeliver"]
        assert [r.levelno for r in warnings] == [logging.WARNING]
        assert bridge.health()["platforms"]["github"]["ok"] is True
        h = GitHubHarness(bridge, fake_github, fake_llm)
        assert (await h.deliver("issue_comment", app_comment("still here", number=2, comment_id=21)))[0] == 202
        assert await h.comments(REPO, 2, 1) == ["You said: still here"]
        assert fake_github.redelivery_requests == []
    finally:
        await bridge.stop()
