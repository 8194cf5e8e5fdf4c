"""What counting tokens costs on adversarial text: 65,536 characters of one word, CJK, emoji,
random unicode and other shapes that make a BPE slow (a pure-Python BPE is quadratic in word length).

Run: ``python -m bench.bench_tokens [--chars 65536] [--repeat 5]``. Prints, per case, the token
count and the worst time of ``--repeat`` runs of :func:`bridge.llm.tokens.count_tokens`.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from bridge.llm.tokens import count_tokens, warm_up


def cases(n: int) -> dict[str, str]:
    rnd = random.Random(9)

    def chars(pick: Callable[[], int]) -> str:
        out: list[str] = []
        while len(out) < n:
            c = pick()
            if not 0xD800 <= c <= 0xDFFF:
                out.append(chr(c))
        return "".join(out)

    english = "The quick brown fox jumps over the lazy dog; it's 42 times faster. "
    return {
        "one word (a…a)": "a" * n,
        "one word (random letters)": chars(lambda: rnd.randint(0x61, 0x7A)),
        "CJK": chars(lambda: rnd.randint(0x4E00, 0x9FFF)),
        "emoji": chars(lambda: rnd.randint(0x1F300, 0x1FAFF)),
        "random unicode": chars(lambda: rnd.randint(1, 0x10FFFF)),
        "random BMP": chars(lambda: rnd.randint(1, 0xFFFF)),
        "combining marks": ("a\u0301\u0302" * n)[:n],
        "mixed case aA": ("aA" * n)[:n],
        "digits": chars(lambda: rnd.randint(0x30, 0x39)),
        "spaces then x": " " * (n - 1) + "x",
        "newlines and spaces": (" \n" * n)[:n],
        "punctuation": chars(lambda: rnd.choice(b"!\"#$%&()*+,-./:;<=>?@[]^_`{|}~")),
        "contractions 's": ("'s" * n)[:n],
        "english": (english * (n // len(english) + 1))[:n],
    }


def main(n: int, repeat: int) -> None:
    t = time.perf_counter()
    warm_up("gpt-4o-mini", "gpt-4")
    print(f"loading both vocabularies: {(time.perf_counter() - t) * 1000:.0f} ms (once, in a thread at start)")
    for model in ("gpt-4o-mini", "gpt-4"):
        print(f"\n{model}: {n:,} characters per case, worst of {repeat}")
        for name, text in cases(n).items():
            worst, tokens = 0.0, 0
            for _ in range(repeat):
                t = time.perf_counter()
                tokens = count_tokens(text, model)
                worst = max(worst, time.perf_counter() - t)
            print(f"  {name:28s} {tokens:>8,} tokens  {worst * 1000:7.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chars", type=int, default=65_536)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    main(args.chars, args.repeat)
