"""``bridge migrate --to postgresql://…``: a SQLite store copied over, usable at once, never twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.store.store import Store
from bridge.types import Author, ThreadRef
from tests import pgcluster

pytestmark = pytest.mark.postgres

ANN = Author("U1", "Ann")
CONFIG = 'storage: {url: "sqlite:///data/bridge.db"}\nllm: {model: fake}\n'


async def fill(path: Path) -> None:
    store = await Store.open(str(path))
    try:
        for n in (1, 2):
            thread = ThreadRef("github", "octo", "octo/repo", str(n))
            for i in range(3):
                accepted = await store.accept(event_id=f"github:{n}-{i}", session_key=f"github:octo/repo#{n}",
                                              persona="assistant", thread=thread, author=ANN, content=f"q{n}.{i}",
                                              tokens=2)
                assert accepted is not None
                if i < 2:
                    await store.start_attempt(accepted[1], {"github"})
                    await store.record_posted(accepted[1], [f"c{n}{i}"])
                    await store.save_final(accepted[1], f"a{n}.{i}", 2)
                    await store.delivered(accepted[1])
        session = await store.find_session("github:octo/repo#2")
        assert session is not None
        await store.set_persona(session.id, "rust-tutor")
    finally:
        await store.close()
    with sqlite3.connect(path) as db:  # what the answers cost: copied too
        db.execute("INSERT INTO usage (message_id, created_at, platform, channel, session_key, user_id, persona, "
                   "model, prompt_tokens, completion_tokens) VALUES (1, 1.5, 'github', 'octo/repo', "
                   "'github:octo/repo#1', 'U1', 'assistant', 'fake', 42, 7)")


async def test_migrate_copies_everything_and_ids_continue(tmp_path: Path, pg_url: str,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "bridge.yaml").write_text(CONFIG)
    await fill(tmp_path / "data" / "bridge.db")
    monkeypatch.setenv("TARGET_PW", pgcluster.PASSWORD)
    target = pg_url.replace(pgcluster.PASSWORD, "${TARGET_PW}")
    code = await _cli(["migrate", "--to", target, "--config", str(tmp_path / "bridge.yaml")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert pgcluster.PASSWORD not in out.out + out.err
    assert "messages" in out.out
    assert "usage" in out.out

    store = await Store.open_postgres(pg_url)
    try:
        one = await store.find_session("github:octo/repo#1")
        two = await store.find_session("github:octo/repo#2")
        assert one is not None
        assert two is not None
        assert two.persona == "rust-tutor"
        assert [(e.message.content, e.reply) for e in await store.transcript(one.id)] == [
            ("q1.0", "a1.0"), ("q1.1", "a1.1"), ("q1.2", None)]
        assert [m.content for m in await store.pending()] == ["q1.2", "q2.2"]
        reply = await store.reply((await store.messages(one.id))[0].id)
        assert reply is not None
        assert reply.platform_ids == ("c10",)
        assert await store.has_thread(ThreadRef("github", "octo", "octo/repo", "2"))
        thread = ThreadRef("github", "octo", "octo/repo", "1")
        assert await store.accept(event_id="github:1-0", session_key="github:octo/repo#1", persona="assistant",
                                  thread=thread, author=ANN, content="again") is None  # dedupe ids came along
        new = await store.accept(event_id="github:new", session_key="github:octo/repo#1", persona="assistant",
                                 thread=thread, author=ANN, content="new")
        assert new is not None
        assert new[1] > 6
        assert new[0].id == one.id
    finally:
        await store.close()

    again = await _cli(["migrate", "--to", target, "--config", str(tmp_path / "bridge.yaml")])
    err = capsys.readouterr().err
    assert again == 1
    assert "already holds a bridge store" in err
    assert pgcluster.PASSWORD not in err


async def _cli(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)  # the command runs its own event loop
