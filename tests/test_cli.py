"""The command line as users run it: real subprocesses of `bridge`, real signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from tests.fakes.github_server import FakeGitHub
from tests.fakes.openai_server import FakeOpenAI
from tests.test_github import REPO, SECRET, comment_payload, sign
from tests.waiting import until

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
storage: {url: "sqlite:///state/bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0}
server:
  port: ${PORT}
platforms:
  github: {token: "${GITHUB_TOKEN}", webhook_secret: "${GITHUB_WEBHOOK_SECRET}", api_url: "${GITHUB_URL}"}
channels:
  - {platform: github, where: "Codertocat/*", persona: legal-adviser, trigger: always}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def bridge_cli(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
                     cwd: Path = ROOT) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", *args, cwd=cwd, env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def write_config(tmp_path: Path, prompts: bool = True) -> Path:
    (tmp_path / "state").mkdir(exist_ok=True)
    if prompts:
        (tmp_path / "prompts").symlink_to(ROOT / "prompts")
    path = tmp_path / "bridge.yaml"
    path.write_text(CONFIG)
    return path


async def test_check_prints_the_channel_table() -> None:
    code, out, _ = await bridge_cli("check", "--config", str(ROOT / "bridge.yaml"), env={"OPENAI_API_KEY": "sk-x"})
    assert code == 0
    assert "config OK" in out
    assert "slack (disabled)    *      legal-adviser  mention  per thread" in out
    assert "sk-x" not in out


async def test_check_fails_with_file_key_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text("llm: {model: x, tmeout_s: 5}\nchannels: [{platform: github, persona: nobody}]\n")
    code, _, err = await bridge_cli("check", "--config", str(path))
    assert code == 1
    assert f"{path}:" in err
    assert "llm.tmeout_s: unknown key. did you mean 'timeout_s'?" in err
    assert "Traceback" not in err


async def test_check_reports_an_unknown_persona(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(CONFIG.replace("legal-adviser", "legal-advisor"))
    code, _, err = await bridge_cli("check", "--config", str(path), env={
        "LLM_URL": "http://x", "PORT": "1", "GITHUB_TOKEN": "t0ken", "GITHUB_WEBHOOK_SECRET": "s3cret",
        "GITHUB_URL": "http://x"})
    assert code == 1
    assert "channels.0.persona: no persona 'legal-advisor'" in err


async def test_run_answers_a_webhook_and_exits_0_on_sigterm(tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    gh = await FakeGitHub().start()
    port = free_port()
    path = write_config(tmp_path)
    env = {"LLM_URL": fake_llm.url, "PORT": str(port), "GITHUB_TOKEN": "ghp_cli_token",
           "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_URL": gh.url, "BRIDGE_CONFIG": str(path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "run", env={**os.environ, **env}, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as s:
            async def healthy() -> bool:
                try:
                    async with s.get(f"{url}/healthz") as r:
                        return r.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            for _ in range(200):
                if await healthy():
                    break
                await asyncio.sleep(0.05)
            body = json.dumps(comment_payload("Is a verbal contract binding?")).encode()
            headers = {"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sign(body),
                       "X-GitHub-Delivery": "abc", "Content-Type": "application/json"}
            async with s.post(f"{url}/github/webhook", data=body, headers=headers) as r:
                assert r.status == 202
        await until(lambda: gh.comments_on(REPO, 1))
        assert gh.comments_on(REPO, 1) == ["You said: Is a verbal contract binding?"]
        assert "legal adviser" in fake_llm.requests[0]["messages"][0]["content"]
        proc.send_signal(signal.SIGTERM)
        _, raw_err = await asyncio.wait_for(proc.communicate(), 30)
        err = raw_err.decode()
        assert proc.returncode == 0
        assert "stopping" in err
        assert "ghp_cli_token" not in err
        assert SECRET not in err
    finally:
        if proc.returncode is None:
            proc.kill()
        await gh.stop()

    # The store is there for `bridge sessions`.
    code, out, _ = await bridge_cli("sessions", "list", env=env, cwd=tmp_path)
    assert code == 0
    assert "github:Codertocat/Hello-World#1" in out
    code, out, _ = await bridge_cli("sessions", "show", "github:Codertocat/Hello-World#1", env=env, cwd=tmp_path)
    assert "Is a verbal contract binding?" in out
    assert "You said: Is a verbal contract binding?" in out
    code, out, _ = await bridge_cli("sessions", "reset", "1", env=env, cwd=tmp_path)
    assert "forgot 1 message(s)" in out  # the question (its reply goes with it), as `sessions list` counts


async def test_run_with_a_refused_token_exits_1_without_the_token(tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    gh = await FakeGitHub().start()
    try:
        path = write_config(tmp_path)
        code, _, err = await bridge_cli("run", "--config", str(path), env={
            "LLM_URL": fake_llm.url, "PORT": str(free_port()), "GITHUB_TOKEN": "bad-token",
            "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_URL": gh.url})
    finally:
        await gh.stop()
    assert code == 1
    assert "GitHub refused to sign in" in err
    assert "bad-token" not in err
    assert "Traceback" not in err


async def test_chat_in_the_terminal_keeps_its_conversation(tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    path = write_config(tmp_path)
    env = {"LLM_URL": fake_llm.url, "PORT": "1", "GITHUB_TOKEN": "t0ken", "GITHUB_WEBHOOK_SECRET": "s3cret",
           "GITHUB_URL": "http://127.0.0.1:1"}
    code, out, _ = await bridge_cli("chat", "--persona", "rust-tutor", "--config", str(path), env=env,
                                    stdin=b"What is a borrow?\n/personas\n")
    assert code == 0
    assert "bot> You said: What is a borrow?" in out
    assert "`rust-tutor` (current)" in out
    assert "Rust tutor" in fake_llm.requests[0]["messages"][0]["content"]
    code, out, _ = await bridge_cli("chat", "--persona", "rust-tutor", "--config", str(path), env=env,
                                    stdin=b"And again?\n")
    assert [m["content"] for m in fake_llm.requests[-1]["messages"][1:]] == [
        "What is a borrow?", "You said: What is a borrow?", "And again?"]
