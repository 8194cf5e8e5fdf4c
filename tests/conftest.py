from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Config, parse_config
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeOpenAI]:
    server = await FakeOpenAI().start()
    yield server
    await server.stop()


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """A config in a temp folder with the shipped personas; YAML text, extra env as keywords."""
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts", dirs_exist_ok=True)

    def make(yaml_text: str, **env: Any) -> Config:
        (tmp_path / "bridge.yaml").write_text(yaml_text)
        return parse_config(yaml_text, source=str(tmp_path / "bridge.yaml"), base_dir=tmp_path,
                            env={k: str(v) for k, v in env.items()})

    return make
