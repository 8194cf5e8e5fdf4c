"""Splitting replies for platform limits (table-driven: the translator is pure)."""

from __future__ import annotations

import re

import pytest

from bridge.llm.chunking import split_message

CODE = "```rust\n" + "\n".join(f"let x{i} = {i};" for i in range(300)) + "\n```"


def fences_balanced(part: str) -> bool:
    return len(re.findall(r"^```", part, flags=re.MULTILINE)) % 2 == 0


@pytest.mark.parametrize(("text", "limit"), [
    ("short", 2000),
    ("\n\n".join(f"Paragraph {i}. " + "word " * 80 for i in range(30)), 2000),
    ("Intro.\n\n" + CODE + "\n\nOutro.", 2000),
    ("Intro.\n\n" + CODE + "\n\nOutro.", 500),
    ("x" * 5000, 2000),
    ("a " * 3000, 1000),
    ("line\n" * 2000, 3000),
])
def test_parts_fit_and_render(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert all(fences_balanced(p) for p in parts)
    squeeze = re.compile(r"\s+|```rust|```")
    assert squeeze.sub("", "".join(parts)) == squeeze.sub("", text)  # nothing lost


def test_paragraph_boundaries_are_preferred() -> None:
    paragraphs = [f"P{i} " + "w " * 100 for i in range(10)]
    parts = split_message("\n\n".join(paragraphs), 450)
    assert all(p.startswith("P") for p in parts)
    assert "\n\n".join(parts) == "\n\n".join(paragraphs)


def test_code_block_reopened_with_its_language() -> None:
    parts = split_message("Look:\n\n" + CODE, 1000)
    assert parts[0] == "Look:"
    assert all(p.startswith("```rust\n") and p.endswith("\n```") for p in parts[1:])
