"""What the two per-message and hourly store reads cost at a year of traffic: the budget check that
runs before every answer (``limits:``), and the hourly pruning of old dedupe ids.

A SQLite store is filled (raw inserts, then the bridge's own migrations) with ``--events`` dedupe ids
spread over the two weeks the bridge keeps them, and ``--per-day`` usage rows a day for ``--days``
days from ``--users`` people, in time order (as they are written). Then, on the event loop as the bridge runs them:

- ``first_exceeded`` with only ``total_tokens_per_day`` set, and with all five limits set;
- ``forget_events_before`` as the bridge calls it every hour: each call one more hour of ids has
  expired (the cutoff moves on by an hour), 24 times; with ``--batch N`` (newer code, which prunes
  N ids per transaction and lets the loop go between them) first one transaction at a time.

It prints the median and the 99th percentile in milliseconds, wall and CPU. The same script runs on older code
(it uses only ``Store.open``, ``first_exceeded`` and ``forget_events_before``), which is how the
before/after numbers in docs/benchmarks.md were made.

Run: ``python -m bench.bench_budgets [--events 750000] [--per-day 100000] [--days 3] [--repeat 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import bridge.store.store as store_module
from bridge.policy.budgets import Scope, first_exceeded
from bridge.policy.config import Limits
from bridge.store.store import Store

DAY_S = 86400
EVENT_MEMORY_S = 14 * DAY_S
PRE_TOTALS = 4  # the migrations before the running totals: rows are seeded there, as in an upgraded database


def seed(path: Path, *, events: int, per_day: int, days: int, users: int, now: float) -> None:
    """Raw rows, as a busy bridge would have written them (faster than going through the store)."""
    rng = random.Random(1)
    with sqlite3.connect(path) as db:
        ids = ((rng.randbytes(12).hex(), now - EVENT_MEMORY_S * (1 - i / events)) for i in range(events))
        db.executemany("INSERT INTO events (event_id, seen_at) VALUES (?, ?)", ids)  # random ids, in time order
        today = now - now % DAY_S
        span = now - today  # every day filled up to the same time of day: "today so far" is as full
        times = (today - d * DAY_S + span * i / per_day for d in range(days - 1, -1, -1) for i in range(per_day))
        rows = ((n, at, "slack", f"C{u % 50}", f"slack:s{u}", f"U{u}", "assistant", "fake", 600, 200)
                for n, (at, u) in enumerate((at, rng.randrange(users)) for at in times))
        db.executemany("INSERT INTO usage (message_id, created_at, platform, channel, session_key, user_id, persona, "
                       "model, prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


async def timed(repeat: int, call: Callable[[int], Awaitable[object]],
                between: Callable[[], Awaitable[None]] | None = None) -> tuple[float, float, float, float]:
    """Median and p99 of one call, in wall time and in this thread's CPU time (ms). The SQLite store
    runs on the event loop, so a call's time is how long it holds the loop; on a loaded machine the
    wall time also counts the OS's preemptions, which the CPU time leaves out."""
    wall: list[float] = []
    cpu: list[float] = []
    for i in range(repeat):
        started, started_cpu = time.perf_counter(), time.thread_time()
        await call(i)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        if between is not None:
            await between()
    return percentile(wall, 0.5), percentile(wall, 0.99), percentile(cpu, 0.5), percentile(cpu, 0.99)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def show(name: str, result: tuple[float, float, float, float]) -> None:
    print(f"{name:<42} wall median {result[0]:8.3f} ms, p99 {result[1]:8.3f} ms | "
          f"CPU median {result[2]:8.3f} ms, p99 {result[3]:8.3f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=750_000)
    parser.add_argument("--per-day", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--batch", type=int, default=None, help="ids per prune transaction (newer code only)")
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bridge.db"
        every = store_module.MIGRATIONS
        store_module.MIGRATIONS = every[:PRE_TOTALS]
        await (await Store.open(str(path))).close()
        store_module.MIGRATIONS = every
        started = time.perf_counter()
        seed(path, events=args.events, per_day=args.per_day, days=args.days, users=args.users, now=now)
        store = await Store.open(str(path))  # the remaining migrations run on the filled database
        print(f"seeded {args.events:,} event ids and {args.per_day * args.days:,} usage rows "
              f"in {time.perf_counter() - started:.1f} s (schema version {len(every)})")
        try:
            def scope(i: int) -> Scope:
                u = i % args.users
                return Scope("slack", f"U{u}", f"C{u % 50}", f"slack:s{u}")

            total_only = Limits(total_tokens_per_day=10**12)
            every_limit = Limits(user_tokens_per_day=10**9, user_messages_per_hour=10**6,
                                 session_tokens_per_day=10**9, channel_tokens_per_day=10**10,
                                 total_tokens_per_day=10**12)
            for name, limits in (("budget check, total_tokens_per_day only", total_only),
                                 ("budget check, all five limits", every_limit)):
                show(name, await timed(args.repeat, lambda i, lim=limits: first_exceeded(
                    store, lim, scope(i), time.time())))
            oldest = now - EVENT_MEMORY_S
            step = EVENT_MEMORY_S / args.events  # the ids are evenly spread: one per step
            if args.batch is not None:  # one transaction of the batched prune: what holds the loop at a time
                show(f"prune, one transaction ({args.batch} ids)", await timed(
                    args.repeat, lambda i: store.forget_events_before(
                        oldest + step * args.batch * (i + 1), batch=args.batch)))
                oldest += step * args.batch * args.repeat
            show("prune, one hour of ids (the hourly call)", await timed(
                24, lambda i: store.forget_events_before(oldest + 3600 * (i + 1)),
                store.checkpoint))  # the bridge checkpoints every second, off the loop (not timed)
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
