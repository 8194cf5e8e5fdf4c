"""Tools over MCP end to end: the bridge, a real MCP server (the ``mcp`` SDK, over stdio and streamable
HTTP: tests/mcp_server.py), the fake LLM making tool calls (streamed and not), a queue-based platform."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bridge.app import Bridge
from bridge.config import Config, ConfigError
from bridge.store.store import MIGRATIONS
from tests.fakes.openai_server import Calls, FakeOpenAI
from tests.fakes.platform import FakePlatform
from tests.mcp_server import build
from tests.waiting import until

SERVER = str(Path(__file__).with_name("mcp_server.py"))

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 1, timeout_s: 5, stream: "${STREAM:-true}"}
server: {port: 0}
platforms:
  github: {token: ghp_abcdef, webhook_secret: s3cr3t-value}
channels:
  - {platform: github, where: "octo-org/plain", persona: assistant, trigger: always}
  - {platform: github, where: "octo-org/*", persona: researcher, trigger: always}
tools:
  files:
    command: ["${PY}", "${SERVER}", "files"]
    env: {GREETING: "${GREETING:-hello}"}
    timeout_s: 1.5
    max_result_chars: 1000
"""

RESEARCHER = """
name: researcher
description: Looks things up before answering
system: You look things up.
tools: [files]
max_tool_steps: {steps}
"""


