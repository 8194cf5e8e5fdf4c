"""The store's part for shared files: one row per file of a user message, its text or image kept
with the turn. Mixed into :class:`bridge.store.store.Store` (same connection, same transactions).

A file is stored as the platform described it when the message is accepted (``pending``), then
read once, when the message is answered: its text (cut to ``max_text_tokens``) or its image
(resized, a data URL) is written with the turn, and its tokens are added to the message's, once,
so the context budget counts it like any other turn and no later turn downloads it again.
Rows go with their message (``ON DELETE CASCADE``: ``/reset`` forgets the files too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from bridge.store.backend import Connection, rows_for_ids
from bridge.types import Attachment

ATTACHMENTS_MIGRATION = """
    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        url TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        mime TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'read', 'failed')),
        kind TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL DEFAULT '',
        image TEXT NOT NULL DEFAULT '',
        tokens INTEGER NOT NULL DEFAULT 0,
        cut INTEGER NOT NULL DEFAULT 0,
        problem TEXT NOT NULL DEFAULT '',
        blind_notice INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX attachments_by_message ON attachments(message_id, position)
"""

FileState = Literal["pending", "read", "failed"]
_COLUMNS = "id, message_id, position, name, url, size, mime, state, kind, text, image, tokens, cut, problem"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One shared file of a user message, and what became of it."""

    id: int
    message_id: int
    position: int
    name: str
    url: str
    size: int
    mime: str
    state: FileState
    kind: str = ""      # text, pdf, docx, image (once read)
    text: str = ""      # the file's text, cut to max_text_tokens
    image: str = ""     # the image, resized: a data URL
    tokens: int = 0     # what ``text`` costs (already part of the message's tokens)
    cut: bool = False   # ``text`` is the beginning of a longer file
    problem: str = ""   # the sentence the author was told, when it could not be read


def _file(row: Sequence[Any]) -> StoredFile:
    (id_, mid, pos, name, url, size, mime, state, kind, text, image, tokens, cut, problem) = tuple(row)
    return StoredFile(int(id_), int(mid), int(pos), str(name), str(url), int(size or 0), str(mime), state,
                      str(kind), str(text), str(image), int(tokens or 0), bool(cut), str(problem))


async def insert_files(db: Connection, message_id: int, attachments: Iterable[Attachment], now: float) -> None:
    """Called inside :meth:`Store.accept`'s transaction: the files arrive with their message."""
    for position, a in enumerate(attachments):
        await db.execute(
            "INSERT INTO attachments (message_id, position, name, url, size, mime, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", (message_id, position, a.name, a.url, a.size, a.mime, now))


async def files_of(db: Connection, message_ids: Sequence[int]) -> dict[int, list[StoredFile]]:
    """The files of these messages, by message id, in the order they were shared (any connection: a
    transaction body may read them in the same hop as the turns they belong to)."""
    out: dict[int, list[StoredFile]] = {}
    for row in await rows_for_ids(db, f"SELECT {_COLUMNS} FROM attachments WHERE message_id IN",
                                  list(message_ids), "message_id, position"):
        f = _file(row)
        out.setdefault(f.message_id, []).append(f)
    return out


class AttachmentQueries:
    """Needs the store's ``_db`` and ``_tx`` (see :class:`bridge.store.store.Store`)."""

    _db: Connection

    def _tx(self) -> AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def files(self, message_ids: Sequence[int]) -> dict[int, list[StoredFile]]:
        """The files of these messages, by message id, in the order they were shared."""
        return await files_of(self._db, message_ids)

    async def file_read(self, file_id: int, *, kind: str, text: str = "", tokens: int = 0, cut: bool = False,
                        image: str = "") -> None:
        """A file was read: its text or image joins the turn, and its tokens the message's, once."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE attachments SET state = 'read', kind = ?, text = ?, tokens = ?, cut = ?, image = ? "
                "WHERE id = ? AND state = 'pending'", (kind, text, tokens, int(cut), image, file_id))
            if cur.rowcount and tokens:
                await db.execute("UPDATE messages SET tokens = tokens + ? WHERE id = "
                                 "(SELECT message_id FROM attachments WHERE id = ?)", (tokens, file_id))

    async def file_failed(self, file_id: int, problem: str, kind: str = "") -> None:
        """A file that will not be read (too big, damaged, hostile...): the sentence the author is told."""
        async with self._tx() as db:
            await db.execute("UPDATE attachments SET state = 'failed', problem = ?, kind = ? "
                             "WHERE id = ? AND state = 'pending'", (problem, kind, file_id))

    async def blind_notice_due(self, session_id: int, message_id: int) -> bool:
        """Whether this message's answer tells the author the persona cannot see images: only the
        first message with an image in a session does (again, if that answer is retried)."""
        async with self._tx() as db:
            async with db.execute(
                "SELECT MIN(a.message_id) FROM attachments a JOIN messages m ON m.id = a.message_id "
                "WHERE m.session_id = ? AND a.blind_notice = 1", (session_id,)) as cur:
                row = await cur.fetchone()
            if row is not None and row[0] is not None:
                return int(row[0]) == message_id
            cur2 = await db.execute(
                "UPDATE attachments SET blind_notice = 1 WHERE id = (SELECT MIN(id) FROM attachments "
                "WHERE message_id = ? AND kind = 'image')", (message_id,))
            return bool(cur2.rowcount)
