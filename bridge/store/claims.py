"""Per-session leases in PostgreSQL: which replica answers which session, and until when.

A replica *claims* sessions that have pending messages and no live lease (``claimed_by`` empty or
``lease_until`` past), with ``FOR UPDATE SKIP LOCKED`` so replicas racing for the same work never
wait on each other and never both win. The holder renews its leases while it works and releases a
session when its queue is empty; a replica that dies stops renewing, and once ``lease_until``
passes another one claims the session and continues from the ``replies`` row. Times are the
database's clock (``clock_timestamp()``), so replicas on machines with skewed clocks agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from bridge.store.postgres import PgDatabase

CHANNEL = "bridge_pending"  # NOTIFY channel: payload a session id ('' = look for any work)
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::float8"
# Work a session may hold: messages waiting for an answer, and refusal notices stored but not yet delivered
# (a refused message is never 'pending': without the second half nobody refused would ever be told).
_WORK = ("(m.status = 'pending' OR (m.status = 'refused' AND EXISTS (SELECT 1 FROM replies r "
         "WHERE r.message_id = m.id AND r.state = 'delivering' AND r.final = 1)))")
_PENDING = f"EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id AND {_WORK})"


class Claims:
    """The lease SQL, for one replica (``me``)."""

    def __init__(self, pg: PgDatabase, me: str, lease_s: float) -> None:
        self._pool = pg.pool
        self.me = me
        self.lease_s = lease_s

    async def claim(self, only: Iterable[int] | None, limit: int, busy: Iterable[int] = ()) -> dict[int, int]:
        """Claim up to ``limit`` free sessions with pending work (only those in ``only``, when given),
        oldest pending work first. Our own leases without a lane (``busy`` are those with one) count as free.

        Returns session id → the new lease generation: the fencing token its work carries
        (:mod:`bridge.store.fencing`)."""
        ids = None if only is None else list(only)
        if limit <= 0 or ids == []:
            return {}
        rows = await self._pool.fetch(f"""
            UPDATE sessions SET claimed_by = $1, lease_until = {_NOW} + $2, lease_gen = lease_gen + 1
            WHERE id IN (
                SELECT s.id FROM sessions s
                WHERE (s.claimed_by IS NULL OR s.lease_until < {_NOW} OR s.claimed_by = $1)
                  AND NOT (s.id = ANY($5::bigint[]))
                  AND ($3::bigint[] IS NULL OR s.id = ANY($3::bigint[]))
                  AND {_PENDING}
                ORDER BY (SELECT MIN(m.id) FROM messages m WHERE m.session_id = s.id AND {_WORK})
                LIMIT $4
                FOR UPDATE SKIP LOCKED)
            RETURNING id, lease_gen""", self.me, self.lease_s, ids, limit, list(busy))
        return {int(r[0]): int(r[1]) for r in rows}

    async def renew(self, held: dict[int, int], timeout: float | None = None) -> set[int]:
        """Extend the leases still ours (session id → generation); returns them (a session missing from
        it was taken over). ``timeout`` bounds a renew that hangs (a half-open connection)."""
        if not held:
            return set()
        rows = await self._pool.fetch(
            f"UPDATE sessions SET lease_until = {_NOW} + $2 WHERE claimed_by = $1 AND id = ANY($3::bigint[]) "
            "AND (id, lease_gen) IN "
            "(SELECT * FROM unnest($3::bigint[], $4::bigint[])) RETURNING id",
            self.me, self.lease_s, list(held), list(held.values()), timeout=timeout)
        return {int(r[0]) for r in rows}

    async def release(self, session_id: int, *, force: bool = False, generation: int | None = None) -> bool:
        """Give a session back when nothing is pending in it (or anyway, ``force``); False when work is
        (still) waiting. With ``generation``, only the lease of that claim is given back."""
        row = await self._pool.fetchrow(
            f"UPDATE sessions s SET claimed_by = NULL, lease_until = NULL "
            f"WHERE s.id = $1 AND s.claimed_by = $2 AND ($3 OR NOT {_PENDING}) "
            "AND ($4::bigint IS NULL OR s.lease_gen = $4) RETURNING s.id",
            session_id, self.me, force, generation)
        return row is not None

    async def release_all(self) -> int:
        """Stopping: give every lease back at once, and tell the others (they need not wait for expiry)."""
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute("UPDATE sessions SET claimed_by = NULL, lease_until = NULL "
                                        "WHERE claimed_by = $1", self.me)
            await conn.execute(f"NOTIFY {CHANNEL}, ''")
        return int(status.rsplit(" ", 1)[1])

    async def next_pending(self, session_id: int, skip: Iterable[int]) -> int | None:
        """The oldest pending message (or undelivered refusal notice) of a session, leaving out those already
        tried in this claim."""
        row = await self._pool.fetchrow(
            f"SELECT id FROM messages m WHERE session_id = $1 AND {_WORK} AND NOT (id = ANY($2::bigint[])) "
            "ORDER BY id LIMIT 1", session_id, list(skip))
        return int(row[0]) if row else None

    async def has_pending(self, session_id: int) -> bool:
        return bool(await self._pool.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM messages m WHERE session_id = $1 AND {_WORK})", session_id))

    async def next_expiry_s(self) -> float | None:
        """Seconds until the next lease of another replica with pending work runs out (None: none held)."""
        value = await self._pool.fetchval(
            f"SELECT MIN(s.lease_until) - {_NOW} FROM sessions s "
            f"WHERE s.claimed_by IS NOT NULL AND s.claimed_by <> $1 AND {_PENDING}", self.me)
        return None if value is None else float(value)
