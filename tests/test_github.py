"""GitHub end to end: signed webhooks (real recorded payloads) → the bridge's HTTP server → githubkit
→ a loopback fake GitHub; the LLM is a loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Bridge
from bridge.config import Config
from bridge.platform import PlatformStartError
from bridge.store.store import MIGRATIONS, Store
from tests.fakes.github_server import FakeGitHub, fixture, user_id
from tests.fakes.openai_server import FakeOpenAI
from tests.waiting import until, until_async

SECRET = "whsec-test-0123456789"
REPO = "Codertocat/Hello-World"

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 5}
server: {port: 0, max_body_bytes: 65536}
platforms:
  github:
    token: ${GITHUB_TOKEN}
    webhook_secret: ${GITHUB_WEBHOOK_SECRET}
    api_url: ${GITHUB_URL}
    max_reply_chars: ${MAX_CHARS:-65536}
channels:
  - {platform: github, where: "octo-org/quiet", trigger: mention}
  - {platform: github, where: "Codertocat/*", persona: rust-tutor, trigger: always}
"""


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class GitHubHarness:
    def __init__(self, bridge: Bridge, gh: FakeGitHub, llm: FakeOpenAI) -> None:
        self.bridge, self.gh, self.llm = bridge, gh, llm

    @property
    def url(self) -> str:
        assert self.bridge.server is not None
        return f"http://127.0.0.1:{self.bridge.server.port}"

    async def deliver(self, event: str, payload: dict[str, Any], *, signature: str | None = None,
                      delivery: str | None = None, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
        raw = body if body is not None else json.dumps(payload).encode()
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                   "Content-Type": "application/json"}
        if signature != "":
            headers["X-Hub-Signature-256"] = signature or sign(raw)
        async with aiohttp.ClientSession() as s, s.post(f"{self.url}/github/webhook", data=raw,
                                                        headers=headers) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else {})

    async def comments(self, repo: str, number: int, count: int, timeout: float = 10) -> list[str]:
        """The comments on one issue, once there are ``count`` of them."""
        await until(lambda: len(self.gh.comments_on(repo, number)) >= count, timeout)
        return self.gh.comments_on(repo, number)


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    gh = await FakeGitHub().start()
    yield gh
    await gh.stop()


@pytest.fixture
def github_config(make_config: Callable[..., Config], fake_llm: FakeOpenAI,
                  fake_github: FakeGitHub) -> Callable[..., Config]:
    def make(**env: Any) -> Config:
        base = {"LLM_URL": fake_llm.url, "GITHUB_TOKEN": "ghp_testtoken123", "GITHUB_WEBHOOK_SECRET": SECRET,
                "GITHUB_URL": fake_github.url}
        return make_config(YAML, **{**base, **env})
    return make


@pytest.fixture
async def harness(github_config: Callable[..., Config], fake_github: FakeGitHub,
                  fake_llm: FakeOpenAI) -> AsyncIterator[GitHubHarness]:
    bridge = Bridge(github_config())  # platforms found through entry points, as `bridge run` does
    await bridge.start()
    yield GitHubHarness(bridge, fake_github, fake_llm)
    await bridge.stop()


def comment_payload(body: str, *, number: int = 1, comment_id: int = 1, login: str = "Codertocat",
                    user_type: str = "User", state: str = "open", repo: str = REPO) -> dict[str, Any]:
    p = copy.deepcopy(fixture("issue_comment.created.2"))
    p["comment"].update(id=comment_id, body=body)
    p["comment"]["user"].update(login=login, type=user_type, id=user_id(login))  # one account per login
    p["sender"].update(login=login, type=user_type, id=user_id(login))
    p["issue"].update(number=number, state=state)
    p["repository"]["full_name"] = repo
    return p


def opened_payload(title: str, body: str, *, number: int = 1, issue_id: int = 1) -> dict[str, Any]:
    p = copy.deepcopy(fixture("issues.opened.1"))
    p["issue"].update(title=title, body=body, number=number, id=issue_id)
    return p


# --------------------------------------------------------------------------------------------- tests


async def test_new_issue_is_answered_with_title_and_body(harness: GitHubHarness) -> None:
    payload = fixture("issues.opened.1")  # unchanged recorded payload
    status, _ = await harness.deliver("issues", payload)
    assert status == 202
    [reply] = await harness.comments(REPO, 1, 1)
    issue = payload["issue"]
    assert reply == f"You said: {issue['title']}\n\n{issue['body']}"
    messages = harness.llm.requests[0]["messages"]
    assert "Rust tutor" in messages[0]["content"]  # the persona bound to Codertocat/*
    assert "Codertocat" not in messages[0]["content"]  # a name anyone can set never reaches the system prompt
    assert harness.gh.comments[0].auth == "token ghp_testtoken123"


