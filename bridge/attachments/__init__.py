"""Files and images people share in a conversation: fetched, read, and turned into a user turn.

Holds the ``attachments:`` config block, the bounded downloader (only from the hosts a platform
adapter names, with the credentials it gives), the readers (text, PDF, DOCX, images; run in a
child process with a time limit, so a hostile file can be killed instead of stalling anything),
the plain sentences for each problem, and how a file becomes part of the prompt.

May import: the standard library, aiohttp, pydantic, pypdf / python-docx / Pillow /
charset-normalizer (in the reader process only), ``bridge.types``, ``bridge.llm.tokens`` and the
store's methods (``bridge.store``). Never a platform: each adapter describes its own file hosts
(:class:`~bridge.attachments.hosts.FileHosts`) and the core asks for them by name.
"""
