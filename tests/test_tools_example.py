"""The shipped example: the docs-search MCP server, the librarian persona and the sample bridge.yaml,
through `bridge chat` and `bridge check --online` as a user runs them (the fake LLM makes the calls)."""

from __future__ import annotations

import sys
from pathlib import Path

from bridge.tools.catalog import ToolManager
from bridge.tools.config import ToolServerConfig
from tests.fakes.openai_server import Calls, FakeOpenAI
from tests.test_cli import ROOT, bridge_cli
from tests.test_tools import SERVER, script

EXAMPLE = str(ROOT / "bridge" / "tools" / "examples" / "docs_search.py")


async def test_the_example_searches_and_reads_only_its_folder(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "setup.md").write_text("# Setup\n\nInstall it.\nThe webhook secret goes here.\n")
    (tmp_path / "docs" / "faq.md").write_text("# FAQ\n\nNothing about secrets.\n")
    (tmp_path / "outside.md").write_text("# Private\n\nwebhook secret: hunter2\n")
    manager = ToolManager({"docs": ToolServerConfig(command=[sys.executable, EXAMPLE, "docs"])}, tmp_path)
    manager.start()
    try:
        box = await manager.toolbox(["docs"])
        assert sorted(box.offered) == ["list_docs", "read_doc", "search_docs"]
        found = await box.call("search_docs", '{"query": "webhook secret"}')
        assert found.outcome == "ok"
        assert found.text.startswith("setup.md (score 2)\n  4: The webhook secret goes here.")
        assert "hunter2" not in found.text
        read = await box.call("read_doc", '{"path": "setup.md", "start_line": 3, "max_lines": 1}')
        assert read.text == "3: Install it.\n(lines 3-3 of 4)"
        escaped = await box.call("read_doc", '{"path": "../outside.md"}')
        assert "No Markdown file" in escaped.text
        assert (await box.call("list_docs", "{}")).text == "faq.md: FAQ\nsetup.md: Setup"
    finally:
        await manager.stop()


async def test_bridge_chat_with_the_librarian_uses_the_shipped_server(tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = script(Calls([("search_docs", {"query": "max_tool_steps"})]))
    env = {"LLM_BASE_URL": fake_llm.url, "LLM_MODEL": "fake", "BRIDGE_DB": str(tmp_path / "chat.db")}
    code, out, err = await bridge_cli("chat", "--persona", "librarian", "--config", str(ROOT / "bridge.yaml"),
                                      env=env, stdin=b"How many tool rounds may an answer use?\n")
    assert code == 0, err
    assert "bot> (using search_docs…) Found: tools.md (score" in out  # the sample's docs server searched docs/
    assert [t["function"]["name"] for t in fake_llm.requests[0]["tools"]] == ["search_docs", "read_doc",
                                                                              "list_docs"]


async def test_check_online_starts_each_server_and_lists_its_tools(tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    (tmp_path / "bridge.yaml").write_text(f"""
storage: {{url: "sqlite:///bridge.db"}}
llm: {{base_url: "{fake_llm.url}", model: fake}}
personas_dir: {ROOT / "prompts"}
tools:
  files: {{command: ["{sys.executable}", "{SERVER}", "files"]}}
  gone: {{url: "http://user:pw@127.0.0.1:9/mcp"}}
""")
    code, out, err = await bridge_cli("check", "--online", "--config", str(tmp_path / "bridge.yaml"))
    assert code == 1, out + err
    assert "tools:     files (stdio: " in out  # the offline part names each server and how it is reached
    assert "warning:   persona librarian names tool server(s) not under tools: here (docs)" in out
    assert "ok      tools: files (stdio: " in out
    assert "offers 9 tool(s): lookup, meet, hang, hold, fail, die, big, env, grow" in out
    assert "MISSING tools: gone (HTTP: http://127.0.0.1:9/mcp) did not answer" in out
    assert "check tools.gone.url" in out
    assert "pw" not in out + err
