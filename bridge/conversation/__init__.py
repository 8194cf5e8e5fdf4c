"""A conversation, from a normalised message to the reply: the core's one direction of flow.

``router`` takes every platform's :class:`~bridge.types.Incoming`, applies the channel ``rules``,
dedupes and stores it, and queues it on the session's lane (``lanes``: one session in order, sessions
side by side). ``responder`` answers one stored message: an in-chat command (``commands``) or
persona + history → the LLM (``answering``, the one place LLM calls are retried; ``tooluse``, the
rounds of tool calls) → the platform; ``persisting`` retries a message in its place through store failures.

May import: ``bridge.store``, ``bridge.llm``, ``bridge.policy``, ``bridge.tools``, ``bridge.untrusted`` and
the top-level core modules (config, types, platform, personas, metrics). Never a platform.
"""
