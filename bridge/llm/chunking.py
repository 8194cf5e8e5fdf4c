"""Splitting a long reply into messages a platform accepts, without breaking what it renders.

Cuts fall between paragraphs first, then between lines, then between words; a code block that
must be cut is closed at the end of one message and reopened (same language) in the next, and an
unclosed one is closed, so every message renders on its own. Nothing is dropped: joining the parts
gives back the text, apart from the separators at cuts and the added fences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# One fence model for every platform (CommonMark's): an opening fence is three or more backticks or
# tildes, optionally followed by an info string (```` ```rust ````); only a *bare* fence of the same
# character, at least as long, closes it. Anything else inside a code block is code.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def opening_fence(line: str) -> str | None:
    """The fence marker (e.g. ```` ``` ````) if ``line`` opens a code block."""
    m = _FENCE.match(line)
    if m is None or (m.group(1)[0] == "`" and "`" in m.group(2)):  # backticks may not follow ```
        return None
    return m.group(1)


def closes_fence(line: str, marker: str) -> bool:
    """Whether ``line`` closes a block opened with ``marker``: a bare fence, same char, no shorter."""
    m = _FENCE.match(line)
    return (m is not None and m.group(1)[0] == marker[0] and len(m.group(1)) >= len(marker)
            and not m.group(2).strip())


def open_fence_at_end(text: str) -> str | None:
    """The marker of a code block still open at the end of ``text`` (a reply cut mid-stream), if any."""
    marker: str | None = None
    for line in text.split("\n"):
        if marker is None:
            marker = opening_fence(line)
        elif closes_fence(line, marker):
            marker = None
    return marker


@dataclass(frozen=True, slots=True)
class _Block:
    sep: str         # the blank-line/newline text that preceded it in the original
    text: str
    fence: str | None  # the fence marker, for code blocks


def _blocks(text: str) -> list[_Block]:
    """Paragraphs and whole fenced code blocks, each with the separator before it.

    An unclosed code block runs to the end (as renderers do) and is closed in the output, so every
    part renders on its own.
    """
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
        marker = opening_fence(line)
        if marker is not None:
            j = i + 1
            while j < len(lines) and not closes_fence(lines[j], marker):
                j += 1
            if j < len(lines):
                blocks.append(_Block(sep, "\n".join(lines[i:j + 1]), marker))
            else:
                body = "\n".join(lines[i:]).rstrip()
                blocks.append(_Block(sep, f"{body}\n{marker}", marker))
            i = j + 1
            continue
        j = i
        while j < len(lines) and lines[j].strip() and opening_fence(lines[j]) is None:
            j += 1
        blocks.append(_Block(sep, "\n".join(lines[i:j]), None))
        i = j
    return blocks


def _hard_split(text: str, limit: int) -> list[str]:
    """Cut one over-long line at spaces where possible, else anywhere."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind(" ", 0, limit + 1)
        while cut > limit // 2 and opening_fence(text[cut:].lstrip(" ")) is not None:
            cut = text.rfind(" ", 0, cut)  # a cut must not start a line with a fence
        if cut <= limit // 2:
            cut = limit
            while cut > 1 and opening_fence(text[cut:].lstrip(" ")) is not None:
                cut -= 1
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
    opener, closer = lines[0], block.fence
    body = lines[1:-1]  # _blocks always ends a code block with its closing fence
    room = limit - len(opener) - len(closer) - 2
    if room < 20:  # a very long info string: reopen with a bare fence instead
        opener = closer
        room = limit - 2 * len(closer) - 2
    if room < 20:  # a pathological limit: give up on fences rather than loop
        return _split_lines(lines, limit)
    return [f"{opener}\n{piece}\n{closer}" for piece in _split_lines(body, room)]


def split_message(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters (see module docstring)."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    unclosed = open_fence_at_end(text)
    if unclosed is None and len(text) <= limit:
        return [text]
    if unclosed is not None and len(text) + len(unclosed) + 1 <= limit:
        return [f"{text.rstrip()}\n{unclosed}"]
    blocks = _blocks(text)
    parts: list[str] = []
    current = ""
    for block in blocks:
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
