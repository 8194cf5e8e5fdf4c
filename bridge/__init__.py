"""bridge: one async process that lets people talk to an LLM where they already talk."""

__version__ = "0.1.0"
