"""The first hour of a new user, through the real `bridge` command: a config with a data/ folder
that does not exist yet, no platform variables exported, `bridge chat` in a terminal (a real pty),
Ctrl-C, pipes into `head`, backups."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.store.store import Store
from bridge.types import Author, ThreadRef
from tests.fakes.openai_server import FakeOpenAI
from tests.test_cli import ROOT, bridge_cli
from tests.waiting import until

CONFIG = f"""
storage: {{url: "sqlite:///${{DB:-data/bridge.db}}"}}
llm: {{base_url: "${{LLM_URL:-http://127.0.0.1:9/v1}}", model: fake, max_retries: 0}}
personas_dir: {ROOT / "prompts"}
platforms:
  github: {{token: "${{GITHUB_TOKEN}}", webhook_secret: "${{GITHUB_WEBHOOK_SECRET}}"}}
channels:
  - {{platform: github, where: "*/*", persona: legal-adviser, trigger: always}}
"""


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG)
    return str(path)


# ----------------------------------------------------------------------------------- storage


async def test_a_missing_data_folder_is_created(config: str, tmp_path: Path) -> None:
    code, out, err = await bridge_cli("check", "--config", config, env={"GITHUB_TOKEN": "t0ken",
                                                                      "GITHUB_WEBHOOK_SECRET": "s3cret"})
    assert code == 0, err
    assert f"(the folder {tmp_path / 'data'} will be created at start)" in out
    code, out, err = await bridge_cli("sessions", "list", "--config", config)
    assert (code, out.strip()) == (0, "no sessions yet"), err
    assert (tmp_path / "data" / "bridge.db").is_file()


async def test_an_impossible_database_path_is_a_plain_error(config: str, tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the folder should be")
    env = {"GITHUB_TOKEN": "t0ken", "GITHUB_WEBHOOK_SECRET": "s3cret"}
    for args in (("check",), ("sessions", "list"), ("run",)):
        code, _, err = await bridge_cli(*args, "--config", config, env=env)
        assert code == 1, args
        assert f"storage.url: cannot create the folder {tmp_path / 'data'}: {tmp_path / 'data'} is a file" in err
        assert "Traceback" not in err


# ---------------------------------------------------------------------------------- sessions


async def seed(db: Path) -> None:
    store = await Store.open(str(db))
    try:
        thread = ThreadRef("github", "", "octo-org/octo-repo", "7")
        ann = Author("ann", "ann")
        accepted = await store.accept(event_id="e1", session_key=thread.key, persona="assistant", thread=thread,
                                      author=ann, content="What is a tort?")
        assert accepted is not None
        _, first = accepted
        await store.save_final(first, "A civil wrong.", 4)
        await store.delivered(first)
        accepted = await store.accept(event_id="e2", session_key=thread.key, persona="assistant", thread=thread,
                                      author=ann, content="/personas", kind="command")
        assert accepted is not None
        await store.command_done(accepted[1], "Personas: ...")
        await store.delivered(accepted[1])
    finally:
        await store.close()


async def test_sessions_need_no_platform_variables_and_take_options_anywhere(config: str, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    await seed(tmp_path / "data" / "bridge.db")
    code, out, err = await bridge_cli("sessions", "list", "--config", config)  # GITHUB_TOKEN is not set
    assert code == 0, err
    assert "github:octo-org/octo-repo#7" in out
    code, out, err = await bridge_cli("sessions", "show", "--config", config, "github:octo-org/octo-repo#7")
    assert code == 0, err
    assert "What is a tort?" in out
    code, out, err = await bridge_cli("sessions", "--config", config, "show", "1")
    assert code == 0, err
    assert "A civil wrong." in out


async def test_list_and_reset_count_the_same_messages(config: str, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    await seed(tmp_path / "data" / "bridge.db")
    _, out, _ = await bridge_cli("sessions", "list", "--config", config)
    assert "  2 messages  " in out
    _, out, _ = await bridge_cli("sessions", "reset", "1", "--config", config)
    assert "forgot 2 message(s)" in out


async def test_sessions_list_into_head_is_not_an_error(config: str, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "bridge.db"
    store = await Store.open(str(db))  # creates the schema
    await store.close()
    with sqlite3.connect(db) as conn:  # far more output than a pipe holds
        conn.executemany("INSERT INTO sessions (key, persona, created_at, updated_at) VALUES (?, 'assistant', 0, ?)",
                         [(f"slack:T0/C0#{i:06d}", i) for i in range(4000)])
    proc = await asyncio.create_subprocess_shell(
        f"{sys.executable} -m bridge sessions list --config {config} | head -n 1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=os.environ.copy())
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert len(out.decode().splitlines()) == 1
    assert "Traceback" not in err.decode()
    assert "BrokenPipe" not in err.decode()


# ------------------------------------------------------------------------------------ backup


async def test_backup_copies_the_store_online(config: str, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    await seed(tmp_path / "data" / "bridge.db")
    writer = await Store.open(str(tmp_path / "data" / "bridge.db"))  # a running bridge holds it open
    try:
        target = tmp_path / "backups" / "bridge-1.db"
        code, out, err = await bridge_cli("backup", str(target), "--config", config)
        assert code == 0, err
        assert f"to {target}" in out
        copy = await Store.open(str(target))
        try:
            [summary] = await copy.sessions()
            assert summary.session.key == "github:octo-org/octo-repo#7"
            assert await copy.schema_version() == await writer.schema_version()
        finally:
            await copy.close()
        code, _, err = await bridge_cli("backup", str(target), "--config", config)
        assert code == 1
        assert "already exists" in err
    finally:
        await writer.close()


# -------------------------------------------------------------------------------------- chat


class Chat:
    """`bridge chat` as a subprocess whose output is read as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = ""

    async def expect(self, text: str, count: int = 1, timeout: float = 10) -> None:
        assert self.proc.stdout is not None

        async def read() -> None:
            assert self.proc.stdout is not None
            while self.out.count(text) < count:
                chunk = await self.proc.stdout.read(4096)
                if not chunk:
                    raise AssertionError(f"output ended without {text!r}: {self.out[-500:]!r}")
                self.out += chunk.decode(errors="replace")

        await asyncio.wait_for(read(), timeout)

    async def exit_code(self, timeout: float = 15) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)


