"""The store: everything a restart must not forget, on SQLite or PostgreSQL.

Holds the :class:`~bridge.store.store.Store` (sessions, threads, messages, replies, seen events),
the interface both backends implement (``backend``), the backends themselves (``sqlite`` through
aiosqlite, ``postgres``) and the SQL they share (``sql``), the usage rows behind budgets (``usage``),
the database file and its backups (``files``), the one-process-per-file lock (``lock``), copying a
store to PostgreSQL (``migrate``) and per-session leases for replicas (``claims``).

May import: ``bridge.types`` and ``bridge.config``. Nothing outside this package writes SQL; platforms
never import it.
"""