async def test_comments_continue_the_issue_conversation(harness: GitHubHarness) -> None:
    await harness.deliver("issues", opened_payload("Borrowing", "Why does this fail?"))
    await harness.comments(REPO, 1, 1)
    # The older payload shape githubkit's strict models reject must still be answered.
    status, body = await harness.deliver("issue_comment", fixture("issue_comment.created.1"))
    assert (status, body) == (202, {"accepted": True})
    await harness.comments(REPO, 1, 2)
    contents = [m["content"] for m in harness.llm.requests[-1]["messages"][1:]]
    assert contents == ["Borrowing\n\nWhy does this fail?", "You said: Borrowing\n\nWhy does this fail?",
                        "You are totally right! I'll get this fixed right away."]


async def test_redelivery_is_answered_once(harness: GitHubHarness) -> None:
    payload = comment_payload("hello", comment_id=77)
    first = await harness.deliver("issue_comment", payload, delivery="d-1")
    again = await harness.deliver("issue_comment", payload, delivery="d-1")  # GitHub's "Redeliver"
    other = await harness.deliver("issue_comment", payload, delivery="d-2")  # a fresh delivery id
    assert first == (202, {"accepted": True})
    assert again == other == (202, {"accepted": False})
    await harness.comments(REPO, 1, 1)
    await asyncio.sleep(0.3)
    assert len(harness.gh.comments) == 1
    assert len(harness.llm.requests) == 1


async def test_forged_or_missing_signature_is_rejected_and_nothing_stored(harness: GitHubHarness) -> None:
    payload = comment_payload("forged")
    body = json.dumps(payload).encode()
    assert (await harness.deliver("issue_comment", payload, signature=sign(body, "wrong-secret")))[0] == 401
    assert (await harness.deliver("issue_comment", payload, signature=""))[0] == 401
    assert (await harness.deliver("issue_comment", payload, signature="sha1=" + "0" * 40))[0] == 401
    # Signed correctly but for different bytes than were sent:
    assert (await harness.deliver("issue_comment", payload, signature=sign(b"{}")))[0] == 401
    await asyncio.sleep(0.2)
    assert harness.llm.requests == []
    assert harness.gh.comments == []
    assert harness.bridge.store is not None
    assert await harness.bridge.store.sessions() == []


async def test_malformed_and_oversized_bodies(harness: GitHubHarness) -> None:
    bad = b"{not json"
    assert (await harness.deliver("issue_comment", {}, body=bad, signature=sign(bad)))[0] == 400
    huge = json.dumps(comment_payload("x" * 70_000)).encode()
    assert (await harness.deliver("issue_comment", {}, body=huge, signature=sign(huge)))[0] == 413
    assert harness.llm.requests == []


@pytest.mark.parametrize(("event", "payload", "reason"), [
    ("issue_comment", fixture("issue_comment.edited.1"), "issue_comment.edited is not a new message"),
    ("issue_comment", fixture("issue_comment.deleted.1"), "issue_comment.deleted is not a new message"),
    ("issues", fixture("issues.edited.1"), "issues.edited is not a new message"),
    ("issues", fixture("issues.labeled.1"), "issues.labeled is not a new message"),
    ("issues", fixture("issues.deleted.1"), "issues.deleted is not a new message"),
    ("installation", fixture("installation.created.1"), "installation events are not conversations"),
    ("issue_comment", comment_payload("on a closed issue", state="closed"), "the conversation is closed"),
    ("issue_comment", comment_payload("I am the bridge", login="bridge-bot"), "sent by a bot"),
    ("issue_comment", comment_payload("beep", login="dependabot[bot]", user_type="Bot"), "sent by a bot"),
])
async def test_ignored_events(harness: GitHubHarness, event: str, payload: dict[str, Any], reason: str) -> None:
    status, body = await harness.deliver(event, payload)
    assert (status, body) == (202, {"ignored": reason})
    await asyncio.sleep(0.1)
    assert harness.llm.requests == []


async def test_ping_is_answered(harness: GitHubHarness) -> None:
    assert await harness.deliver("ping", fixture("ping.none.1")) == (200, {"ok": True, "pong": True})


async def test_two_issues_are_two_sessions(harness: GitHubHarness) -> None:
    await harness.deliver("issue_comment", comment_payload("about issue one", number=1, comment_id=1))
    await harness.deliver("issue_comment", comment_payload("about issue two", number=2, comment_id=2))
    await harness.comments(REPO, 1, 1)
    await harness.comments(REPO, 2, 1)
    histories = sorted([m["content"] for m in r["messages"][1:]] for r in harness.llm.requests)
    assert histories == [["about issue one"], ["about issue two"]]