async def chat(config: str, llm: FakeOpenAI, *extra: str, stdin: int | None = None) -> AsyncIterator[Chat]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "chat", "--config", config, *extra, cwd=ROOT,
        env={**os.environ, "LLM_URL": llm.url},
        stdin=stdin if stdin is not None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        yield Chat(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_ctrl_c_stops_a_runaway_answer_and_at_the_prompt_quits(config: str, fake_llm: FakeOpenAI) -> None:
    fake_llm.reply = lambda _: "blah " * 4000  # ~20 s of streaming
    fake_llm.chunk_delay = 0.01
    async for c in chat(config, fake_llm):
        await c.expect("you> ")
        assert c.proc.stdin is not None
        c.proc.stdin.write(b"Tell me everything\n")
        await c.expect("bot> blah blah")
        c.proc.send_signal(signal.SIGINT)
        await c.expect("[stopped]", timeout=3)  # at once, not after the 20 s stream
        await c.expect("you> ", count=2, timeout=3)
        c.proc.send_signal(signal.SIGINT)  # at the prompt: quit
        assert await c.exit_code() == 0
    code, out, _ = await bridge_cli("sessions", "show", "console:terminal#assistant", "--config", config)
    assert "Tell me everything" in out
    assert "[failed]" in out
    # The next start does not answer it again.
    code, _, _ = await bridge_cli("chat", "--config", config, env={"LLM_URL": fake_llm.url}, stdin=b"")
    assert code == 0
    assert len(fake_llm.requests) == 1


async def test_chat_answers_as_the_persona_asked_for_without_log_noise(config: str, fake_llm: FakeOpenAI) -> None:
    env = {"LLM_URL": fake_llm.url}
    code, out, err = await bridge_cli("chat", "--persona", "legal-adviser", "--config", config, env=env,
                                      stdin=b"hello\n/persona rust-tutor\n")
    assert code == 0, err
    assert "Switched to the `rust-tutor` persona" in out
    assert "HTTP Request" not in out + err  # openai's httpx2 logger stays quiet
    code, out, err = await bridge_cli("chat", "--persona", "legal-adviser", "--config", config, env=env,
                                      stdin=b"/help\nagain\n")
    assert code == 0, err
    assert "Talking to the 'legal-adviser' persona" in out
    assert "I'm answering as the *legal-adviser* persona" in out
    assert "legal adviser" in fake_llm.requests[-1]["messages"][0]["content"]


async def write_all(fd: int, data: bytes) -> None:
    while data:
        written = await asyncio.to_thread(os.write, fd, data)
        data = data[written:]


async def test_a_terminal_paste_is_one_message_of_any_length(config: str, fake_llm: FakeOpenAI) -> None:
    master, slave = pty.openpty()
    try:
        async for c in chat(config, fake_llm, stdin=slave):
            os.close(slave)
            slave = -1
            await c.expect("you> ")
            long = "word " * 1200  # 6,000 characters: past the terminal's 4,095-character line limit
            await write_all(master, long.encode() + b"\r")
            await until(lambda: fake_llm.requests)
            assert fake_llm.requests[0]["messages"][-1]["content"] == long.strip()
            await c.expect("you> ", count=2)
            await write_all(master, b"first line\rsecond line\r\rthird line\r")  # pasted at once
            await until(lambda: len(fake_llm.requests) == 2)
            assert fake_llm.requests[1]["messages"][-1]["content"] == "first line\nsecond line\n\nthird line"
            await c.expect("you> ", count=3)
            await write_all(master, b"\x04")  # Ctrl-D
            assert await c.exit_code() == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
