"""Files shared in Slack, end to end: slack-bolt unmodified, the loopback Slack serving ``files[]`` at
``url_private_download`` (refused without the bot token), the loopback OpenAI server reading the turn.

Also the hostile files (each one plain sentence, the message still answered, ``/healthz`` quick
meanwhile) and the SSRF canary: a URL in a message, or a "file" on another host, is never fetched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.app import Bridge
from bridge.attachments import reading
from bridge.config import Config
from bridge.llm.tokens import count_tokens
from tests import sample_files
from tests.fakes import slack_server as slack
from tests.fakes.loopback import serve
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.waiting import until

SEEING, BLIND = "C0SEEING", "C0BLIND"
ALICE = "U0ALICE"
MENTION = f"<@{slack.BOT_USER}>"
ANSWER = "Noted."

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm:
  base_url: ${LLM_URL}
  model: fake
  max_retries: 0
  timeout_s: 5
  context_tokens: ${CONTEXT:-8000}
server: {port: 0}
platforms:
  slack:
    bot_token: ${SLACK_BOT_TOKEN}
    app_token: ${SLACK_APP_TOKEN}
    api_url: ${SLACK_API_URL}
    edit_interval_s: 0.05
attachments:
  max_bytes: ${MAX_BYTES:-2000000}
  max_text_tokens: ${MAX_TEXT_TOKENS:-20000}
channels:
  - {platform: slack, where: C0SEEING, persona: seeing, trigger: mention}
  - {platform: slack, where: C0BLIND, persona: blind, trigger: mention}
"""

SEEING_PERSONA = "name: seeing\nsystem: You help with documents.\nvision: true\n"
BLIND_PERSONA = "name: blind\nsystem: You help with documents.\n"

StartBridge = Callable[..., Awaitable[Bridge]]


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack().start()
    server.add_user(ALICE, "alice", real_name="Alice Liddell", display_name="Alice")
    yield server
    await server.stop()


@pytest.fixture
async def start_bridge(fake_llm: FakeOpenAI, fake_slack: FakeSlack, make_config: Callable[..., Config],
                       tmp_path: Path) -> AsyncIterator[StartBridge]:
    bridges: list[Bridge] = []
    fake_llm.reply = lambda _: ANSWER
    (tmp_path / "prompts" / "seeing.yaml").write_text(SEEING_PERSONA)
    (tmp_path / "prompts" / "blind.yaml").write_text(BLIND_PERSONA)

    async def start(**env: Any) -> Bridge:
        base = {"LLM_URL": fake_llm.url, "SLACK_BOT_TOKEN": slack.BOT_TOKEN, "SLACK_API_URL": fake_slack.url,
                "SLACK_APP_TOKEN": slack.APP_TOKEN}
        bridge = Bridge(make_config(YAML, **{**base, **env}))
        bridges.append(bridge)
        await bridge.start()
        return bridge

    yield start
    for bridge in bridges:
        await bridge.stop()


def last_user(request: dict[str, Any]) -> Any:
    return request["messages"][-1]["content"]


def text_of(content: Any) -> str:
    """The words of a user turn, whether plain text or a list of parts."""
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content if p.get("type") == "text")


async def answered(fake: FakeSlack, channel: str, ts: str, count: int = 1) -> list[str]:
    """The thread's bot messages once ``count`` of them end with the model's answer."""
    def done() -> bool:
        replies = fake.replies(channel, ts)
        return len(replies) >= count and all(r.text.endswith(ANSWER) for r in replies[:count])
    await fake.wait_for(done, timeout=30)
    return [r.text for r in fake.replies(channel, ts)]


async def share(fake: FakeSlack, text: str, files: list[dict[str, Any]], *, channel: str = SEEING,
                thread_ts: str | None = None) -> dict[str, Any]:
    event = slack.app_mention(text, user=ALICE, channel=channel, thread_ts=thread_ts)
    event["files"] = files
    await fake.push(slack.event_callback(event))
    return event


# ------------------------------------------------------------------------------ what is read


