"""A store that refuses to take new rows, as on a full disk: a trigger added from outside the bridge.

SQLite runs the trigger inside the bridge's own statement, so the real store code fails the real
way (an exception out of the write) and recovers the moment the trigger is dropped; nothing in
the bridge is replaced.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

TRIGGER = "test_store_refuses"


def refuse_inserts(db: Path, table: str) -> None:
    """From now on every INSERT into ``table`` fails ("disk full")."""
    with sqlite3.connect(db) as conn:
        conn.execute(f"CREATE TRIGGER {TRIGGER}_{table} BEFORE INSERT ON {table} "
                     "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")


def accept_inserts(db: Path, table: str) -> None:
    """The store takes rows again."""
    with sqlite3.connect(db) as conn:
        conn.execute(f"DROP TRIGGER IF EXISTS {TRIGGER}_{table}")
