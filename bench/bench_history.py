"""What building one LLM request costs as a session grows: the history query (newest first, a page
at a time, stopping at the token budget), the stored token counts, and the request itself.

Turn after turn in one session (2,000-token budget), it prints the time to build the request and
the prompt tokens it carries, at turns 1–10 and around turns 100, 500 and 5,000: flat means the
cost depends on the budget, not on how long the conversation has run.

Run: ``python -m bench.bench_history [--turns 5000] [--budget 2000] [--repeat 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bridge.config import parse_config
from bridge.conversation.responder import Responder
from bridge.llm.client import LLMClient
from bridge.llm.tokens import count_tokens, count_tokens_async
from bridge.metrics import Metrics
from bridge.personas import load_personas
from bridge.store.store import Store
from bridge.types import Author, ThreadRef

ROOT = Path(__file__).resolve().parent.parent
THREAD = ThreadRef("github", "", "octo-org/octo-repo", "1")


async def main(turns: int, budget: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "prompts").symlink_to(ROOT / "prompts")
        config = parse_config(f"llm: {{base_url: 'http://127.0.0.1:9/v1', context_tokens: {budget}}}",
                              base_dir=Path(tmp), env={})
        store = await Store.open(str(Path(tmp) / "bench.db"))
        metrics = Metrics()
        llm = LLMClient(config.llm, metrics)
        personas = load_personas(config.personas_dir)
        responder = Responder(config, store, llm, personas, {}, metrics)
        persona = personas["assistant"]
        checkpoints = {1, 2, 5, 10, 100, 500, 1000, 5000, turns}
        fill_start = time.perf_counter()
        rows = []
        for turn in range(1, turns + 1):
            question = f"Question {turn}: how does borrowing work with iterators and closures? " * 2
            accepted = await store.accept(event_id=f"e{turn}", session_key=THREAD.key, persona="assistant",
                                          thread=THREAD, author=Author("u", "ann"), content=question,
                                          tokens=await count_tokens_async(question, "gpt-4o-mini"))
            assert accepted is not None
            session, mid = accepted
            if turn in checkpoints:
                msg = await store.message(mid)
                assert msg is not None
                timings = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    request = await responder._request(session, persona, msg, budget)
                    timings.append(time.perf_counter() - t)
                prompt = sum(count_tokens(m["content"]) + 4 for m in request.messages) + 3
                rows.append((turn, statistics.median(timings) * 1000, max(timings) * 1000,
                             len(request.messages), prompt))
            answer = f"Answer {turn}: ownership moves values; borrows lend them for a while. " * 3
            await store.save_final(mid, answer, count_tokens(answer))
            await store.delivered(mid)
        fill = time.perf_counter() - fill_start
        await llm.close()
        await store.close()
    print(f"{turns} turns stored in {fill:.1f} s ({turns / fill:.0f} turns/s, each question and answer in "
          "its own transactions)")
    print(f"\n| turn | build request: median (ms) | max (ms) | messages sent | prompt tokens (budget {budget}) |")
    print("|---|---|---|---|---|")
    for turn, median, worst, n, prompt in rows:
        print(f"| {turn} | {median:.2f} | {worst:.2f} | {n} | {prompt} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.budget, args.repeat))
