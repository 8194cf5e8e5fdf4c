"""Fencing tokens for PostgreSQL leases: a replica acts for a session only while it can prove it holds it.

A lease alone does not stop a replica that was frozen (SIGSTOP, a paused VM, a half-open TCP
connection) past its lease: on waking it still believes it holds the session while another replica
has taken it over. So every claim bumps ``sessions.lease_gen``, and the work done under a claim
carries a :class:`Lease` — the session, the holder and that generation — in a context variable:

- every store write in that context checks, in its own transaction, that the row still names this
  holder and generation (:func:`check_in`), so a late write fails instead of overwriting the new
  holder's reply;
- every platform call first asks :meth:`Lease.check`, which trusts the lease only until
  ``proven_until``: the local monotonic time at which the last successful claim or renew was *sent*,
  plus a share of ``lease_s``. The database cannot have given the session away before then, and a
  frozen process wakes up with that time already past, so it stops before acting.

SQLite has one process and no leases: nothing is set and nothing is checked.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

PROOF_SHARE = 0.8  # of lease_s: how long a renew proves the lease, leaving room for clock-rate drift


class LeaseLost(Exception):
    """This replica can no longer prove it holds the session: it must stop acting for it (another
    replica may hold it now). Not a platform or store failure: nothing is marked, nobody is told."""


@dataclass(slots=True)
class Lease:
    session_id: int
    holder: str
    generation: int
    proven_until: float  # time.monotonic()

    def prove(self, sent_at: float, lease_s: float) -> None:
        """A claim or renew sent at ``sent_at`` (monotonic) succeeded."""
        self.proven_until = max(self.proven_until, sent_at + lease_s * PROOF_SHARE)

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless the lease is proven now (call it right before acting)."""
        if time.monotonic() >= self.proven_until:
            raise LeaseLost(f"session {self.session_id}: the lease is not proven any more")


CURRENT: ContextVar[Lease | None] = ContextVar("bridge_lease", default=None)


def guard() -> None:
    """Before a platform call: raise :class:`LeaseLost` when working under a lease no longer proven."""
    lease = CURRENT.get()
    if lease is not None:
        lease.check()


async def check_in(conn: Any) -> None:
    """Inside a PostgreSQL write transaction: fail unless the current lease (if any) is still ours.

    ``FOR SHARE`` holds the row until the commit, so no claim can slip between the check and the write.
    """
    lease = CURRENT.get()
    if lease is None:
        return
    async with conn.execute("SELECT 1 FROM sessions WHERE id = ? AND claimed_by = ? AND lease_gen = ? FOR SHARE",
                            (lease.session_id, lease.holder, lease.generation)) as cur:
        held = await cur.fetchone()
    if held is None:
        raise LeaseLost(f"session {lease.session_id}: another replica holds it now")
