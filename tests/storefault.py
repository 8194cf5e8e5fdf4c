"""A store that refuses to take new rows, as on a full disk: a trigger added from outside the bridge.

SQLite runs the trigger inside the bridge's own statement, so the real store code fails the real
way (an exception out of the write) and recovers the moment the trigger is dropped; nothing in
the bridge is replaced.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

TRIGGER = "test_store_refuses"


def _run(db: Path, sql: str) -> None:
    with sqlite3.connect(db, timeout=30) as conn:
        conn.execute(sql)


async def refuse_inserts(db: Path, table: str) -> None:
    """From now on every INSERT into ``table`` fails ("disk full"). In a thread: the bridge shares the
    test's loop and may have to finish a transaction before the schema can change."""
    await asyncio.to_thread(_run, db, f"CREATE TRIGGER {TRIGGER}_{table} BEFORE INSERT ON {table} "
                                      "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")


async def accept_inserts(db: Path, table: str) -> None:
    """The store takes rows again."""
    await asyncio.to_thread(_run, db, f"DROP TRIGGER IF EXISTS {TRIGGER}_{table}")
