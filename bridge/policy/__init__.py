"""Who may talk to the bot and how much it may cost.

``config`` holds the ``allow:``/``deny:``/``limits:``/``admins:`` config blocks; ``access`` decides per
message, ``budgets`` per answer; ``usage`` records what answers cost and writes ``/usage``;
``report`` is ``bridge usage``.

May import: ``bridge.store`` (usage queries), ``bridge.llm`` (token counts), ``bridge.config`` and
``bridge.types``. Never a platform.
"""
