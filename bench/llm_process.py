"""The fake LLM in a process of its own, so a benchmark's own event loop (senders, fake platform) is
not also the one streaming hundreds of answers: ``python -m bench.llm_process TEXT CHUNK DELAY``
prints the base URL, then serves until stdin closes. An optional fourth argument: seconds before each
answer starts."""

from __future__ import annotations

import asyncio
import sys

from tests.fakes.openai_server import FakeOpenAI


async def main(text: str, chunk: int, delay: float, latency: float) -> None:
    llm = await FakeOpenAI().start()
    llm.reply = lambda _req: text
    llm.chunk_size, llm.chunk_delay, llm.latency = chunk, delay, latency
    print(llm.url, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent goes
    await llm.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]),
                     float(sys.argv[4]) if len(sys.argv) > 4 else 0.0))
