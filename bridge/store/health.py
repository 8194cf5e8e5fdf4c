"""Whether the store takes writes: the outcome of the last write, for ``/readyz`` and ``/healthz``.

A bridge whose every write fails (a full disk, a lock held from outside, a database gone) cannot
keep a message, so it must not say it is ready. Every store transaction reports here; while nothing
else writes, the app probes with one cheap real write (:meth:`bridge.store.store.Store.probe_write`)
so readiness comes back by itself once the store does.
"""

from __future__ import annotations

import time


class WriteHealth:
    def __init__(self) -> None:
        self.last_ok: float | None = None   # time.time() of the last committed write
        self.last_failure: tuple[float, str] | None = None  # (time.time(), error class name)

    def ok(self) -> None:
        self.last_ok = time.time()

    def failed(self, exc: BaseException) -> None:
        self.last_failure = (time.time(), type(exc).__name__)

    def state(self) -> tuple[bool, str]:
        """(True, "") unless the newest write outcome is a failure; then a reason naming the error class."""
        failure = self.last_failure
        if failure is None or (self.last_ok is not None and self.last_ok > failure[0]):
            return True, ""
        return False, f"store: the last write failed ({failure[1]})"
