"""Talking to the model, and shaping what goes to and comes from it.

``client`` is the OpenAI-compatible client (the ``openai`` SDK) and ``models`` reads a server's
context window; ``tokens`` counts tokens offline for the context budget; ``streaming`` shows a reply
while it is written and ``chunking`` splits it to a platform's size limit.

May import: ``bridge.config``, ``bridge.metrics``, ``bridge.types``. Nothing here knows about sessions,
the store or platforms.
"""
