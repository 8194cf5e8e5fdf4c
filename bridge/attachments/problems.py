"""One plain sentence per problem file, for the author: what went wrong, never a stack trace or a URL."""

from __future__ import annotations

from bridge.attachments.config import Kind

KIND_NAMES: dict[Kind, str] = {"text": "text files", "pdf": "PDF", "docx": "Word (DOCX)", "image": "images"}


class FileProblem(Exception):
    """A file that will not be part of the conversation; ``str()`` is the sentence to show, ``reason``
    a short word for metrics and logs."""

    def __init__(self, sentence: str, reason: str) -> None:
        super().__init__(sentence)
        self.reason = reason


def shown(name: str) -> str:
    """A file name as it appears in a sentence: printable, bounded, in backticks."""
    clean = "".join(ch if ch.isprintable() and ch != "`" else "_" for ch in name)[:80] or "the file"
    return f"`{clean}`"


def _size(n: int) -> str:
    return f"{n / 1_000_000:.0f} MB" if n >= 1_000_000 else f"{max(n // 1000, 1)} kB"


def too_big(name: str, limit: int) -> FileProblem:
    return FileProblem(f"I couldn't read {shown(name)}: it is larger than the {_size(limit)} I accept.", "too_big")


def not_read(name: str, allowed: tuple[Kind, ...]) -> FileProblem:
    kinds = ", ".join(KIND_NAMES[k] for k in allowed) or "no files"
    return FileProblem(f"I couldn't read {shown(name)}: I don't read this type of file here (I read {kinds}).", "type")


def damaged(name: str) -> FileProblem:
    return FileProblem(f"I couldn't read {shown(name)}: it is damaged.", "damaged")


def bomb(name: str) -> FileProblem:
    return FileProblem(f"I couldn't read {shown(name)}: it unpacks to far more than its size "
                       "(it looks like a zip or image bomb), so I left it alone.", "bomb")


def too_slow(name: str) -> FileProblem:
    return FileProblem(f"I couldn't read {shown(name)}: reading it took too long.", "timeout")


def no_text(name: str) -> FileProblem:
    return FileProblem(f"I couldn't read {shown(name)}: it has no text I can read (a scanned document?).", "no_text")


def refused(name: str, platform: str) -> FileProblem:
    return FileProblem(f"I couldn't download {shown(name)}: {platform} did not let me "
                       "(the bot may lack the permission to read files).", "refused")


def gone(name: str) -> FileProblem:
    return FileProblem(f"I couldn't download {shown(name)}: it is no longer available.", "gone")


def unreachable(name: str) -> FileProblem:
    return FileProblem(f"I couldn't download {shown(name)}: the download failed.", "download_failed")


def foreign_host(name: str, platform: str) -> FileProblem:
    return FileProblem(f"I couldn't download {shown(name)}: it is not on {platform}'s own file host.", "foreign_host")
