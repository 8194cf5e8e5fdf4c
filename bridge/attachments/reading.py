"""Reading one downloaded file into text or a resized image, off the event loop, with a time limit.

Each file is read in a child process (:mod:`.worker`) that is killed when ``READ_TIMEOUT_S`` passes:
a PDF that loops forever costs its process, never the bridge's loop. At most ``MAX_READERS`` run
at once, so a burst of files cannot take every core.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import weakref
from dataclasses import dataclass
from pathlib import Path

from bridge.attachments import problems
from bridge.attachments.config import AttachmentsConfig, Kind
from bridge.attachments.kinds import kind_of
from bridge.llm.tokens import cut_to_tokens

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 20.0   # one file; an honest 300-page PDF takes a few seconds
MAX_READERS = 2         # reader processes at once
CHARS_PER_TOKEN = 8     # the worker returns at most this many characters per allowed token
_ROOT = str(Path(__file__).resolve().parents[2])  # so the worker runs this same code
_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _readers:
        _readers[loop] = asyncio.Semaphore(MAX_READERS)
    return _readers[loop]


@dataclass(frozen=True, slots=True)
class Read:
    """What a file became: ``text`` (with ``tokens``; ``cut`` when longer than allowed), or an ``image``."""

    kind: Kind
    text: str = ""
    tokens: int = 0
    cut: bool = False
    image: str = ""  # a data URL, resized


async def read(data: bytes, name: str, mime: str, config: AttachmentsConfig, model: str) -> Read:
    """Read ``data``; :class:`~bridge.attachments.problems.FileProblem` with a sentence otherwise."""
    kind = kind_of(data, name, mime)
    if kind is None or kind not in config.types:
        raise problems.not_read(name, config.types)
    result = await _run_worker(kind, data, config.max_text_tokens * CHARS_PER_TOKEN, name)
    problem = result.get("problem")
    if problem == "bomb":
        raise problems.bomb(name)
    if problem == "no_text":
        raise problems.no_text(name)
    if problem is not None:
        log.info("reading an attached %s failed: %s", kind, str(result.get("why", ""))[:60])
        raise problems.damaged(name)
    if kind == "image":
        image = result.get("image")
        if not isinstance(image, str):
            raise problems.damaged(name)
        return Read(kind, image=image)
    text = result.get("text")
    if not isinstance(text, str):
        raise problems.damaged(name)
    kept, tokens, cut = await asyncio.to_thread(cut_to_tokens, text, config.max_text_tokens, model)
    if not kept.strip():
        raise problems.no_text(name)
    return Read(kind, text=kept, tokens=tokens, cut=cut)


async def _run_worker(kind: Kind, data: bytes, max_chars: int, name: str) -> dict[str, object]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH", "")) if p)
    async with _slots():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge.attachments.worker", kind, str(max_chars),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env=env)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(data), READ_TIMEOUT_S)
        except TimeoutError:
            raise problems.too_slow(name) from None
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    try:
        result = json.loads(out or b"{}")
    except ValueError:
        result = {}
    if not isinstance(result, dict) or not result:
        return {"problem": "bomb" if proc.returncode and proc.returncode < 0 else "damaged", "why": "no result"}
    return result
