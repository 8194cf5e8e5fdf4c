"""People see tools working: each platform's progress signal and summary, end to end through its real
client library against the loopback fakes, with a real MCP server (tests/mcp_server.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import platforms.github.delivery as github_delivery
from bridge.app import Bridge
from bridge.config import Config
from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import Calls, FakeOpenAI
from tests.test_github import REPO, SECRET, GitHubHarness, comment_payload, fake_github
from tests.test_github import YAML as GITHUB_YAML
from tests.test_tools import RESEARCHER, SERVER, script
from tests.waiting import until

__all__ = ["fake_github"]

TOOLS = """
tools:
  files:
    command: ["${PY}", "${SERVER}", "files"]
    timeout_s: 30
"""


async def test_github_shows_eyes_at_once_and_lists_the_tools_used(
        tmp_path: Path, make_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github_delivery, "EYES_AFTER_S", 600.0)  # only a starting tool can show 👀 now
    flag = tmp_path / "release"
    fake_llm.reply = script(Calls([("hold", {"flag": str(flag)}), ("lookup", {"term": "x"})]),
                            Calls([("lookup", {"term": "y"})]))
    config = make_config(GITHUB_YAML.replace("persona: rust-tutor", "persona: researcher") + TOOLS,
                         LLM_URL=fake_llm.url, GITHUB_TOKEN="ghp_testtoken123", GITHUB_WEBHOOK_SECRET=SECRET,
                         GITHUB_URL=fake_github.url, PY=sys.executable, SERVER=SERVER)
    (tmp_path / "prompts" / "researcher.yaml").write_text(RESEARCHER.format(steps=4))
    bridge = Bridge(config)
    await bridge.start()
    try:
        h = GitHubHarness(bridge, fake_github, fake_llm)
        await h.deliver("issue_comment", comment_payload("look it up", comment_id=5))
        await until(lambda: Path(f"{flag}.started").exists())
        await until(lambda: fake_github.reactions_on("comment:5") == ["eyes"], timeout=5)
        assert fake_github.comments == []
        flag.touch()
        [body] = await h.comments(REPO, 1, 1)
        assert body.startswith("Found: released | files: x means something precise | files: y means")
        assert "<details><summary>Tools used (3)</summary>\n\n- `hold`\n- `lookup` ×2\n</details>" in body
        await until(lambda: fake_github.reactions_on("comment:5") == [])
    finally:
        await bridge.stop()
