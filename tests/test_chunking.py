"""Splitting replies for platform limits (table-driven: the translator is pure)."""

from __future__ import annotations

import re

import pytest

from bridge.chunking import split_message
from bridge.tokens import Turn, count_tokens, fit_history

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


def test_history_keeps_newest_turns_and_the_current_message() -> None:
    turns = [Turn("user", f"old question {i} " + "blah " * 50) for i in range(10)]
    turns.append(Turn("user", "the question " + "huge " * 5000))
    kept = fit_history("system", turns, budget=1000, model="gpt-4o-mini")
    assert kept == [turns[-1]]  # over budget alone, yet never dropped
    small = [Turn("user", "a"), Turn("assistant", "b"), Turn("user", "c " * 100), Turn("assistant", "d"),
             Turn("user", "e")]
    kept = fit_history("sys", small, budget=count_tokens("c " * 100) + 30, model="gpt-4o-mini")
    assert kept == small[2:]
    kept = fit_history("sys", small, budget=25, model="gpt-4o-mini")
    assert kept[0].role == "user"
    assert kept[-1] == small[-1]
