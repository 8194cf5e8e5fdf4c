"""MCP servers shipped with the bridge as working examples; each runs on its own (``python FILE``)."""
