"""``bridge check --online``: reach the LLM and each enabled platform, and say what is missing.

The LLM part uses :class:`~bridge.llm.client.LLMClient`'s discovery (models, context window). A platform
is checked by its adapter's optional ``diagnose()`` (found through the entry points, like
everything platform-specific), which signs in without connecting and reads what the API tells
about identity, scopes and intents.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from bridge.config import Config
from bridge.llm.client import LLMClient, LLMFailure
from bridge.metrics import Metrics
from bridge.personas import Persona
from bridge.platform import load_factory

log = logging.getLogger(__name__)

Level = Literal["ok", "warning", "missing"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report; ``missing`` lines make ``bridge check --online`` exit 1."""

    level: Level
    text: str


@runtime_checkable
class Diagnosable(Protocol):
    async def diagnose(self) -> list[Finding]:
        """Sign in (without connecting or taking events) and report identity, scopes and intents."""


@runtime_checkable
class PlaceCheckable(Protocol):
    async def check_places(self, places: list[tuple[int, str]]) -> list[Finding]:
        """For each ``(rule index, where)``, whether the bot can see that place and post there."""


def place_label(index: int, platform: str, where: str) -> str:
    return f"{platform}: channels[{index}] {where}"


async def _check_places(name: str, platform: object, config: Config) -> list[Finding]:
    """Each rule's concrete place looked up; a pattern (``*``, ``octo-org/*``) names no one place."""
    from bridge.places import concrete

    rules = [(i, r.where) for i, r in enumerate(config.channels) if r.platform == name]
    places = [(i, w) for i, w in rules if concrete(w)]
    found = [Finding("ok", f"{place_label(i, name, w)}: a pattern; every place the bot can see that matches")
             for i, w in rules if not concrete(w)]
    if places and isinstance(platform, PlaceCheckable):
        found += await platform.check_places(places)
    return found


async def diagnose_llm(config: Config, personas: dict[str, Persona]) -> list[Finding]:
    """The server answers, lists the configured models, and (where it says) the context window."""
    llm = LLMClient(config.llm, Metrics())
    base = config.llm.base_url
    found: list[Finding] = []
    try:
        try:
            ids: list[str] | None = await llm.models()
        except LLMFailure as failure:
            if failure.kind != "model":  # no answer, or refused: nothing else can work
                status = f", HTTP {failure.status}" if failure.status else ""
                hint = " (check llm.api_key)" if failure.kind == "auth" else " (check llm.base_url)"
                return [Finding("missing", f"llm: {base} did not list its models ({failure.kind}{status}){hint}")]
            ids = None  # a server without GET /models
        found.append(Finding("ok", f"llm: {base} answers" + (f", {len(ids)} model(s)" if ids is not None else
                                                               " (it does not list its models)")))
        wanted = {config.llm.model: "llm.model"}
        for p in personas.values():
            if p.model:
                wanted.setdefault(p.model, f"persona {p.name}'s model")
        for model, where in sorted(wanted.items()):
            if ids is None or model in ids:
                found.append(Finding("ok", f"llm: model {model!r} ({where})" + (" is served" if ids else "")))
            elif len(ids) == 1:  # llama.cpp and friends serve one model under any name
                found.append(Finding("warning", f"llm: model {model!r} ({where}) is not listed; the server "
                                                f"lists only {ids[0]!r}, which single-model servers use anyway"))
            else:
                close = ", ".join(_closest(model, ids)) or ", ".join(ids[:5])
                found.append(Finding("missing", f"llm: model {model!r} ({where}) is not served here; "
                                                f"it has e.g. {close}"))
        window = await llm.context_window(config.llm.model)
        budget = config.llm.context_tokens
        if window is None:
            found.append(Finding("ok", f"llm: the server does not tell its context window; "
                                       f"llm.context_tokens ({budget}) is used as given"))
        elif budget + (config.llm.max_tokens or 0) > window:
            found.append(Finding("warning", f"llm: the model's context window is {window} tokens, smaller than "
                                            f"llm.context_tokens ({budget}) + the reply: lower llm.context_tokens"))
        else:
            found.append(Finding("ok", f"llm: context window {window} tokens (budget {budget})"))
    finally:
        await llm.close()
    return found


def _closest(model: str, ids: Iterable[str]) -> list[str]:
    import difflib

    return difflib.get_close_matches(model, list(ids), n=3, cutoff=0.4)


async def diagnose_platforms(config: Config) -> list[Finding]:
    found: list[Finding] = []
    for name, settings in config.platforms.enabled().items():
        platform = load_factory(name)(settings, config)
        try:
            if isinstance(platform, Diagnosable):
                signed_in = await platform.diagnose()
                found += signed_in
                if not any(f.level == "missing" for f in signed_in):  # refused credentials see nothing
                    found += await _check_places(name, platform, config)
            else:
                found.append(Finding("warning", f"{name}: this adapter has no online check"))
        except Exception as exc:  # an SDK's text may carry URLs or tokens: only the class name
            found.append(Finding("missing", f"{name}: the check failed ({type(exc).__name__})"))
        finally:
            try:
                await platform.stop()
            except Exception:
                log.debug("closing %s after its check failed", name, exc_info=True)
    if not found:
        found.append(Finding("ok", "platforms: none enabled (nothing to reach)"))
    return found


async def diagnose_tools(config: Config) -> list[Finding]:
    """Each MCP server under ``tools:`` started (or reached) once, and the tools it lists."""
    from bridge.tools.check import check_servers

    return [Finding(level, text) for level, text in await check_servers(config.tools, config.base_dir)]


async def diagnose(config: Config, personas: dict[str, Persona]) -> list[Finding]:
    return [*await diagnose_llm(config, personas), *await diagnose_platforms(config), *await diagnose_tools(config)]
