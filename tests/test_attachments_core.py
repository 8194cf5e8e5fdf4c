"""The platform-neutral parts of attachments, table-tested: file hosts, kinds, images in the budget."""

from __future__ import annotations

import pytest

from bridge.attachments.hosts import FileHosts, api_origin
from bridge.attachments.kinds import kind_of
from bridge.attachments.prompt import IMAGE_TOKENS, images_kept, user_content
from bridge.store.attachments import StoredFile
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
