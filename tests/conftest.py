from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Config, parse_config
from bridge.store.store import Store
from tests import pgcluster
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


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgcluster.Cluster]:
    """One throwaway PostgreSQL for the whole run (tests/pgcluster.py); skipped where there is none,
    except under .ci/test (BRIDGE_REQUIRE_POSTGRES), where a missing PostgreSQL is a failure."""
    missing = pgcluster.available()
    if missing:
        if os.environ.get("BRIDGE_REQUIRE_POSTGRES"):
            pytest.fail(missing)
        pytest.skip(missing)
    cluster = pgcluster.Cluster.create()
    yield cluster
    cluster.stop()


_databases = itertools.count(1)


async def new_database(cluster: pgcluster.Cluster) -> str:
    """A fresh, empty database in the shared cluster: its URL (with the test password)."""
    import asyncpg

    name = f"t{os.getpid()}_{next(_databases)}"
    conn = await asyncpg.connect(cluster.url())
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return cluster.url(name)


@pytest.fixture
async def pg_url(pg_cluster: pgcluster.Cluster) -> str:
    return await new_database(pg_cluster)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """An empty store on each backend: SQLite in memory, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        s = await Store.open(":memory:")
    else:
        s = await Store.open_postgres(await new_database(request.getfixturevalue("pg_cluster")))
    yield s
    await s.close()
