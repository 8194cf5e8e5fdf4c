"""What the LLM server tells about itself: its models, the model's context window, reachability."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config import LLMConfig
from bridge.llm.client import LLMClient, LLMFailure
from bridge.llm.models import window_from_models, window_from_props
from bridge.metrics import Metrics
from tests.fakes.openai_server import FakeOpenAI


@pytest.mark.parametrize(("props", "window"), [
    ({"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1}, 4096),  # llama.cpp
    ({"n_ctx": 8192}, 8192),                                                       # older llama.cpp
    ({"default_generation_settings": {"n_ctx": 0}}, None),
    ({"build_info": "b1"}, None),
    ([], None),
])
def test_window_from_props(props: Any, window: int | None) -> None:
    assert window_from_props(props) == window


@pytest.mark.parametrize(("entry", "window"), [
    ({"id": "m", "max_model_len": 32768}, 32768),                         # vLLM
    ({"id": "m", "context_length": 128000}, 128000),                      # OpenRouter
    ({"id": "m", "max_context_length": "16384"}, 16384),                  # LM Studio
    ({"id": "m", "meta": {"n_ctx_train": 8192}}, 8192),                   # llama.cpp's training window
    ({"id": "m", "owned_by": "openai"}, None),                            # OpenAI says nothing
    ({"id": "m", "max_model_len": True}, None),
])
def test_window_from_models(entry: dict[str, Any], window: int | None) -> None:
    assert window_from_models({"data": [entry, {"id": "other", "max_model_len": 1}]}, "m") == window


def test_window_from_the_only_model_whatever_its_name() -> None:
    # llama.cpp serves one model under the file's name, whatever llm.model says
    assert window_from_models({"data": [{"id": "smollm2.gguf", "max_model_len": 2048}]}, "gpt-4o-mini") == 2048


def client(url: str) -> LLMClient:
    return LLMClient(LLMConfig(base_url=url, model="fake", max_retries=0, timeout_s=5), Metrics())


async def test_context_window_from_llama_cpp_props(fake_llm: FakeOpenAI) -> None:
    fake_llm.props = {"default_generation_settings": {"n_ctx": 2048}}
    fake_llm.models = [{"id": "fake", "max_model_len": 99999}]
    llm = client(fake_llm.url)
    try:
        assert await llm.context_window("fake") == 2048  # the running server's window wins
    finally:
        await llm.close()


async def test_context_window_from_vllm_models(fake_llm: FakeOpenAI) -> None:
    fake_llm.models = [{"id": "fake", "object": "model", "max_model_len": 32768}]
    llm = client(fake_llm.url)
    try:
        assert await llm.context_window("fake") == 32768
        fake_llm.models = [{"id": "fake", "object": "model"}, {"id": "other"}]
        assert await llm.context_window("fake") is None
    finally:
        await llm.close()


async def test_unreachable_server_has_no_window_and_fails_the_probe() -> None:
    llm = client("http://127.0.0.1:9/v1")
    try:
        assert await llm.context_window("fake") is None
        assert not await llm.probe()
        assert llm.last_failure is not None
        assert llm.last_failure[1] == "unreachable"
        with pytest.raises(LLMFailure):
            await llm.models()
    finally:
        await llm.close()


async def test_models_and_probe_record_success(fake_llm: FakeOpenAI) -> None:
    llm = client(fake_llm.url)
    try:
        assert llm.last_success is None
        assert await llm.models() == ["fake"]
        assert await llm.probe()
        assert llm.last_success is not None
    finally:
        await llm.close()
