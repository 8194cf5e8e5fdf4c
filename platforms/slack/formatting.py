"""Outbound text for Slack: the model's reply must not notify anyone.

Slack turns ``<!channel>``, ``<!here>``, ``<!everyone>``, ``<!subteam^S…>`` (a user group) and
``<@U…>`` (a person) into notifications; whether ``markdown_text`` honours them inside code is not
documented, so they are rewritten everywhere, code included, into the readable text Slack would
have shown (``@here``, ``@Alice``, ``#general``) with a zero-width space after the ``@``. Plain
``@here``, ``@channel`` and ``@everyone`` in prose get the same space (``link_names`` parsing would
notify them; plain ``@name`` notifies nobody since Slack dropped name mentions). Links
(``<https://…|label>``) stay links; unfurling is off in ``send``.
"""

from __future__ import annotations

import re

from bridge.untrusted.prose import map_prose

ZWSP = "\u200b"
# <@U123>, <@U123|alice>, <#C123|general>, <!here>, <!subteam^S123|@team>, <!date^…|fallback>
# and the same written with entities (&lt;!here&gt;), in case Slack decodes them before parsing.
_CONTROL = re.compile(r"(?:<|&lt;)([@#!])([^<>&|\s]*)(?:\|([^<>&]*))?(?:>|&gt;)")
_PLAIN = re.compile(r"(?<![A-Za-z0-9.@])@(?=(?:here|channel|everyone)\b)", re.IGNORECASE)


def _readable(m: re.Match[str]) -> str:
    sigil, target, label = m.group(1), m.group(2), m.group(3)
    if sigil == "#":  # a channel link notifies nobody; shown as its name, not a link
        return "#" + (label or target).lstrip("#")
    if sigil == "!" and target.startswith("date^"):
        return label or "a date"
    if sigil == "!" and target.startswith("subteam^"):
        name = (label or "").lstrip("@") or target.removeprefix("subteam^")
    elif sigil == "!":  # here, channel, everyone, and any other special command
        name = target
    else:
        name = (label or "").lstrip("@") or target
    return "@" + ZWSP + (name or "someone")


def neutralise(text: str) -> str:
    """``text`` with every Slack mention made inert and readable (see the module docstring)."""
    if "<" not in text and "@" not in text and "&" not in text:
        return text
    text = _CONTROL.sub(_readable, text)
    return map_prose(text, lambda prose: _PLAIN.sub("@" + ZWSP, prose))
