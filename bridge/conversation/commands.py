"""In-chat commands: ``/reset`` (``/restart``), ``/persona NAME``, ``/personas``, ``/usage``, ``/help``.

Parsing is pure; running a command goes through the same per-session lane as chat, so a
``/reset`` sent after a question takes effect after that question is answered, and forgets nothing
sent after it. A command's effect and its confirmation are stored in one transaction: a restart
delivers the confirmation, it never runs the command again.

With ``admins:`` set, what changes a conversation for others — ``/persona NAME``, ``/reset`` in a
shared session — and ``/usage all`` are for admins only; others get a polite refusal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridge.personas import Persona
from bridge.store.store import Store

COMMANDS = ("reset", "restart", "persona", "personas", "usage", "help")
ADMINS_ONLY = "Sorry, only the bot's admins can {what}."


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arg: str


@dataclass(frozen=True, slots=True)
class Asker:
    """Who sent the command, as far as commands care."""

    admin: bool = True    # always True when no ``admins:`` are configured
    shared: bool = False  # the conversation is a ``share:`` session
    usage: Callable[[bool], Awaitable[str]] | None = None  # ``/usage`` text; True: everyone's


def _admins_only(cmd: Command, asker: Asker) -> str | None:
    """What the command would do that only admins may, or None."""
    if asker.admin:
        return None
    if cmd.name == "persona" and cmd.arg:
        return "switch the persona"
    if cmd.name == "reset" and asker.shared:
        return "reset a conversation shared by several channels"
    return None


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


def help_text(current: str, greeting: str = "") -> str:
    """The persona's greeting (if it has one), then the commands."""
    return ((f"{greeting}\n\n" if greeting else "") + f"I'm answering as the *{current}* persona. Commands:\n"
            "- `/reset` (or `/restart`): forget this conversation and start afresh\n"
            "- `/persona NAME`: switch this conversation to another persona\n"
            "- `/personas`: list the personas\n"
            "- `/usage`: what you have used, and what is left\n"
            "- `/help`: this message")


def personas_text(personas: dict[str, Persona], current: str) -> str:
    lines = ["Personas:"]
    for name, persona in sorted(personas.items()):
        mark = " (current)" if name == current else ""
        lines.append(f"- `{name}`{mark}: {persona.description or 'no description'}")
    return "\n".join(lines)


async def run_command(cmd: Command, *, store: Store, message_id: int, current: str,
                      personas: dict[str, Persona], asker: Asker | None = None) -> str:
    """Carry out a command and store its confirmation with its effect; return the confirmation."""
    asker = asker or Asker()
    reset, persona = False, None
    forbidden = _admins_only(cmd, asker)
    if forbidden is not None:
        reply = ADMINS_ONLY.format(what=forbidden)
    elif cmd.name == "usage":
        everyone = cmd.arg.lower() == "all"
        reply = await asker.usage(everyone) if asker.usage is not None else "Usage is not recorded here."
    elif cmd.name == "reset":
        reset = True
        reply = "Done: I've forgotten this conversation. What shall we talk about?"
    elif cmd.name == "persona":
        if not cmd.arg:
            reply = f"Currently: `{current}`. Say `/persona NAME` to switch; `/personas` lists them."
        elif cmd.arg not in personas:
            reply = f"There is no persona called `{cmd.arg}`. " + personas_text(personas, current)
        else:
            persona = cmd.arg
            reply = f"Switched to the `{cmd.arg}` persona: {personas[cmd.arg].description}".rstrip(": ")
    elif cmd.name == "personas":
        reply = personas_text(personas, current)
    else:
        reply = help_text(current, personas[current].greeting if current in personas else "")
    await store.command_done(message_id, reply, reset=reset, persona=persona)
    return reply