async def test_pdf_is_read_into_the_turn_and_stays_for_the_next_question(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    bridge = await start_bridge()
    lease = sample_files.pdf("Clause 7: the tenant pays 900 EUR rent monthly.", "Clause 9: a notice of two months.")
    root = await share(fake_slack, f"{MENTION} is the notice period fair?",
                       [slack.shared_file(fake_slack, "lease.pdf", lease, "application/pdf")])
    replies = await answered(fake_slack, SEEING, root["ts"])
    assert replies == [ANSWER], "a file read without problems adds nothing to the answer"
    turn = last_user(fake_llm.requests[0])
    assert isinstance(turn, str)
    assert turn.startswith("is the notice period fair?\n\n<file name=\"lease.pdf\" type=pdf>")
    assert "Clause 9: a notice of two months." in turn
    assert turn.endswith("</file>")

    follow = slack.message("and the rent?", user=ALICE, channel=SEEING, thread_ts=root["ts"])
    await fake_slack.push(slack.event_callback(follow))
    await answered(fake_slack, SEEING, root["ts"], 2)
    history = fake_llm.requests[1]["messages"]
    assert "Clause 7: the tenant pays 900 EUR rent monthly." in history[1]["content"], "the file is history"
    assert history[-1]["content"] == "and the rent?"
    shelved = next(iter(fake_slack.files.files.values()))
    assert shelved.downloads == 1, "downloaded once, read once, stored with its turn"
    assert shelved.headers_seen == [f"Bearer {slack.BOT_TOKEN}"], "Slack's files open with the bot token"

    assert bridge.store is not None
    session = (await bridge.store.sessions())[0]
    messages = await bridge.store.messages(session.session.id)
    files = await bridge.store.files([m.id for m in messages])
    stored = files[messages[0].id][0]
    assert stored.state == "read"
    assert stored.kind == "pdf"
    assert "Clause 7" in stored.text
    assert messages[0].tokens > stored.tokens > 20, "the file's tokens are counted with its turn, once"


async def test_a_file_alone_is_a_question_about_it(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                  fake_llm: FakeOpenAI) -> None:
    await start_bridge()
    nda = sample_files.docx("Confidential information means anything marked secret.", "Term: two years.")
    root = await share(fake_slack, MENTION, [slack.shared_file(
        fake_slack, "nda.docx", nda, "application/vnd.openxmlformats-officedocument.wordprocessingml.document")])
    await answered(fake_slack, SEEING, root["ts"])
    turn = last_user(fake_llm.requests[0])
    assert turn.startswith("(No words, only the attached file: the question is about it.)")
    assert "<file name=\"nda.docx\" type=docx>\nConfidential information means anything marked secret.\n" \
           "Term: two years.\n</file>" in turn


async def test_text_file_in_its_encoding_and_long_files_cut_with_a_note(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    await start_bridge(MAX_TEXT_TOKENS=200)
    letter = ("Le propriétaire a décidé que le loyer augmentera en été. Über die Brücke gehen wir später. " * 3)
    long = "\n".join(f"line {i}: the same clause again" for i in range(400))
    root = await share(fake_slack, f"{MENTION} read these", [
        slack.shared_file(fake_slack, "lettre.txt", letter.encode("cp1252"), "text/plain"),
        slack.shared_file(fake_slack, "long.csv", long.encode(), "text/csv")])
    await answered(fake_slack, SEEING, root["ts"])
    turn = last_user(fake_llm.requests[0])
    assert "Le propriétaire a décidé que le loyer augmentera en été." in turn, "cp1252 read as cp1252"
    assert "line 0: the same clause again" in turn
    assert "line 399" not in turn
    assert "[The file is cut here: only its first 200 tokens are shown; the rest was not read.]" in turn


async def test_a_file_larger_than_the_context_budget_is_cut_to_fit(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    await start_bridge(CONTEXT=400)
    long = "\n".join(f"line {i}: the same clause again" for i in range(400))
    root = await share(fake_slack, f"{MENTION} read it", [
        slack.shared_file(fake_slack, "long.txt", long.encode(), "text/plain")])
    await answered(fake_slack, SEEING, root["ts"])
    turn = last_user(fake_llm.requests[0])
    assert "line 0: the same clause again" in turn
    assert "[The file is cut here: only its first " in turn
    prompt = sum(count_tokens(m["content"], "fake") + 4 for m in fake_llm.requests[0]["messages"])
    assert prompt <= 400, "the request fits the context budget"


async def test_image_goes_to_a_vision_persona_as_image_input(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                             fake_llm: FakeOpenAI) -> None:
    await start_bridge()
    photo = sample_files.png(3000, 2000)
    root = await share(fake_slack, f"{MENTION} what colour is this?",
                       [slack.shared_file(fake_slack, "photo.png", photo, "image/png")])
    await answered(fake_slack, SEEING, root["ts"])
    turn = last_user(fake_llm.requests[0])
    assert isinstance(turn, list)
    assert turn[0]["type"] == "text"
    assert turn[0]["text"].startswith("what colour is this?\n\n[Image shared: \"photo.png\"]")
    image = turn[1]["image_url"]["url"]
    assert image.startswith("data:image/jpeg;base64,")

    from base64 import b64decode
    from io import BytesIO

    from PIL import Image
    with Image.open(BytesIO(b64decode(image.split(",", 1)[1]))) as shown:
        assert max(shown.size) <= 1536, "resized to the model's limits"
        assert shown.size[0] / shown.size[1] == pytest.approx(1.5, rel=0.01), "proportions kept"

    follow = slack.message("and now?", user=ALICE, channel=SEEING, thread_ts=root["ts"])
    await fake_slack.push(slack.event_callback(follow))
    await answered(fake_slack, SEEING, root["ts"], 2)
    earlier = fake_llm.requests[1]["messages"][1]["content"]
    assert isinstance(earlier, list)
    assert earlier[1]["image_url"]["url"] == image, "later turns still see it"
    assert next(iter(fake_slack.files.files.values())).downloads == 1


async def test_image_without_vision_is_named_and_the_author_told_once(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI) -> None:
    await start_bridge()
    root = await share(fake_slack, f"{MENTION} look", [slack.shared_file(
        fake_slack, "shot.png", sample_files.png(), "image/png")], channel=BLIND)
    replies = await answered(fake_slack, BLIND, root["ts"])
    assert replies[0] == ("I can't see images with this persona: I was only told that you shared `shot.png`. "
                          "Describe what matters in it, or paste its text.\n\n" + ANSWER)
    turn = last_user(fake_llm.requests[0])
    assert turn == ("look\n\n[Image shared: \"shot.png\"; this assistant cannot see images, "
                    "only that one was shared]")
    await share(fake_slack, f"{MENTION} and this one", [slack.shared_file(
        fake_slack, "second.png", sample_files.png(), "image/png")], channel=BLIND, thread_ts=root["ts"])
    replies = await answered(fake_slack, BLIND, root["ts"], 2)
    assert replies[1] == ANSWER, "told once per conversation"


# ------------------------------------------------------------------------------ hostile files


async def healthz_ms(bridge: Bridge) -> float:
    assert bridge.server is not None
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{bridge.server.port}/healthz") as r:
        assert r.status == 200
    return (time.monotonic() - started) * 1000


HOSTILE = [
    ("bomb.docx", sample_files.zip_bomb_docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     "I couldn't read `bomb.docx`: it unpacks to far more than its size (it looks like a zip or image bomb), "
     "so I left it alone."),
    ("bomb.png", sample_files.png_bomb, "image/png",
     "I couldn't read `bomb.png`: it unpacks to far more than its size (it looks like a zip or image bomb), "
     "so I left it alone."),
    ("endless.pdf", sample_files.endless_pdf, "application/pdf", "I couldn't read `endless.pdf`: it is damaged."),
    ("damaged.pdf", sample_files.damaged_pdf, "application/pdf", "I couldn't read `damaged.pdf`: it is damaged."),
]


@pytest.mark.parametrize(("name", "make", "mime", "sentence"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_file_gets_one_sentence_and_the_message_is_answered(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI,
        name: str, make: Callable[[], bytes], mime: str, sentence: str) -> None:
    bridge = await start_bridge(MAX_BYTES=5_000_000)
    root = await share(fake_slack, f"{MENTION} summarise", [slack.shared_file(fake_slack, name, make(), mime)])
    slowest = 0.0
    while not (fake_slack.replies(SEEING, root["ts"]) and
               fake_slack.replies(SEEING, root["ts"])[-1].text.endswith(ANSWER)):
        slowest = max(slowest, await healthz_ms(bridge))
        assert slowest < 250, "the bridge keeps answering while it refuses the file"
    assert fake_slack.replies(SEEING, root["ts"])[-1].text == f"⚠️ {sentence}\n\n{ANSWER}"
    assert text_of(last_user(fake_llm.requests[0])) == f"summarise\n\n[File shared: \"{name}\"; it could not be read]"


async def test_a_reader_that_takes_too_long_is_killed(start_bridge: StartBridge, fake_slack: FakeSlack,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "READ_TIMEOUT_S", 0.01)  # even an honest PDF: the limit is what is tested
    await start_bridge()
    root = await share(fake_slack, f"{MENTION} read", [slack.shared_file(
        fake_slack, "slow.pdf", sample_files.pdf("text"), "application/pdf")])
    replies = await answered(fake_slack, SEEING, root["ts"])
    assert replies == [f"⚠️ I couldn't read `slow.pdf`: reading it took too long.\n\n{ANSWER}"]


async def test_oversize_file_is_refused_early_whatever_it_claims(start_bridge: StartBridge,
                                                                 fake_slack: FakeSlack) -> None:
    bridge = await start_bridge(MAX_BYTES=1_000_000)
    declared = slack.shared_file(fake_slack, "big.pdf", b"%PDF-1.4" + b"\0" * 2_000_000, "application/pdf")
    lying = slack.shared_file(fake_slack, "small.txt", b"x" * 65536, "text/plain", size=1000, endless=True)
    root = await share(fake_slack, f"{MENTION} two files", [declared, lying])
    slowest = 0.0
    while not fake_slack.replies(SEEING, root["ts"]) or not fake_slack.replies(SEEING, root["ts"])[-1].text.endswith(
            ANSWER):
        slowest = max(slowest, await healthz_ms(bridge))
    assert slowest < 250
    assert fake_slack.replies(SEEING, root["ts"])[-1].text == (
        "⚠️ I couldn't read `big.pdf`: it is larger than the 1 MB I accept.\n"
        "⚠️ I couldn't read `small.txt`: it is larger than the 1 MB I accept.\n\n" + ANSWER)
    files = list(fake_slack.files.files.values())
    assert files[0].downloads == 0, "a declared size over the limit is never downloaded"
    assert bridge.server is not None
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{bridge.server.port}/metrics") as r:
        assert 'bridge_files_total{outcome="too_big",platform="slack"} 2.0' in await r.text()
    await until(lambda: files[1].hung_up)
    assert files[1].sent < 20_000_000, "a body that keeps coming is cut after the limit (socket buffers aside)"


# ------------------------------------------------------------------------------------ SSRF


@pytest.fixture
async def canary() -> AsyncIterator[tuple[str, list[str]]]:
    """A server that must never be asked anything: its base URL and the paths requested."""
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=sample_files.pdf("secret internal data"), content_type="application/pdf")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner, url = await serve(app)
    yield url, hits
    await runner.cleanup()


async def test_urls_in_a_message_and_files_on_other_hosts_are_never_fetched(
        start_bridge: StartBridge, fake_slack: FakeSlack, fake_llm: FakeOpenAI,
        canary: tuple[str, list[str]]) -> None:
    await start_bridge()
    url, hits = canary
    forged = slack.shared_file(fake_slack, "report.pdf", b"", "application/pdf")
    forged["url_private_download"] = f"{url}/files-pri/{slack.TEAM}-F0/download/report.pdf"
    root = await share(fake_slack, f"{MENTION} read <{url}/latest/meta-data/> please", [forged])
    replies = await answered(fake_slack, SEEING, root["ts"])
    assert replies == ["⚠️ I couldn't download `report.pdf`: it is not on Slack's own file host.\n\n" + ANSWER]
    await asyncio.sleep(0)  # nothing is pending that could still reach it
    assert hits == [], "the canary was never requested"
    assert "secret internal data" not in str(fake_llm.requests)


async def test_download_without_the_token_is_refused_by_slack(fake_slack: FakeSlack) -> None:
    """The fake behaves as Slack does: without the bot token, a file URL answers with a sign-in page."""
    entry = slack.shared_file(fake_slack, "a.txt", b"hello", "text/plain")
    async with aiohttp.ClientSession() as s, s.get(entry["url_private_download"]) as r:
        assert r.content_type == "text/html"
    from bridge.attachments import problems
    from bridge.attachments.download import download
    from bridge.attachments.hosts import FileHosts
    from bridge.types import Attachment
    hosts = FileHosts("slack", (fake_slack.url.removesuffix("/api/"),))  # the right host, but no token
    async with aiohttp.ClientSession() as s:
        with pytest.raises(problems.FileProblem, match="Slack did not let me"):
            await download(s, Attachment("a.txt", entry["url_private_download"], 5, "text/plain"), hosts, 1000)
