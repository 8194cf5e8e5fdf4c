"""What kind of file this is: from its first bytes first, then its name and declared type.

The bytes decide where they can (a PDF says ``%PDF``, a PNG its signature), so a file named
``notes.txt`` that is really a zip is not read as text, and ``scan.pdf`` that is an image is an image.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from bridge.attachments.config import Kind

_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
TEXT_SUFFIXES = frozenset({
    ".txt", ".md", ".markdown", ".rst", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini",
    ".cfg", ".xml", ".html", ".htm", ".log", ".py", ".rs", ".go", ".js", ".ts", ".tsx", ".jsx", ".java", ".c",
    ".h", ".cpp", ".hpp", ".cs", ".rb", ".php", ".sh", ".sql", ".kt", ".swift", ".scala", ".lua", ".r", ".tex",
    ".srt", ".vtt", ".diff", ".patch", ".env.example", ".conf",
})
TEXT_MIMES = frozenset({"application/json", "application/xml", "application/x-yaml", "application/yaml",
                        "application/javascript", "application/sql", "application/x-sh"})
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def kind_of(data: bytes, name: str, mime: str) -> Kind | None:
    """``text``, ``pdf``, ``docx``, ``image``; None for anything else (a zip, an executable...)."""
    head = data[:16]
    suffix = PurePosixPath(name.lower()).suffix
    mime = mime.split(";")[0].strip().lower()
    if head.startswith(b"%PDF-") or (b"%PDF-" in data[:1024] and suffix == ".pdf"):
        return "pdf"
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    if head.startswith(b"PK\x03\x04"):
        return "docx" if suffix == ".docx" or mime == DOCX_MIME else None
    if suffix in TEXT_SUFFIXES or mime.startswith("text/") or mime in TEXT_MIMES:
        return "text" if b"\x00" not in data[:8192] or data[:2] in (b"\xff\xfe", b"\xfe\xff") else None
    if suffix in (".pdf", ".docx", ".png", ".jpg", ".jpeg", ".gif", ".webp"):
        return "pdf" if suffix == ".pdf" else "docx" if suffix == ".docx" else "image"  # the reader says damaged
    return None
