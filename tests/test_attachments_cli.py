"""``bridge chat`` with ``/file PATH`` and ``bridge sessions show`` listing files: real subprocesses."""

from __future__ import annotations

from pathlib import Path

from tests import sample_files
from tests.fakes.openai_server import FakeOpenAI
from tests.test_cli import bridge_cli, write_config


async def test_chat_attaches_a_local_file_and_sessions_show_lists_it(tmp_path: Path, fake_llm: FakeOpenAI) -> None:
    path = write_config(tmp_path)
    lease = tmp_path / "lease.pdf"
    lease.write_bytes(sample_files.pdf("Clause 2: the lease runs for one year."))
    env = {"LLM_URL": fake_llm.url, "PORT": "1", "GITHUB_TOKEN": "t0ken", "GITHUB_WEBHOOK_SECRET": "s3cret",
           "GITHUB_URL": "http://127.0.0.1:1"}
    fake_llm.reply = lambda _: "It runs for a year."
    stdin = f"/file {lease}\nhow long does it run?\n/file {tmp_path / 'missing.pdf'}\n".encode()
    code, out, err = await bridge_cli("chat", "--persona", "legal-adviser", "--config", str(path), env=env,
                                      stdin=stdin)
    assert code == 0, err
    assert "(attached lease.pdf: it goes with your next message)" in out
    assert "bot> It runs for a year." in out
    assert f"(no file at '{tmp_path / 'missing.pdf'}'" in out
    turn = fake_llm.requests[0]["messages"][-1]["content"]
    assert turn == ("how long does it run?\n\n<file name=\"lease.pdf\" type=pdf>\n[page 1]\n"
                    "Clause 2: the lease runs for one year.\n</file>")

    code, out, err = await bridge_cli("sessions", "show", "1", "--config", str(path), env=env)
    assert code == 0, err
    assert "how long does it run?\n  [file] lease.pdf: pdf, " in out
    assert " tokens of text\n--- assistant\nIt runs for a year." in out