async def test_pull_request_conversations_behave_like_issues(harness: GitHubHarness) -> None:
    payload = comment_payload("review this please", number=7, comment_id=5)
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/7"}
    await harness.deliver("issue_comment", payload)
    assert await harness.comments(REPO, 7, 1) == ["You said: review this please"]


async def test_reset_command_forgets(harness: GitHubHarness) -> None:
    await harness.deliver("issue_comment", comment_payload("remember 42", comment_id=1))
    await harness.comments(REPO, 1, 1)
    await harness.deliver("issue_comment", comment_payload("/reset", comment_id=2))
    replies = await harness.comments(REPO, 1, 2)
    assert "forgotten" in replies[1]
    await harness.deliver("issue_comment", comment_payload("what number?", comment_id=3))
    await harness.comments(REPO, 1, 3)
    assert [m["content"] for m in harness.llm.requests[-1]["messages"][1:]] == ["what number?"]


async def test_mention_trigger_strips_the_mention(harness: GitHubHarness) -> None:
    quiet = "octo-org/quiet"
    _, body = await harness.deliver("issue_comment", comment_payload("just chatting", repo=quiet))
    assert body == {"accepted": False}
    await harness.deliver("issue_comment", comment_payload("@bridge-bot what is a lifetime?", repo=quiet,
                                                           comment_id=9))
    assert await harness.comments(quiet, 1, 1) == ["You said: what is a lifetime?"]


async def test_long_reply_is_split(github_config: Callable[..., Config], fake_github: FakeGitHub,
                                   fake_llm: FakeOpenAI) -> None:
    paragraphs = [f"Paragraph {i}: " + "word " * 60 for i in range(20)]
    fake_llm.reply = lambda _req: "\n\n".join(paragraphs)
    bridge = Bridge(github_config(MAX_CHARS="1000"))
    await bridge.start()
    try:
        h = GitHubHarness(bridge, fake_github, fake_llm)
        await h.deliver("issue_comment", comment_payload("long please"))
        await until(lambda: bridge.lanes is not None and bridge.lanes.busy == 0 and h.gh.comments_on(REPO, 1))
        parts = h.gh.comments_on(REPO, 1)
        assert len(parts) > 5
        assert all(len(p) <= 1000 for p in parts)
        assert "\n\n".join(parts) == "\n\n".join(paragraphs)  # cut between paragraphs, nothing lost
    finally:
        await bridge.stop()


async def test_llm_failure_is_explained_in_the_thread(harness: GitHubHarness) -> None:
    harness.llm.fail_next(429, "Rate limit reached for sk-live-abc", code="rate_limit_exceeded")
    await harness.deliver("issue_comment", comment_payload("hello?"))
    [reply] = await harness.comments(REPO, 1, 1)
    assert "too many requests" in reply
    assert "sk-live" not in reply
    assert "ghp_" not in reply
    assert harness.bridge.store is not None
    [summary] = await harness.bridge.store.sessions()
    assert [m.status for m in await harness.bridge.store.messages(summary.session.id)] == ["failed"]


async def test_history_survives_a_restart(github_config: Callable[..., Config], fake_github: FakeGitHub,
                                          fake_llm: FakeOpenAI) -> None:
    config = github_config()
    first = Bridge(config)
    await first.start()
    h = GitHubHarness(first, fake_github, fake_llm)
    await h.deliver("issue_comment", comment_payload("my name is Ada", comment_id=1))
    await h.comments(REPO, 1, 1)
    await first.stop()

    second = Bridge(config)
    await second.start()
    try:
        h = GitHubHarness(second, fake_github, fake_llm)
        await h.deliver("issue_comment", comment_payload("what is my name?", comment_id=2))
        await h.comments(REPO, 1, 2)
        contents = [m["content"] for m in fake_llm.requests[-1]["messages"][1:]]
        assert contents == ["my name is Ada", "You said: my name is Ada", "what is my name?"]
        # The first comment's redelivery after the restart is still recognised.
        assert (await h.deliver("issue_comment", comment_payload("my name is Ada", comment_id=1)))[1] == {
            "accepted": False}
    finally:
        await second.stop()


async def test_unanswered_messages_are_answered_after_a_restart(
        github_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI) -> None:
    config = github_config()
    first = Bridge(config, shutdown_grace_s=0.2)
    await first.start()
    fake_llm.hold = asyncio.Event()  # the LLM never answers before the stop
    h = GitHubHarness(first, fake_github, fake_llm)
    assert (await h.deliver("issue_comment", comment_payload("answer me eventually")))[1] == {"accepted": True}
    await asyncio.sleep(0.2)
    await first.stop()
    assert fake_github.comments == []

    fake_llm.hold.set()  # the abandoned request may finish now; nobody reads its answer
    fake_llm.hold = None
    second = Bridge(config)
    await second.start()
    try:
        assert await h.comments(REPO, 1, 1) == ["You said: answer me eventually"]
    finally:
        await second.stop()