def after_question(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages of the answer being written: those after the last user message."""
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    return messages[last_user + 1:]


def script(*rounds: Calls) -> Callable[[dict[str, Any]], str | Calls]:
    """A model that makes these rounds of calls, then answers with every tool result it read."""
    def reply(body: dict[str, Any]) -> str | Calls:
        done = after_question(body)
        n = sum(1 for m in done if m.get("tool_calls"))
        if n < len(rounds) and body.get("tools"):
            return rounds[n]
        return "Found: " + " | ".join(str(m["content"]) for m in done if m["role"] == "tool")
    return reply


@pytest.fixture
def setup(tmp_path: Path, fake_llm: FakeOpenAI, make_config: Callable[..., Config]) -> Callable[..., Config]:
    def make(yaml_text: str = YAML, steps: int = 4, **env: Any) -> Config:
        config = make_config(yaml_text, LLM_URL=fake_llm.url, PY=sys.executable, SERVER=SERVER, **env)
        (tmp_path / "prompts" / "researcher.yaml").write_text(RESEARCHER.format(steps=steps))
        return config
    return make


@pytest.fixture
async def running(setup: Callable[..., Config]) -> AsyncIterator[Callable[..., Any]]:
    bridges: list[Bridge] = []

    async def start(config: Config | None = None, **kw: Any) -> tuple[Bridge, FakePlatform]:
        platform = FakePlatform("github")
        b = Bridge(config or setup(), platforms={"github": platform}, serve_http=False, **kw)
        await b.start()
        bridges.append(b)
        return b, platform

    yield start
    for b in bridges:
        await b.stop()


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in after_question(body) if m["role"] == "tool"]


@pytest.mark.parametrize("stream", ["true", "false"])
async def test_a_call_and_its_result(stream: str, setup: Callable[..., Config], running: Callable[..., Any],
                                     fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = script(Calls([("lookup", {"term": "estoppel"})], text="Let me look."))
    b, gh = await running(setup(STREAM=stream))
    await gh.say("What is estoppel?", channel="octo-org/law")
    reply = await gh.reply()
    assert reply.text == "Found: files: estoppel means something precise"
    first, second = fake_llm.requests
    assert [t["function"]["name"] for t in first["tools"]] == \
        ["lookup", "meet", "hang", "hold", "fail", "die", "big", "env", "grow"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["term"]
    call = after_question(second)[0]["tool_calls"][0]
    assert call["function"] == {"name": "lookup", "arguments": json.dumps({"term": "estoppel"})}
    assert tool_messages(second) == [{"role": "tool", "tool_call_id": call["id"],
                                      "content": "files: estoppel means something precise"}]
    assert 'bridge_tool_calls_total{outcome="ok",tool="lookup"} 1.0' in b.metrics.render().decode()
    session = (await b.store.sessions())[0].session
    steps = json.loads((await b.store.transcript(session.id))[0].tool_log)
    assert [(s["name"], s["outcome"], s["result"]) for s in steps] == \
        [("lookup", "ok", "files: estoppel means something precise")]


async def test_tools_are_offered_per_persona(running: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    _, gh = await running()
    await gh.say("hi", channel="octo-org/plain")
    await gh.reply()
    assert "tools" not in fake_llm.requests[-1]  # the assistant persona lists no tools
    await gh.say("hello", channel="octo-org/law")
    await gh.reply()
    assert len(fake_llm.requests[-1]["tools"]) == 9


async def test_parallel_calls_run_at_once(tmp_path: Path, running: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    folder = str(tmp_path)  # each call waits for the other to arrive: only calls run side by side both meet
    fake_llm.reply = script(Calls([("meet", {"me": "a", "partner": "b", "folder": folder}),
                                   ("meet", {"me": "b", "partner": "a", "folder": folder})]))
    _, gh = await running()
    await gh.say("meet", channel="octo-org/law")
    assert (await gh.reply()).text == "Found: a met b | b met a"


async def test_the_step_limit_ends_with_an_answer(setup: Callable[..., Config], running: Callable[..., Any],
                                                  fake_llm: FakeOpenAI) -> None:
    lookups = [Calls([("lookup", {"term": f"t{i}"})]) for i in range(10)]  # a model that never stops asking
    fake_llm.reply = script(*lookups)
    _, gh = await running(setup(steps=2))
    await gh.say("dig", channel="octo-org/law")
    reply = await gh.reply()
    assert reply.text == "Found: files: t0 means something precise | files: t1 means something precise"
    assert len(fake_llm.requests) == 3
    last = fake_llm.requests[-1]
    assert "tools" not in last
    assert last["messages"][-1]["role"] == "system"
    assert "every tool call allowed" in last["messages"][-1]["content"]


async def test_failing_hanging_invented_and_missing_tools_are_answered(
        setup: Callable[..., Config], running: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    yaml_text = YAML + """
  gone:
    url: http://127.0.0.1:9/mcp
"""
    fake_llm.reply = script(Calls([("fail", {}), ("hang", {}), ("invented", {"x": 1}), ("lookup", "{not json")]))
    b, gh = await running(setup(yaml_text.replace("tools: [files]", "tools: [files, gone]")))
    await gh.say("try everything", channel="octo-org/law")
    reply = await gh.reply(timeout=20)
    results = tool_messages(fake_llm.requests[-1])
    calls = after_question(fake_llm.requests[-1])[0]["tool_calls"]
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in calls]  # every call id answered
    assert "reported an error" in results[0]["content"]
    assert "did not answer within 1.5 s" in results[1]["content"]
    assert "no tool named 'invented'" in results[2]["content"]
    assert "not valid JSON" in results[3]["content"]
    assert reply.text.startswith("Found: ")
    assert sorted(a for _, a in gh.progress_seen) == ["fail", "hang", "lookup"]  # not the invented name
    metrics = b.metrics.render().decode()
    for outcome, tool in (("error", "fail"), ("timeout", "hang"), ("unknown", "(unknown)")):
        assert f'bridge_tool_calls_total{{outcome="{outcome}",tool="{tool}"}} 1.0' in metrics


async def test_a_server_that_dies_mid_call_is_reported_and_restarted(running: Callable[..., Any],
                                                                     fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = script(Calls([("die", {})]))
    b, gh = await running()
    await gh.say("die", channel="octo-org/law")
    assert "stopped during the call" in (await gh.reply()).text
    server = b.tools.servers["files"]
    await until(lambda: server.connections == 2 and server.up)  # the keeper started it again
    fake_llm.reply = script(Calls([("lookup", {"term": "again"})]))
    await gh.say("again", channel="octo-org/law")
    assert (await gh.reply()).text == "Found: files: again means something precise"


async def test_an_oversized_result_keeps_its_beginning(running: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = script(Calls([("big", {"size": 50_000})]))
    _, gh = await running()
    await gh.say("big", channel="octo-org/law")
    await gh.reply()
    content = tool_messages(fake_llm.requests[-1])[0]["content"]
    assert content.startswith("0123456789" * 100)
    assert "cut: it had 50,000 characters and only the first 1,000 are shown" in content
    assert len(content) < 1300


async def test_budgets_count_every_step(running: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = script(Calls([("lookup", {"term": "a"})]), Calls([("lookup", {"term": "b"})]))
    b, gh = await running()
    await gh.say("two steps", channel="octo-org/law")
    await gh.reply()
    assert len(fake_llm.requests) == 3
    totals = await b.store.usage_totals(0)
    # The fake server reports 10 prompt + 5 completion tokens per streamed request: three requests.
    assert (totals.messages, totals.prompt_tokens, totals.completion_tokens) == (1, 30, 15)


async def test_the_thread_shows_a_tool_at_once(tmp_path: Path, running: Callable[..., Any],
                                               fake_llm: FakeOpenAI) -> None:
    flag = tmp_path / "release"
    fake_llm.reply = script(Calls([("hold", {"flag": str(flag)})]))
    _, gh = await running()
    await gh.say("hold on", channel="octo-org/law")
    await until(lambda: Path(f"{flag}.started").exists())
    assert gh.progress_seen == [("github:octo-org/law#1", "hold")]  # shown while the tool still runs
    flag.touch()
    assert (await gh.reply()).text == "Found: released"


async def test_history_keeps_earlier_tool_results(running: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = script(Calls([("lookup", {"term": "laches"})]))
    _, gh = await running()
    await gh.say("What is laches?", channel="octo-org/law")
    await gh.reply()
    fake_llm.reply = lambda body: "ok"
    await gh.say("And in short?", channel="octo-org/law")
    await gh.reply()
    roles = [m["role"] for m in fake_llm.requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert fake_llm.requests[-1]["messages"][3]["content"] == "files: laches means something precise"


async def test_a_restart_in_the_middle_of_a_tool_loop_answers_once(
        tmp_path: Path, setup: Callable[..., Config], running: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    flag = tmp_path / "release"
    fake_llm.reply = script(Calls([("hold", {"flag": str(flag)})]))
    config = setup(YAML.replace("timeout_s: 1.5", "timeout_s: 30"))
    first, gh1 = await running(config, shutdown_grace_s=0.2)
    await gh1.say("hold on", channel="octo-org/law")
    await until(lambda: Path(f"{flag}.started").exists())
    await first.stop()  # mid-call: the answer is not finished, the message stays pending
    flag.touch()
    _, gh2 = await running(config)
    reply = await gh2.reply(timeout=20)
    assert reply.text == "Found: released"
    assert gh1.sent.empty()
    await asyncio.sleep(0.3)
    assert gh2.sent.empty(), "answered once"


async def test_a_server_gets_only_its_own_environment(running: Callable[..., Any], fake_llm: FakeOpenAI,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-bridge-secret")
    fake_llm.reply = script(Calls([("env", {"variable": "OPENAI_API_KEY"}), ("env", {"variable": "GREETING"})]))
    _, gh = await running()
    await gh.say("env", channel="octo-org/law")
    assert (await gh.reply()).text == "Found: <unset> | hello"


async def _http_server(name: str) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build(name).streamable_http_app(), log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=2))  # the bridge's listen stream stays open
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until(lambda: server.started)
    return server, task, f"http://127.0.0.1:{port}/mcp"


async def test_http_server_and_clashing_names_get_prefixes(setup: Callable[..., Config], running: Callable[..., Any],
                                                           fake_llm: FakeOpenAI) -> None:
    server, task, url = await _http_server("web")
    try:
        yaml_text = YAML + f"""
  web:
    url: {url}
"""
        fake_llm.reply = script(Calls([("web__lookup", {"term": "x"}), ("files__lookup", {"term": "y"})]))
        config = setup(yaml_text)
        (Path(config.personas_dir) / "researcher.yaml").write_text(
            RESEARCHER.format(steps=4).replace("tools: [files]", "tools: [files, web]"))
        b, gh = await running(config)
        await gh.say("both", channel="octo-org/law")
        assert (await gh.reply()).text == "Found: web: x means something precise | files: y means something precise"
        names = [t["function"]["name"] for t in fake_llm.requests[0]["tools"]]
        assert {"files__lookup", "web__lookup"} <= set(names)
        assert "lookup" not in names
        # The server says its tools changed: the next answer is offered the new one.
        fake_llm.reply = script(Calls([("web__grow", {})]))
        await gh.say("grow", channel="octo-org/law")
        await gh.reply()
        assert b.tools is not None
        await until(lambda: any(t.name == "extra" for t in b.tools.servers["web"].tools))
        fake_llm.reply = lambda body: "ok"
        await gh.say("what now?", channel="octo-org/law")
        await gh.reply()
        assert "extra" in [t["function"]["name"] for t in fake_llm.requests[-1]["tools"]]
        await b.stop()
    finally:
        server.should_exit = True
        await task


async def test_a_server_down_at_start_does_not_stop_the_bridge(setup: Callable[..., Config],
                                                               running: Callable[..., Any],
                                                               fake_llm: FakeOpenAI) -> None:
    yaml_text = YAML + """
  gone:
    command: ["/nonexistent/mcp-server"]
"""
    config = setup(yaml_text)
    (Path(config.personas_dir) / "researcher.yaml").write_text(
        RESEARCHER.format(steps=4).replace("tools: [files]", "tools: [gone, files]"))
    b, gh = await running(config)
    await gh.say("hi", channel="octo-org/law")
    await gh.reply()
    assert len(fake_llm.requests[-1]["tools"]) == 9  # the other server's tools are still offered
    assert b.tools is not None
    assert not b.tools.servers["gone"].up
    assert b.tools.servers["gone"].error


def test_config_names_what_is_wrong(setup: Callable[..., Config], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set exactly one of command"):
        setup(YAML + "  both: {command: [x], url: 'http://h/mcp'}\n")
    config = setup()
    (tmp_path / "prompts" / "researcher.yaml").write_text(RESEARCHER.format(steps=4).replace("[files]", "[nope]"))
    with pytest.raises(ConfigError, match="tools: 'nope' is not under the top-level tools:"):
        Bridge(config, platforms={"github": FakePlatform()}, serve_http=False)


def test_schema_has_the_tool_log() -> None:
    assert any("tool_log" in str(m) for m in MIGRATIONS)
    assert os.path.exists(SERVER)


def test_sessions_show_lists_the_tool_calls(make_config: Callable[..., Config], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from bridge.cli import main

    async def answer_once() -> None:
        llm = await FakeOpenAI().start()
        llm.reply = script(Calls([("lookup", {"term": "tort"})]))
        env = {"LLM_URL": llm.url, "PY": sys.executable, "SERVER": SERVER}
        (tmp_path / "prompts" / "researcher.yaml").write_text(RESEARCHER.format(steps=4))
        platform = FakePlatform("github")
        b = Bridge(make_config(YAML, **env), platforms={"github": platform}, serve_http=False)
        await b.start()
        await platform.say("What is a tort?", channel="octo-org/law")
        await platform.reply()
        await b.stop()
        await llm.stop()
        for var, value in env.items():
            monkeypatch.setenv(var, value)

    asyncio.run(answer_once())
    assert main(["sessions", "show", "1", "--config", str(tmp_path / "bridge.yaml")]) == 0
    out = capsys.readouterr().out
    assert '--- tool lookup({"term": "tort"}) → ok' in out
    assert "    files: tort means something precise" in out
    assert out.index("--- tool lookup") < out.index("--- assistant")


async def test_history_counts_tool_results_against_the_context_budget(
        setup: Callable[..., Config], running: Callable[..., Any], fake_llm: FakeOpenAI) -> None:
    def reply(body: dict[str, Any]) -> str | Calls:
        if "big" in body["messages"][-1].get("content", "") and body.get("tools"):
            return Calls([("big", {"size": 5000})])
        return "Short answer."

    fake_llm.reply = reply
    _, gh = await running(setup(YAML.replace("timeout_s: 5", "timeout_s: 5, context_tokens: 300")))
    await gh.say("a big lookup", channel="octo-org/law")
    await gh.reply()
    await gh.say("a small follow-up", channel="octo-org/law")
    await gh.reply()
    # The first exchange is short, but its tool result (about 350 tokens) is not: it is left out whole.
    assert [m["content"] for m in fake_llm.requests[-1]["messages"][1:]] == ["a small follow-up"]
