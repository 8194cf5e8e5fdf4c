"""``bridge migrate --to postgresql://…``: copy a SQLite store to PostgreSQL, once, before going multi-replica.

Both sides are brought to the same schema version by the same numbered migrations first; then every
table the store owns (sessions, threads, messages, replies, dedupe ids, and any other table both
sides have — a ``usage`` table, say) is copied in one transaction, column by column as the target
names them, with ids kept (threads, replies and history refer to them) and identity counters moved
past them. The target must be empty: merging two stores is not a copy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import Any

import asyncpg

from bridge.config import Config, ConfigError
from bridge.store.postgres import PgUnavailable, redact, url_problem
from bridge.store.sqlite import SqliteDatabase
from bridge.store.store import Store

log = logging.getLogger(__name__)

FIRST = ("sessions", "threads", "messages", "replies", "events")  # parents before children
SKIP_COLUMNS = {"claimed_by", "lease_until"}  # leases belong to running replicas, not to the data
_FLOATS = {"double precision", "real", "numeric"}
_INTS = {"bigint", "integer", "smallint"}


class MigrateError(RuntimeError):
    """Why the copy did not happen; never contains the password."""


async def _sqlite_tables(db: SqliteDatabase) -> dict[str, list[str]]:
    async with db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'") as c:
        names = [str(r[0]) for r in await c.fetchall()]
    out = {}
    for name in names:
        async with db.conn.execute(f'PRAGMA table_info("{name}")') as c:
            out[name] = [str(r[1]) for r in await c.fetchall()]
    return out


async def _pg_tables(conn: asyncpg.Connection) -> dict[str, dict[str, str]]:
    rows = await conn.fetch("SELECT table_name, column_name, data_type FROM information_schema.columns "
                            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")
    out: dict[str, dict[str, str]] = {}
    for r in rows:
        out.setdefault(str(r[0]), {})[str(r[1])] = str(r[2])
    return out


def _convert(value: Any, pg_type: str) -> Any:
    if value is None:
        return None
    if pg_type in _FLOATS:
        return float(value)
    if pg_type in _INTS:
        return int(value)
    if pg_type in ("text", "character varying") and not isinstance(value, str):
        return str(value)
    return value


async def copy_store(sqlite_path: str, url: str) -> dict[str, int]:
    """Copy everything; returns rows copied per table."""
    source = await Store.open(sqlite_path)  # brings the file to the current schema
    await source.close()
    target = await Store.open_postgres(url)
    assert target.pg is not None
    try:
        db = await SqliteDatabase.connect(sqlite_path)
        try:
            async with target.pg.pool.acquire() as conn:
                src_tables = await _sqlite_tables(db)
                dst_tables = await _pg_tables(conn)
                common = [t for t in FIRST if t in src_tables and t in dst_tables]
                common += sorted(t for t in src_tables if t in dst_tables and t not in FIRST and t != "bridge_schema")
                if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sessions) OR EXISTS (SELECT 1 FROM events)"):
                    raise MigrateError(f"{redact(url)} already holds a bridge store: migrate into an empty database")
                counts: dict[str, int] = {}
                async with conn.transaction():
                    for table in common:
                        types = dst_tables[table]
                        columns = [c for c in src_tables[table] if c in types and c not in SKIP_COLUMNS]
                        quoted = ", ".join(f'"{c}"' for c in columns)
                        async with db.conn.execute(f'SELECT {quoted} FROM "{table}"') as cur:
                            rows = list(await cur.fetchall())
                        records = [tuple(_convert(v, types[c]) for v, c in zip(row, columns, strict=True))
                                   for row in rows]
                        if records:
                            await conn.copy_records_to_table(table, records=records, columns=columns)
                        if "id" in columns:  # identity counters continue after the copied ids
                            await conn.execute(
                                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"COALESCE((SELECT MAX(id) FROM \"{table}\"), 0) + 1, false) "
                                f"WHERE pg_get_serial_sequence('{table}', 'id') IS NOT NULL")
                        counts[table] = len(records)
                return counts
        finally:
            await db.close()
    finally:
        await target.close()


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def target_url(raw: str) -> str:
    """``${VAR}`` from the environment, so the password need not be typed on the command line."""
    def value(m: re.Match[str]) -> str:
        if m.group(1) not in os.environ:
            raise ConfigError("--to", [f"${{{m.group(1)}}} is not set"])
        return os.environ[m.group(1)]

    url = _VAR.sub(value, raw)
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("--to", ["bridge migrate copies to PostgreSQL: postgresql://USER:${PGPASSWORD}@HOST:PORT/DB"])
    problem = url_problem(url)
    if problem:
        raise ConfigError("--to", [problem])
    return url


def run_migrate(config: Config, raw_url: str) -> int:
    """``bridge migrate --to URL``: the CLI side (messages name the URL without its password)."""
    if config.storage.is_postgres:
        raise ConfigError(config.source, ["storage.url: already PostgreSQL; bridge migrate copies a SQLite store"])
    url = target_url(raw_url)
    try:
        counts = asyncio.run(copy_store(config.db_path, url))
    except (PgUnavailable, MigrateError) as exc:
        raise ConfigError("--to", [str(exc).replace("storage.url", "--to")]) from None
    print(f"copied {config.db_path} to {redact(url)}:")
    for table, n in counts.items():
        print(f"  {table:<10} {n:>7} rows")
    print("now set storage.url to that URL (password as ${VAR}) and start the replicas")
    return 0
