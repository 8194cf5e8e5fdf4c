"""Files attached to GitHub issues and comments: the ``user-attachments`` links in the body, end to end
(signed webhook → githubkit adapter → the loopback GitHub serving the files, with the token a private
repository needs). Any other URL in the body is text: a local canary proves it is never requested."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from bridge.app import Bridge
from bridge.attachments.hosts import FileHosts
from bridge.config import Config
from platforms.github.files import attachment_links
from tests import sample_files
from tests.fakes.github_server import FakeGitHub
from tests.fakes.loopback import serve
from tests.fakes.openai_server import FakeOpenAI
from tests.test_github import (  # noqa: F401  (fixtures)
    REPO,
    SECRET,
    YAML,
    GitHubHarness,
    comment_payload,
    fake_github,
    github_config,
    harness,
    opened_payload,
)
from tests.waiting import until

TOKEN = "token ghp_testtoken123"


@pytest.fixture
async def canary() -> AsyncIterator[tuple[str, list[str]]]:
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"secret internal data", content_type="text/plain")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner, url = await serve(app)
    yield url, hits
    await runner.cleanup()


async def test_issue_attachments_are_read_with_the_token_and_kept(harness: GitHubHarness,  # noqa: F811
                                                                 canary: tuple[str, list[str]]) -> None:
    gh = harness.gh
    gh.files.auth = TOKEN  # a private repository: its attachments need the bot's token
    lease = gh.attachment("lease.pdf", sample_files.pdf("Clause 3: rent is due on the first."), "application/pdf")
    shot = gh.attachment("shot.png", sample_files.png(), "image/png", image=True)
    url, hits = canary
    body = (f"Is clause 3 normal?\n\n[lease.pdf]({lease})\n\n<img width=\"300\" alt=\"shot\" src=\"{shot}\" />\n\n"
            f"Also see {url}/user-attachments/files/9/x.pdf and [this]({url}/latest/meta-data/)")
    await harness.deliver("issues", opened_payload("My lease", body))
    [reply] = await harness.comments(REPO, 1, 1)
    assert reply.startswith("I can't see images with this persona: I was only told that you shared `shot`.")
    turn = harness.llm.requests[0]["messages"][-1]["content"]
    assert "<file name=\"lease.pdf\" type=pdf>\n[page 1]\nClause 3: rent is due on the first.\n</file>" in turn
    assert turn.endswith("[Image shared: \"shot\"; this assistant cannot see images, only that one was shared]")

    await harness.deliver("issue_comment", comment_payload("and clause 4?", comment_id=5))
    await harness.comments(REPO, 1, 2)
    assert "Clause 3: rent is due on the first." in harness.llm.requests[1]["messages"][1]["content"]
    assert [f.downloads for f in gh.files.files.values()] == [1, 1], "each attachment downloaded once"
    assert {h for f in gh.files.files.values() for h in f.headers_seen} == {TOKEN}
    assert hits == [], "a URL merely written in the body is never fetched"


def test_only_attachment_links_on_githubs_hosts_count() -> None:
    hosts = FileHosts("github", ("https://github.com", "https://ghe.example.com", "https://*.githubusercontent.com"))
    body = ("[a.pdf](https://github.com/user-attachments/files/1/a.pdf) "
            "![img](https://github.com/user-attachments/assets/0b1c) "
            "https://ghe.example.com/user-attachments/files/2/b.docx "
            "https://user-images.githubusercontent.com/1/c.png "
            "https://avatars.githubusercontent.com/u/1?v=4 "                  # not an attachment
            "https://evil.example/user-attachments/files/3/d.pdf "           # not GitHub's host
            "http://github.com/user-attachments/files/4/e.pdf "              # not https
            "https://github.com.evil.example/user-attachments/files/5/f.pdf "
            "[a.pdf](https://github.com/user-attachments/files/1/a.pdf)")      # the same file twice
    found = attachment_links(body, hosts)
    assert [(a.name, a.url) for a in found] == [
        ("a.pdf", "https://github.com/user-attachments/files/1/a.pdf"),
        ("img", "https://github.com/user-attachments/assets/0b1c"),
        ("b.docx", "https://ghe.example.com/user-attachments/files/2/b.docx"),
        ("c.png", "https://user-images.githubusercontent.com/1/c.png")]


async def test_a_github_app_reads_private_attachments_with_its_installation_token(
        make_config: Callable[..., Config], fake_llm: FakeOpenAI, fake_github: FakeGitHub,  # noqa: F811
        tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "app.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    bridge = Bridge(make_config(YAML.replace("token: ${GITHUB_TOKEN}", "app_id: 29310\n    private_key: app.pem"),
                                LLM_URL=fake_llm.url, GITHUB_WEBHOOK_SECRET=SECRET, GITHUB_URL=fake_github.url))
    await bridge.start()
    try:
        fake_github.files.auth = "token ghs_installation4242"
        notes = fake_github.attachment("notes.txt", b"The meeting moved to Friday.", "text/plain")
        payload = comment_payload(f"when is it? [notes.txt]({notes})")
        payload["installation"] = {"id": 4242, "node_id": "x"}
        await GitHubHarness(bridge, fake_github, fake_llm).deliver("issue_comment", payload)
        await until(lambda: fake_github.comments_on(REPO, 1))
        assert "The meeting moved to Friday." in fake_llm.requests[0]["messages"][-1]["content"]
        assert next(iter(fake_github.files.files.values())).downloads == 1
    finally:
        await bridge.stop()