async def test_github_server_error_is_retried_by_githubkit(harness: GitHubHarness) -> None:
    harness.gh.fail_comments = [502]
    await harness.deliver("issue_comment", comment_payload("hello"))
    assert await harness.comments(REPO, 1, 1, timeout=15) == ["You said: hello"]


async def test_healthz_and_metrics(harness: GitHubHarness) -> None:
    await harness.deliver("issue_comment", comment_payload("count me"))
    await harness.comments(REPO, 1, 1)
    # The reply is counted after the platform has posted it and the store has recorded it: the
    # comment can be visible a moment before the counter moves, so wait for the counter itself.
    replied = 'bridge_replies_total{platform="github"} 1.0'
    metrics = ""
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{harness.url}/healthz") as r:
            assert r.status == 200
            health = await r.json()

        async def scrape() -> bool:
            nonlocal metrics
            async with s.get(f"{harness.url}/metrics") as r:
                metrics = await r.text()
            return replied in metrics

        await until_async(scrape)
    assert health["status"] == "ok"
    assert health["platforms"]["github"] == {"ok": True, "login": "bridge-bot", "auth": "token"}
    assert 'bridge_events_total{outcome="accepted",platform="github"} 1.0' in metrics
    assert 'bridge_replies_total{platform="github"} 1.0' in metrics
    assert "bridge_llm_latency_seconds_count 1.0" in metrics


async def test_bad_token_fails_start_with_a_clear_message(github_config: Callable[..., Config]) -> None:
    bridge = Bridge(github_config(GITHUB_TOKEN="bad-token"))
    with pytest.raises(PlatformStartError) as err:
        await bridge.start()
    await bridge.stop()
    assert "HTTP 401" in str(err.value)
    assert "platforms.github.token" in str(err.value)
    assert "bad-token" not in str(err.value)


async def test_github_app_uses_installation_tokens(make_config: Callable[..., Config], fake_llm: FakeOpenAI,
                                                   fake_github: FakeGitHub, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "app.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    yaml_text = YAML.replace("token: ${GITHUB_TOKEN}", "app_id: 29310\n    private_key: app.pem")
    bridge = Bridge(make_config(yaml_text, LLM_URL=fake_llm.url, GITHUB_WEBHOOK_SECRET=SECRET,
                                GITHUB_URL=fake_github.url))
    await bridge.start()
    try:
        h = GitHubHarness(bridge, fake_github, fake_llm)
        assert bridge.health()["platforms"]["github"]["login"] == "bridge-app[bot]"
        payload = comment_payload("hello app")
        payload["installation"] = {"id": 4242, "node_id": "x"}
        await h.deliver("issue_comment", payload)
        await h.comments(REPO, 1, 1)
        assert fake_github.token_requests == [4242]
        assert fake_github.comments[0].auth == "token ghs_installation4242"
        # A comment mentioning the app by its slug counts as a mention and is stripped.
        payload = comment_payload("@bridge-app thanks", comment_id=2)
        await h.deliver("issue_comment", payload)
        assert (await h.comments(REPO, 1, 2))[1] == "You said: thanks"
    finally:
        await bridge.stop()


async def test_store_migrates_in_memory() -> None:
    store = await Store.open(":memory:")
    try:
        assert await store.schema_version() == len(MIGRATIONS)
    finally:
        await store.close()


async def test_webhooks_during_shutdown_are_stored_and_answered_at_the_next_start(
        github_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI) -> None:
    config = github_config()
    bridge = Bridge(config, shutdown_grace_s=5.0)
    await bridge.start()
    h = GitHubHarness(bridge, fake_github, fake_llm)
    fake_llm.hold = asyncio.Event()
    await h.deliver("issue_comment", comment_payload("in flight", comment_id=1))
    await until(lambda: fake_llm.requests)
    stopping = asyncio.create_task(bridge.stop())
    await until(lambda: bridge.router is not None and not bridge.router.accepting)  # stop() waits for the answer
    status, _ = await h.deliver("issue_comment", comment_payload("too late", comment_id=2))
    fake_llm.hold.set()
    await stopping
    assert status == 202  # stored: GitHub need not redeliver it
    assert fake_github.comments_on(REPO, 1) == ["You said: in flight"]  # in-flight work was finished
    fake_llm.hold = None
    again = Bridge(config)
    await again.start()
    try:
        await until(lambda: len(fake_github.comments_on(REPO, 1)) == 2)
        assert fake_github.comments_on(REPO, 1) == ["You said: in flight", "You said: too late"]
    finally:
        await again.stop()
