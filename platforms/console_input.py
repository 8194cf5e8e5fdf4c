"""Reading ``bridge chat`` input: whole pastes as one message, and no 4,095-character line limit.

In a terminal's usual (canonical) mode the kernel edits the line and cuts it at 4,095 characters,
and every pasted newline ends a message. So on a terminal the input is read in non-canonical mode
with a small line editor of our own (typing, backspace, Ctrl-U, Ctrl-D; Ctrl-C still raises
SIGINT): a newline ends the message only when nothing else follows within :data:`PASTE_GAP_S` —
the lines of a paste arrive together, a person's Enter does not. From a pipe, each line is one
message (scripts), with no length limit either.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import termios
from collections.abc import Callable, Iterator
from typing import TextIO

PASTE_GAP_S = 0.03  # lines arriving closer together than this are one paste
_ERASE = ("\x7f", "\x08")
_KILL_LINE = "\x15"  # Ctrl-U
_EOF = "\x04"        # Ctrl-D

Emit = Callable[[str], None]
"""Receives each message ending in a newline, and ``""`` at the end of input."""


def is_terminal(stream: TextIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def raw_input_mode(fd: int) -> Iterator[None]:
    """Non-canonical, no kernel echo, signals kept (Ctrl-C is still SIGINT); restored on exit."""
    saved = termios.tcgetattr(fd)
    mode = termios.tcgetattr(fd)
    mode[3] &= ~(termios.ICANON | termios.ECHO)
    mode[6][termios.VMIN] = 1
    mode[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, mode)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def read_lines(stream: TextIO, emit: Emit) -> None:
    """A pipe: one message per line (``readline`` has no length limit), then ``""``."""
    while True:
        line = stream.readline()
        emit(line)
        if not line:
            return


def _more_within(fd: int, seconds: float) -> bool:
    readable, _, _ = select.select([fd], [], [], seconds)
    return bool(readable)


def read_terminal(fd: int, echo: TextIO, emit: Emit, *, paste_gap_s: float = PASTE_GAP_S) -> None:
    """A terminal in :func:`raw_input_mode`: edit, echo, and emit whole messages (pastes included)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    text: list[str] = []
    escape = ""  # inside an escape sequence (arrow keys, bracketed-paste marks): ignored
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            emit("")
            return
        chars = decoder.decode(data)
        shown: list[str] = []
        for i, ch in enumerate(chars):
            if escape:
                escape += ch
                if (len(escape) == 2 and ch not in "[O") or (len(escape) > 2 and "@" <= ch <= "~"):
                    escape = ""
                continue
            if ch == "\x1b":
                escape = ch
            elif ch in "\r\n":
                shown.append("\n")
                if i + 1 < len(chars) or _more_within(fd, paste_gap_s):
                    text.append("\n")  # a line of a paste: the message goes on
                    continue
                echo.write("".join(shown))
                echo.flush()
                shown = []
                emit("".join(text) + "\n")
                text = []
            elif ch in _ERASE:
                if text and text[-1] != "\n":
                    text.pop()
                    shown.append("\b \b")
            elif ch == _KILL_LINE:
                while text and text[-1] != "\n":
                    text.pop()
                    shown.append("\b \b")
            elif ch == _EOF:
                if not text:
                    echo.write("".join(shown))
                    echo.flush()
                    emit("")
                    return
            elif ch == "\t" or ch >= " ":
                text.append(ch)
                shown.append(ch)
        echo.write("".join(shown))
        echo.flush()

