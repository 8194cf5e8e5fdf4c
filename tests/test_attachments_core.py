"""The platform-neutral parts of attachments, table-tested: file hosts, kinds, images in the budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.attachments.hosts import FileHosts, api_origin
from bridge.attachments.kinds import kind_of
from bridge.attachments.prompt import IMAGE_TOKENS, images_kept, user_content
from bridge.store.attachments import StoredFile
from bridge.store.store import Store
from bridge.types import Attachment, Author, ThreadRef
from tests import sample_files

GITHUB = FileHosts("github", ("https://github.com", "https://*.githubusercontent.com", "http://127.0.0.1:8123"),
                   credentialed=("https://github.com", "http://127.0.0.1:8123"))


@pytest.mark.parametrize(("url", "allowed", "credentialed"), [
    ("https://github.com/user-attachments/files/1/a.pdf", True, True),
    ("https://GitHub.com:443/user-attachments/files/1/a.pdf", True, True),
    ("https://objects.githubusercontent.com/x?sig=1", True, False),       # storage: no token
    ("https://githubusercontent.com.evil.example/x", False, False),
    ("https://github.com.evil.example/x", False, False),
    ("http://github.com/x", False, False),                                # another origin (scheme)
    ("https://github.com:8443/x", False, False),                          # another origin (port)
    ("http://127.0.0.1:8123/user-attachments/x", True, True),             # an overridden api_url's origin
    ("http://127.0.0.1:8124/x", False, False),
    ("http://169.254.169.254/latest/meta-data/", False, False),
    ("file:///etc/passwd", False, False),
    ("gopher://github.com/x", False, False),
    ("https://user@github.com@evil.example/x", False, False),
])
def test_only_the_platforms_hosts_are_allowed(url: str, allowed: bool, credentialed: bool) -> None:
    assert GITHUB.allows(url) is allowed
    assert GITHUB.credentials_for(url) is credentialed


def test_local_files_only_for_the_terminal() -> None:
    assert FileHosts("console", (), local=True).allows("file:///tmp/a.txt")
    assert not FileHosts("slack", ("https://files.slack.com",)).allows("file:///tmp/a.txt")


def test_api_origin_only_when_overridden() -> None:
    assert api_origin("https://api.github.com", "https://api.github.com") == ()
    assert api_origin("https://ghe.example.com/api/v3", "https://api.github.com") == ("https://ghe.example.com:443",)


@pytest.mark.parametrize(("data", "name", "mime", "kind"), [
    (sample_files.pdf("x"), "scan.bin", "", "pdf"),                 # the bytes decide
    (sample_files.png(), "notes.txt", "text/plain", "image"),
    (sample_files.docx("x"), "nda.docx", "", "docx"),
    (sample_files.docx("x"), "archive.zip", "application/zip", None),  # a zip is not read
    (b"a,b\n1,2\n", "t.csv", "", "text"),
    (b"{\"a\": 1}", "data", "application/json", "text"),
    (b"MZ\x90\x00\x03\x00\x00\x00", "setup.exe", "application/octet-stream", None),
    (b"\x00\x01\x02binary", "notes.txt", "", None),                 # NULs: not text, whatever the name
    (b"garbage", "lease.pdf", "application/pdf", "pdf"),            # read as PDF: the reader says damaged
])
def test_kind_of(data: bytes, name: str, mime: str, kind: str | None) -> None:
    assert kind_of(data, name, mime) == kind


def _image(fid: int, mid: int) -> StoredFile:
    return StoredFile(fid, mid, 0, f"img{fid}.png", "", 0, "image/png", "read", "image", image="data:image/png;base64,")


def test_oldest_images_are_left_out_first() -> None:
    files = {1: [_image(10, 1)], 2: [_image(20, 2)], 3: [_image(30, 3), _image(31, 3)]}
    newest_first = [3, 2, 1]
    assert images_kept(files, newest_first, 10 * IMAGE_TOKENS) == {10, 20, 30, 31}
    assert images_kept(files, newest_first, 3 * IMAGE_TOKENS) == {20, 30, 31}
    assert images_kept(files, newest_first, IMAGE_TOKENS) == {30}
    assert images_kept(files, newest_first, IMAGE_TOKENS - 1) == set()
    left_out = user_content("look", files[1], vision=True, kept={20, 30, 31})
    assert left_out == "look\n\n[Image shared: \"img10.png\"; left out of this request to save room]"


async def test_files_are_stored_with_their_turn_counted_once_and_forgotten_with_it(store: Store) -> None:
    thread = ThreadRef("slack", "T", "C", "1")
    accepted = await store.accept(event_id="e1", session_key="k", persona="p", thread=thread, author=Author("u", "u"),
                                  content="", tokens=5, attachments=[
                                      Attachment("a.txt", "https://files.slack.com/a.txt", 3, "text/plain"),
                                      Attachment("b.png", "https://files.slack.com/b.png", 9, "image/png")])
    assert accepted is not None
    session, mid = accepted
    a, b = (await store.files([mid]))[mid]
    assert (a.name, a.state, b.name, b.position) == ("a.txt", "pending", "b.png", 1)
    await store.file_read(a.id, kind="text", text="abc", tokens=30)
    await store.file_read(a.id, kind="text", text="abc", tokens=30)  # read twice (a retry): counted once
    await store.file_read(b.id, kind="image", image="data:image/png;base64,AA")
    message = await store.message(mid)
    assert message is not None
    assert message.tokens == 35
    assert await store.blind_notice_due(session.id, mid)
    assert await store.blind_notice_due(session.id, mid), "the same answer, retried, still carries it"
    second = await store.accept(event_id="e2", session_key="k", persona="p", thread=thread, author=Author("u", "u"),
                                content="more", attachments=[Attachment("c.png", "https://files.slack.com/c.png")])
    assert second is not None
    await store.file_read((await store.files([second[1]]))[second[1]][0].id, kind="image", image="data:,")
    assert not await store.blind_notice_due(session.id, second[1]), "told once per conversation"
    await store.mark(mid, "answered")
    await store.mark(second[1], "answered")
    await store.reset(session.id)
    assert await store.files([mid, second[1]]) == {}


@pytest.mark.parametrize(("files", "expected"), [
    (None, []),
    ("files", []),
    ([1, None, "x"], []),
    ([{"name": "a.pdf", "url_private_download": "javascript:alert(1)"}], []),
    ([{"name": "a.pdf", "url_private_download": ["not", "a", "url"]}], []),
    ([{"name": "gone.pdf", "mode": "tombstone", "url_private_download": "https://files.slack.com/x"}], []),
    ([{"name": "doc", "mode": "external", "url_private": "https://docs.google.com/x"}], []),
    ([{"name": "a.pdf", "size": "big", "mimetype": 7, "url_private_download": "https://files.slack.com/a"}],
     [("a.pdf", "https://files.slack.com/a", 0, "7")]),
    ([{"title": "Notes", "size": 12, "url_private": "https://files.slack.com/n"}],
     [("Notes", "https://files.slack.com/n", 12, "")]),
])
def test_slack_files_of_any_shape(files: object, expected: list[tuple[str, str, int, str]]) -> None:
    from platforms.slack.handlers import attachments_of
    event = {"type": "message", "channel": "C1", "ts": "1.1", "files": files}
    assert [(a.name, a.url, a.size, a.mime) for a in attachments_of(event)] == expected


async def test_types_not_listed_are_not_read() -> None:
    from bridge.attachments import problems
    from bridge.attachments.config import AttachmentsConfig
    from bridge.attachments.reading import read

    only_text = AttachmentsConfig(types=("text",))
    with pytest.raises(problems.FileProblem) as refused:
        await read(sample_files.pdf("x"), "lease.pdf", "application/pdf", only_text, "gpt-4o-mini")
    assert str(refused.value) == "I couldn't read `lease.pdf`: I don't read this type of file here (I read text files)."


def test_an_unknown_type_is_a_config_error_with_its_key(tmp_path: Path) -> None:
    from bridge.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config("attachments: {types: [pdf, xlsx]}\n", source="bridge.yaml", base_dir=tmp_path, env={})
    assert "attachments.types" in str(err.value)
    assert "attachments.types.1: Input should be 'text', 'pdf', 'docx' or 'image'" in str(err.value)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
async def test_a_noisy_image_is_kept_small(mode: str) -> None:
    import base64
    import io
    import os

    from PIL import Image

    from bridge.attachments.config import AttachmentsConfig
    from bridge.attachments.reading import read

    noise = Image.frombytes(mode, (2400, 1600), os.urandom(2400 * 1600 * len(mode)))
    raw = io.BytesIO()
    noise.save(raw, "PNG")
    got = await read(raw.getvalue(), "noise.png", "image/png", AttachmentsConfig(), "gpt-4o-mini")
    kept = base64.b64decode(got.image.split(",", 1)[1])
    assert len(kept) <= 1_000_000, "kept and sent bounded, whatever the picture"
    with Image.open(io.BytesIO(kept)) as shown:
        assert max(shown.size) <= 1536
        assert shown.size[0] / shown.size[1] == pytest.approx(1.5, rel=0.02)
