"""Tools the model may call while answering, served by MCP servers (Model Context Protocol).

``config`` is the ``tools:`` block of ``bridge.yaml``; ``servers`` keeps one connection per MCP
server (a stdio process the bridge starts and restarts, or a streamable HTTP URL); ``catalog``
names the tools a persona is offered (a server's own names, prefixed only where two clash);
``results`` turns what a tool returned into bounded text for the model; ``loop`` runs the model's
tool calls until it answers, within ``max_tool_steps``; ``examples`` holds a small server shipped
with the bridge.

May import: ``bridge.config``, ``bridge.llm``, ``bridge.metrics`` and the ``mcp`` SDK. Never a
platform, never the store: what a loop did is handed back as values for the caller to keep.
"""
