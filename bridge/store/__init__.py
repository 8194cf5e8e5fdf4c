"""The store: everything a restart must not forget, on SQLite or PostgreSQL.

Holds the :class:`~bridge.store.store.Store` (sessions, threads, messages, replies, seen events),
the interface both backends implement (``backend``), the backends themselves (``sqlite`` through
aiosqlite, ``postgres``) and the SQL they share (``sql``), the usage rows behind budgets (``usage``),
the database file and its backups (``files``, ``backups``), the one-process-per-file lock (``lock``),
copying a store to PostgreSQL (``migrate``), per-session leases for replicas (``claims``) with their
fencing tokens (``fencing``), and whether writes currently succeed (``health``, for readiness).

May import: ``bridge.types`` and ``bridge.config``. Nothing outside this package writes SQL; platforms
never import it.
"""
