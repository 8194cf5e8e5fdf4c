"""bridge: one async process that lets people talk to an LLM where they already talk.

The core is platform-neutral and reads top-down in the direction messages flow:

- ``types`` — the vocabulary platforms translate into (:class:`~bridge.types.Incoming`, threads, authors);
  ``platform`` — the one interface every adapter implements.
- ``conversation`` — router → store → lane → responder: rules, order, commands, answers.
- ``llm`` — the model client, token counts, streaming and splitting replies.
- ``policy`` — access rules, budgets, usage.
- ``attachments`` — files and images shared in a conversation: fetched, read, part of the turn.
- ``store`` — SQLite or PostgreSQL: everything a restart must not forget.
- ``replicas`` — several processes on one PostgreSQL database.
- ``untrusted`` — bounded handling of what outsiders control.
- ``config``, ``personas``, ``metrics``, ``server``, ``diagnosis``, ``app`` and ``cli`` at the top:
  the file, the HTTP server, ``bridge check --online``, the assembled process and the command line.

The core never imports a platform (platforms are found through entry points); a platform never
touches SQL.
"""

__version__ = "0.1.0"
