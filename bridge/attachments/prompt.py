"""How shared files appear in the prompt: labelled text blocks, image parts, and notes to the model.

A file's text is part of the user turn it came with, between ``<file name="...">`` lines, so the
model can tell the user's words from the document (and a file cannot pose as the user's words).
An image becomes an ``image_url`` part for a persona with ``vision: true``; otherwise, or when the
context budget has no room left for it (the oldest images are left out first), the model is told
in words that an image was shared, by name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.llm.tokens import count_tokens, cut_to_tokens
from bridge.store.attachments import StoredFile

IMAGE_TOKENS = 800        # what one image is counted as (a high-detail 1024 px image costs 765 with OpenAI)
FILE_WRAPPER_TOKENS = 48  # the <file> lines and a cut note around a file's text (~40 tokens)
FILE_ONLY = "(No words, only the attached file: the question is about it.)"
Content = str | list[dict[str, Any]]


def _label(name: str) -> str:
    return json.dumps("".join(ch if ch.isprintable() else " " for ch in name)[:120], ensure_ascii=False)


def file_block(f: StoredFile, *, image: str = "") -> str:
    """What the model reads about one file. ``image``: why an image is not shown, if it is not."""
    name = _label(f.name)
    if f.state == "read" and f.kind != "image":
        note = (f"\n[The file is cut here: only its first {f.tokens - FILE_WRAPPER_TOKENS} tokens are shown; "
                "the rest was not read.]") if f.cut else ""
        return f"<file name={name} type={f.kind}>\n{f.text}{note}\n</file>"
    if f.state == "read":
        return f"[Image shared: {name}{image}]"
    return f"[File shared: {name}; it could not be read]"


def images_kept(files: Mapping[int, Sequence[StoredFile]], newest_first: Sequence[int], room: int) -> set[int]:
    """Which images (file ids) fit in ``room`` tokens, newest message first: the oldest are left out."""
    kept: set[int] = set()
    for message_id in newest_first:
        for f in files.get(message_id, ()):
            if f.state == "read" and f.image:
                if room < IMAGE_TOKENS:
                    return kept
                kept.add(f.id)
                room -= IMAGE_TOKENS
    return kept


def user_content(text: str, files: Sequence[StoredFile], *, vision: bool, kept: set[int]) -> Content:
    """One user turn: its words, then each file; a list of parts when an image goes with it."""
    if not files:
        return text
    blocks = [text or FILE_ONLY]
    parts: list[dict[str, Any]] = []
    for f in files:
        if f.state == "read" and f.image and vision and f.id in kept:
            blocks.append(file_block(f))
            parts.append({"type": "image_url", "image_url": {"url": f.image}})
        elif f.state == "read" and f.image:
            why = "" if not vision else "; left out of this request to save room"
            why = why or "; this assistant cannot see images, only that one was shared"
            blocks.append(file_block(f, image=why))
        else:
            blocks.append(file_block(f))
    body = "\n\n".join(blocks)
    return [{"type": "text", "text": body}, *parts] if parts else body


async def fit_files(files: Sequence[StoredFile], room: int, model: str) -> list[StoredFile]:
    """The files of the current turn cut to share ``room`` tokens (the context budget is smaller than
    the files, e.g. a 2,048-token model): each keeps its beginning, and says it was cut."""
    texts = [f for f in files if f.state == "read" and not f.image and f.tokens > FILE_WRAPPER_TOKENS]
    share = max(room, 0) // max(len(texts), 1) - FILE_WRAPPER_TOKENS
    out: list[StoredFile] = []
    for f in files:
        if f in texts and f.tokens > share + FILE_WRAPPER_TOKENS:
            text, tokens, _ = await asyncio.to_thread(cut_to_tokens, f.text, max(share, 0), model)
            f = dataclasses.replace(f, text=text, tokens=tokens + FILE_WRAPPER_TOKENS, cut=True)
        out.append(f)
    return out


def content_tokens(content: Any, model: str) -> int:
    """The tokens of a message's content, whether text or a list of parts (an image counts IMAGE_TOKENS)."""
    if isinstance(content, str):
        return count_tokens(content, model)
    total = 0
    for part in content or ():
        if isinstance(part, dict) and part.get("type") == "text":
            total += count_tokens(str(part.get("text", "")), model)
        elif isinstance(part, dict):
            total += IMAGE_TOKENS
    return total
