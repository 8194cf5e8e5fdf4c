"""Splitting a long reply into messages a platform accepts, without breaking what it renders.

Cuts fall between paragraphs first, then between lines, then between words; a code block that
must be cut is closed at the end of one message and reopened (same language) in the next, so every
message renders on its own. Nothing is dropped: joining the parts gives back the text, apart from
the separators at cuts and the added fences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^\s*(```+|~~~+)")


@dataclass(frozen=True, slots=True)
class _Block:
    sep: str         # the blank-line/newline text that preceded it in the original
    text: str
    fence: str | None  # the opening fence line, for code blocks


def _blocks(text: str) -> list[_Block]:
    """Paragraphs and whole fenced code blocks, each with the separator before it."""
    blocks: list[_Block] = []
    lines = text.split("\n")
    i, pending_sep = 0, ""
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            pending_sep += "\n"
            i += 1
            continue
        sep = "\n" + pending_sep if blocks else pending_sep
        pending_sep = ""
        m = _FENCE.match(line)
        if m:
            marker = m.group(1)
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(marker):
                j += 1
            end = min(j, len(lines) - 1)
            blocks.append(_Block(sep, "\n".join(lines[i:end + 1]), line))
            if j >= len(lines):  # an unclosed fence runs to the end, as renderers do
                break
            i = end + 1
            continue
        j = i
        while j < len(lines) and lines[j].strip() and not _FENCE.match(lines[j]):
            j += 1
        blocks.append(_Block(sep, "\n".join(lines[i:j]), None))
        i = j
    return blocks


def _hard_split(text: str, limit: int) -> list[str]:
    """Cut one over-long line at spaces where possible, else anywhere."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind(" ", 0, limit + 1)
        if cut <= limit // 2:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip(" ")
    parts.append(text)
    return parts


def _split_lines(lines: list[str], limit: int) -> list[str]:
    out: list[str] = []
    current = ""
    for line in lines:
        for piece in _hard_split(line, limit) if len(line) > limit else [line]:
            candidate = f"{current}\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                out.append(current)
                current = piece
    if current:
        out.append(current)
    return out


def _split_block(block: _Block, limit: int) -> list[str]:
    if block.fence is None:
        return _split_lines(block.text.split("\n"), limit)
    lines = block.text.split("\n")
    opener = lines[0]
    closer = _FENCE.match(opener).group(1)  # type: ignore[union-attr]
    has_closer = len(lines) > 1 and lines[-1].strip().startswith(closer)
    body = lines[1:-1] if has_closer else lines[1:]
    room = limit - len(opener) - len(closer) - 2
    if room < 20:  # a pathological limit: give up on fences rather than loop
        return _split_lines(lines, limit)
    return [f"{opener}\n{piece}\n{closer}" for piece in _split_lines(body, room)]


def split_message(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters (see module docstring)."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for block in _blocks(text):
        candidate = current + block.sep + block.text if current else block.text
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        if len(block.text) <= limit:
            current = block.text
        else:
            *done, current = _split_block(block, limit)
            parts.extend(done)
    if current:
        parts.append(current)
    return [p for p in parts if p.strip()] or [text[:limit]]
