"""Streamed replies: the first text at once, then at most one edit per interval, always the final text;
and splitting long replies with one fence model (property-tested with hypothesis)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.llm.chunking import closes_fence, opening_fence, split_message
from bridge.llm.streaming import render_stream


class Recorder:
    """A platform's post/edit pair that records what happened, and when."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, str]] = []
        self.edits: list[tuple[float, str, str]] = []
        self.text: dict[str, str] = {}

    async def post(self, text: str) -> str:
        mid = f"m{len(self.posts)}"
        self.posts.append((time.monotonic(), text))
        self.text[mid] = text
        return mid

    async def edit(self, mid: str, text: str) -> None:
        self.edits.append((time.monotonic(), mid, text))
        self.text[mid] = text


async def tokens(n: int, every: float) -> AsyncIterator[str]:
    text = ""
    for i in range(n):
        await asyncio.sleep(every)  # the model's pace, not a test wait
        text += f"word{i} "
        yield text


async def test_edits_are_throttled_to_the_interval_and_the_final_text_is_shown() -> None:
    rec = Recorder()
    started = time.monotonic()
    await render_stream(tokens(100, 0.01), post=rec.post, edit=rec.edit, limit=2000, interval=0.25)
    elapsed = time.monotonic() - started
    final = "".join(f"word{i} " for i in range(100))
    assert rec.posts[0][0] - started < 0.1, "the first text is shown at once"
    assert rec.text["m0"] == final, "the final text is always written"
    # ~1 s of streaming at one edit per 0.25 s: a handful of edits, not one per token.
    assert len(rec.edits) <= elapsed / 0.25 + 2
    gaps = [b[0] - a[0] for a, b in zip(rec.edits, rec.edits[1:], strict=False)]
    assert all(g >= 0.2 for g in gaps[:-1]), gaps  # only the final render may follow sooner


async def test_a_slow_platform_never_holds_the_model_back() -> None:
    rec = Recorder()

    async def slow_edit(mid: str, text: str) -> None:
        await asyncio.sleep(0.3)  # a rate-limited edit
        await rec.edit(mid, text)

    consumed: list[str] = []

    async def model() -> AsyncIterator[str]:
        async for text in tokens(50, 0.005):
            consumed.append(text)
            yield text

    await render_stream(model(), post=rec.post, edit=slow_edit, limit=2000, interval=0.0)
    assert rec.text["m0"] == consumed[-1]
    assert len(rec.edits) < 10, "snapshots that arrived during an edit are skipped, not queued"


async def test_a_restarted_answer_edits_what_an_earlier_attempt_posted() -> None:
    rec = Recorder()
    recorded: list[list[str]] = []

    async def record(ids: list[str]) -> None:
        recorded.append(ids)

    async def once(text: str) -> AsyncIterator[str]:
        yield text

    await rec.post("half an ans")  # m0, from the attempt a crash interrupted
    ids = await render_stream(once("a whole answer"), post=rec.post, edit=rec.edit, limit=2000, interval=1,
                              placeholder="Thinking…", posted=["m0"], record=record)
    assert ids == ["m0"]
    assert rec.text == {"m0": "a whole answer"}
    assert len(rec.posts) == 1  # no placeholder...
    assert recorded == []       # ...nothing new posted


# ----------------------------------------------------------------------------------- chunking


def fences_balanced(part: str) -> bool:
    """Every code block a part opens, it closes (the same fence model as the splitter)."""
    marker: str | None = None
    for line in part.split("\n"):
        if marker is None:
            marker = opening_fence(line)
        elif closes_fence(line, marker):
            marker = None
    return marker is None


def visible(text: str) -> str:
    """Text without fence lines or whitespace: what must survive splitting."""
    kept = (line for line in text.split("\n") if not re.match(r"^ {0,3}(`{3,}|~{3,})", line))
    return re.sub(r"\s+", "", "\n".join(kept))


_words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)
_line = st.one_of(
    st.lists(_words, min_size=1, max_size=15).map(" ".join),
    st.lists(_words, min_size=1, max_size=5).map(lambda ws: "- " + " ".join(ws)),          # list items
    st.lists(_words, min_size=1, max_size=5).map(lambda ws: "    - " + " ".join(ws)),      # nested ones
    st.sampled_from(["```", "```rust", "~~~", "````", "``` python", "~~~~ text", "", "", "😀🎉 ÉÀ 漢字かな"]),
    st.integers(200, 3000).map(lambda n: "x" * n),                                          # very long lines
    st.integers(50, 800).map(lambda n: "漢" * n),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_line, max_size=60).map("\n".join), st.sampled_from([120, 500, 2000, 3000]))
def test_split_parts_fit_balance_their_fences_and_lose_nothing(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert all(fences_balanced(p) for p in parts), parts
    assert visible("\n".join(parts)) == visible(text)


def test_an_info_string_fence_inside_an_open_block_does_not_close_it() -> None:
    text = "```\nplain code\n```rust\nstill the same block\n```\n\nafter " + "w " * 400
    parts = split_message(text, 200)
    assert parts[0].startswith("```\nplain code\n```rust\nstill the same block\n```")
    assert all(fences_balanced(p) for p in parts)
