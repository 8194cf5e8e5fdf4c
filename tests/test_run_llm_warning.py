"""`bridge run` says once, at start, when the LLM cannot be used: whoever watches it start learns of a
wrong llm.base_url at once, not from the first person whose message fails."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.procs import BridgeProcess, free_port
from tests.test_cli import ROOT
from tests.waiting import until

CONFIG = f"""
storage: {{url: "sqlite:///bridge.db"}}
llm: {{base_url: "${{LLM_URL}}", model: fake, max_retries: 0}}
server: {{port: "${{PORT}}"}}
personas_dir: {ROOT / "prompts"}
"""


async def started(tmp_path: Path, llm_url: str) -> BridgeProcess:
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG)
    port = free_port()
    proc = BridgeProcess(path, {"LLM_URL": llm_url, "PORT": str(port)}, port)
    await proc.start()
    return proc


async def test_an_unreachable_llm_is_said_once_at_start(tmp_path: Path) -> None:
    proc = await started(tmp_path, "http://127.0.0.1:9/v1")
    try:
        await until(lambda: "cannot be used" in proc.log.read_text())
    finally:
        assert await proc.stop() == 0
    log = proc.log.read_text()
    [line] = [line for line in log.splitlines() if "cannot be used" in line]
    assert "WARNING" in line
    assert "the LLM at http://127.0.0.1:9/v1 cannot be used (unreachable)" in line
    assert "check llm.base_url" in line


async def test_a_reachable_llm_draws_no_warning(tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    proc = await started(tmp_path, fake_llm.url)
    try:
        await until(lambda: fake_llm.model_requests >= 1)
    finally:
        assert await proc.stop() == 0
    assert "cannot be used" not in proc.log.read_text()
