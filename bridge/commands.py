"""In-chat commands: ``/reset`` (``/restart``), ``/persona NAME``, ``/personas``, ``/help``.

Parsing is pure; running a command goes through the same per-session lane as chat, so a
``/reset`` sent after a question takes effect after that question is answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.personas import Persona
from bridge.store import Store

COMMANDS = ("reset", "restart", "persona", "personas", "help")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arg: str


def parse_command(text: str) -> Command | None:
    """A known command at the start of the text, or None (unknown ``/words`` are ordinary chat)."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    head, _, rest = stripped[1:].partition(" ")
    name = head.lower()
    if name not in COMMANDS:
        return None
    return Command("reset" if name == "restart" else name, rest.strip())


def help_text(current: str) -> str:
    return (f"I'm answering as the *{current}* persona. Commands:\n"
            "- `/reset` (or `/restart`): forget this conversation and start afresh\n"
            "- `/persona NAME`: switch this conversation to another persona\n"
            "- `/personas`: list the personas\n"
            "- `/help`: this message")


def personas_text(personas: dict[str, Persona], current: str) -> str:
    lines = ["Personas:"]
    for name, persona in sorted(personas.items()):
        mark = " (current)" if name == current else ""
        lines.append(f"- `{name}`{mark}: {persona.description or 'no description'}")
    return "\n".join(lines)


async def run_command(cmd: Command, *, store: Store, session_id: int, message_id: int, current: str,
                      personas: dict[str, Persona]) -> str:
    """Carry out a command; return the reply to post."""
    if cmd.name == "reset":
        await store.reset(session_id, keep_message_id=message_id)
        return "Done: I've forgotten this conversation. What shall we talk about?"
    if cmd.name == "persona":
        if not cmd.arg:
            return f"Currently: `{current}`. Say `/persona NAME` to switch; `/personas` lists them."
        if cmd.arg not in personas:
            return f"There is no persona called `{cmd.arg}`. " + personas_text(personas, current)
        await store.set_persona(session_id, cmd.arg)
        return f"Switched to the `{cmd.arg}` persona: {personas[cmd.arg].description}".rstrip(": ")
    if cmd.name == "personas":
        return personas_text(personas, current)
    return help_text(current)
