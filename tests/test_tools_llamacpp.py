"""Tools against the real llama.cpp server (SmolLM2-135M, as tests/test_llamacpp.py runs it).

That model cannot make tool calls (its chat template has no tools section: docs/tools.md, Local
models), so what is checked here is what a real OpenAI-compatible server must accept from the tool
loop: a request offering tools, and a history holding an earlier answer's tool calls and results.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.app import Bridge
from bridge.config import Config
from bridge.types import Author, ThreadRef
from tests.fakes.platform import FakePlatform
from tests.test_llamacpp import YAML, llama_url
from tests.test_tools import RESEARCHER, SERVER

pytestmark = pytest.mark.llamacpp
__all__ = ["llama_url"]  # the module-scoped server fixture, shared with tests/test_llamacpp.py

TOOLS = """
tools:
  files:
    command: ["${PY}", "${SERVER}", "files"]
"""


async def test_llama_cpp_accepts_tools_and_earlier_tool_results(
        llama_url: str, make_config: Callable[..., Config], tmp_path: Path) -> None:
    config = make_config(YAML.replace("persona: assistant", "persona: researcher") + TOOLS, LLM_URL=llama_url,
                         BUDGET=1500, PY=sys.executable, SERVER=SERVER)
    (tmp_path / "prompts" / "researcher.yaml").write_text(RESEARCHER.format(steps=2))
    platform = FakePlatform()
    bridge = Bridge(config, platforms={"github": platform})
    await bridge.start()
    try:
        assert bridge.store is not None
        thread = ThreadRef("github", "", "octo-org/octo-repo", "1")
        accepted = await bridge.store.accept(event_id="seed", session_key=thread.key, persona="researcher",
                                             thread=thread, author=Author("alice", "alice"),
                                             content="What does estoppel mean?")
        assert accepted is not None
        _, seeded = accepted
        log = [{"round": 1, "id": "call_1", "name": "lookup", "arguments": json.dumps({"term": "estoppel"}),
                "outcome": "ok", "result": "estoppel: a rule that stops someone going back on their word",
                "seconds": 0.1}]
        await bridge.store.save_tool_log(seeded, json.dumps(log), 30)
        await bridge.store.save_final(seeded, "It stops someone going back on their word.", 12)
        await bridge.store.delivered(seeded)

        assert await platform.say("Say it in other words.", event="next")
        reply = await platform.reply(timeout=180)
        assert reply.text.strip()
        assert "⚠️" not in reply.text, reply.text
    finally:
        await bridge.stop()
