"""Several ``bridge run`` processes on one PostgreSQL database.

``lanes`` shares session lanes between replicas through leases (claimed in ``bridge.store.claims``),
woken by ``LISTEN``/``NOTIFY``; ``gateway`` elects the one replica that holds a platform's gateway
(Discord) through an advisory lock.

May import: ``bridge.store``, ``bridge.platform``, ``bridge.metrics``.
"""
