"""What building one LLM request costs in a long session: the SQLite history query plus offline
token counting and fitting into ``llm.context_tokens``.

Run: ``python -m bench.bench_history [--messages 5000] [--budget 8000] [--repeat 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bridge.store import Store
from bridge.tokens import PER_MESSAGE, Turn, fit_history
from bridge.types import Author, ThreadRef

THREAD = ThreadRef("github", "", "octo-org/octo-repo", "1")


async def main(messages: int, budget: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(str(Path(tmp) / "bench.db"))
        t0 = time.perf_counter()
        last = 0
        for i in range(messages // 2):
            accepted = await store.accept(event_id=f"e{i}", session_key=THREAD.key, persona="assistant",
                                          thread=THREAD, author=Author("u", "ann"),
                                          content=f"Question {i}: " + "how does borrowing work " * 8)
            assert accepted is not None
            session, last = accepted
            await store.answer(last, session.id, f"Answer {i}: " + "ownership moves values; " * 20)
        fill = time.perf_counter() - t0
        timings = []
        kept = 0
        for _ in range(repeat):
            t = time.perf_counter()
            history = await store.history(session.id, last, limit=budget // (PER_MESSAGE + 1) + 1)
            turns = fit_history("You are a helpful assistant.", [Turn(m.role, m.content) for m in history],
                                budget, "gpt-4o-mini")
            timings.append(time.perf_counter() - t)
            kept = len(turns)
        await store.close()
    print(f"session of {messages} messages stored in {fill:.2f} s ({messages / fill:.0f} msgs/s, "
          "each user message + answer in its own transaction)")
    print(f"build one request (budget {budget} tokens, {kept} turns kept): "
          f"median {statistics.median(timings) * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--budget", type=int, default=8000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.budget, args.repeat))
