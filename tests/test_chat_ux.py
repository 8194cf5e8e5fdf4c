"""`bridge chat` and `bridge sessions list` as a newcomer sees them: the model the server really runs,
a plain sentence (no log lines) when the server is down, no raw Markdown, a table with a header."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.test_cli import bridge_cli
from tests.test_first_hour import config, seed  # noqa: F401  (config: a fixture)

DOWN = "http://127.0.0.1:9/v1"  # nothing listens on the discard port: connection refused


async def test_chat_names_the_model_the_server_runs(config: str, fake_llm: FakeOpenAI) -> None:  # noqa: F811
    fake_llm.models = [{"id": "SmolLM2-135M-Instruct-Q8_0.gguf", "object": "model"}]
    code, out, err = await bridge_cli("chat", "--config", config, env={"LLM_URL": fake_llm.url}, stdin=b"")
    assert code == 0, err
    assert "(SmolLM2-135M-Instruct-Q8_0.gguf at " in out
    assert "which serves it for llm.model 'fake'" in out


async def test_a_server_that_is_down_is_one_plain_sentence(config: str) -> None:  # noqa: F811
    code, out, err = await bridge_cli("chat", "--config", config, env={"LLM_URL": DOWN}, stdin=b"hello\n")
    assert code == 0, err
    assert f"the LLM at {DOWN} cannot be used now: nothing answers there" in out
    assert "could not reach the language model server" in out
    assert err == ""  # no log lines in the middle of the chat
    assert "Timeout" not in out
    assert "timeout" not in out


async def test_the_cut_off_note_is_plain_text(config: str, fake_llm: FakeOpenAI) -> None:  # noqa: F811
    fake_llm.finish_reason = "length"
    code, out, err = await bridge_cli("chat", "--config", config, env={"LLM_URL": fake_llm.url}, stdin=b"hello\n")
    assert code == 0, err
    assert "(This answer was cut off at the length limit.)" in out
    assert "_(" not in out
    assert ")_" not in out


async def test_sessions_list_has_a_header_and_plurals(config: str, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "data").mkdir()
    await seed(tmp_path / "data" / "bridge.db")
    code, out, err = await bridge_cli("sessions", "list", "--config", config)
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["id", "session", "persona", "messages", "last", "active"]
    assert "2 messages" in row
    assert "msgs" not in out


async def test_one_message_is_singular(config: str, tmp_path: Path) -> None:  # noqa: F811
    from bridge.store.store import Store
    from bridge.types import Author, ThreadRef

    (tmp_path / "data").mkdir()
    store = await Store.open(str(tmp_path / "data" / "bridge.db"))
    try:
        thread = ThreadRef("github", "", "octo-org/octo-repo", "9")
        await store.accept(event_id="e1", session_key=thread.key, persona="assistant", thread=thread,
                           author=Author("ann", "ann"), content="one question")
    finally:
        await store.close()
    code, out, err = await bridge_cli("sessions", "list", "--config", config)
    assert code == 0, err
    assert "1 message  " in out.splitlines()[1]
