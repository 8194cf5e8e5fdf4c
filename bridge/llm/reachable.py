"""At start, one question to the LLM server, so that a wrong ``llm.base_url`` or key is said in the
log right away instead of at the first person's message (``/readyz`` tells a load balancer; this
tells whoever watches ``bridge run`` start)."""

from __future__ import annotations

import logging

from bridge.llm.client import LLMClient, LLMFailure

log = logging.getLogger("bridge")

_FIX = {"auth": "check llm.api_key", "quota": "check the account's plan or billing"}


async def warn_if_unreachable(llm: LLMClient, base_url: str) -> bool:
    """Ask ``GET /models`` once; log one warning when the server cannot be used. True when it can."""
    try:
        await llm.models()
    except LLMFailure as failure:
        if failure.kind in ("model", "error", "rate_limited"):  # a server answered: it is there
            return True
        status = f", HTTP {failure.status}" if failure.status else ""
        fix = _FIX.get(failure.kind, "check llm.base_url and that the server is running")
        log.warning("the LLM at %s cannot be used (%s%s): answers will fail until it can; %s "
                    "(`bridge check --online` says more)", base_url, failure.kind, status, fix)
        return False
    return True
