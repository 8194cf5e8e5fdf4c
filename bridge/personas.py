"""Persona files (``prompts/NAME.yaml``): who the model is in a channel.

A persona's system prompt may use ``{user}``, ``{platform}``, ``{channel}`` and ``{date}``. Only
those four are replaced, so prompts can show code with braces (``fn main() {}``) safely.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge.config import ConfigError

MAX_SUGGESTED_PROMPTS = 4  # Slack's assistant pane shows at most four
_PLACEHOLDER = re.compile(r"\{(user|platform|channel|date)\}")


class SuggestedPrompt(BaseModel):
    """One button in Slack's assistant pane: a short title, and the message it sends when clicked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=75)
    message: str = Field(min_length=1, max_length=2000)


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    system: str = Field(min_length=1)
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    # Extension: prefix each user turn with its author's name, so the model sees who said what in
    # group threads. Shared sessions always do this.
    speaker_names: bool = False
    vision: bool = False  # shared images go to the model as image input (the model must see images)
    # What a person opening Slack's assistant pane (or asking Discord's /help) is offered first.
    greeting: str = Field("", max_length=2000)
    suggested_prompts: tuple[SuggestedPrompt, ...] = ()

    @field_validator("suggested_prompts")
    @classmethod
    def _at_most_four(cls, v: tuple[SuggestedPrompt, ...]) -> tuple[SuggestedPrompt, ...]:
        if len(v) > MAX_SUGGESTED_PROMPTS:
            raise ValueError(f"at most {MAX_SUGGESTED_PROMPTS} (Slack's assistant pane shows no more); "
                             f"this persona lists {len(v)}")
        return v
    tools: list[str] = []  # names under the top-level `tools:` (MCP servers) whose tools the model may call
    max_tool_steps: int = Field(4, ge=1, le=32)  # rounds of tool calls per answer; then it answers with what it has

    def render_system(self, *, user: str, platform: str, channel: str, today: dt.date | None = None) -> str:
        values = {"user": user, "platform": platform, "channel": channel,
                  "date": (today or dt.date.today()).isoformat()}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.system)


def _unknown_key(key: str, nested: bool = False) -> str:
    allowed = list((SuggestedPrompt if nested else Persona).model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" did you mean {close[0]!r}?" if close else ""
    return f"unknown key.{hint} Allowed: {', '.join(allowed)}"


def load_persona(path: Path) -> Persona:
    """Load one persona file; its ``name`` must match the file name."""
    problems: list[str] = []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["a persona file is a mapping with name:, description:, system:"])
    try:
        persona = Persona.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in e["loc"])
            nested = len(e["loc"]) > 1 and e["loc"][0] == "suggested_prompts"
            msg = (_unknown_key(str(e["loc"][-1] if nested else loc), nested) if e["type"] == "extra_forbidden"
                   else e["msg"].removeprefix("Value error, "))
            problems.append(f"{loc}: {msg}")
        raise ConfigError(str(path), problems) from None
    if persona.name != path.stem:
        raise ConfigError(str(path), [f"name: {persona.name!r} must match the file name ({path.stem!r}); "
                                      f"rename the file or the persona"])
    return persona


def load_personas(directory: Path) -> dict[str, Persona]:
    """Every ``*.yaml`` / ``*.yml`` in ``directory``, by name. Problems in all files are reported together."""
    if not directory.is_dir():
        raise ConfigError(str(directory), ["personas_dir: folder not found; create it or point personas_dir "
                                           "at the folder holding the persona YAML files"])
    personas: dict[str, Persona] = {}
    problems: list[str] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            persona = load_persona(path)
        except ConfigError as exc:
            problems.extend(f"{exc.source}: {p}" for p in exc.problems)
            continue
        personas[persona.name] = persona
    if problems:
        raise ConfigError(str(directory), problems)
    return personas
