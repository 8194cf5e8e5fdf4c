"""An Events API request, checked before Bolt sees it (HTTP mode).

Bolt decodes and parses the body before it verifies the signature, so a forged request with bytes
that are not UTF-8, JSON that is not an object or nests 50,000 levels deep made it raise (HTTP 500,
a traceback in the log), and a bad signature had its whole body logged. Here the signature is
verified first, on the raw bytes, with slack_sdk's :class:`SignatureVerifier`; then the body must be
a bounded JSON object of a shape Bolt handles (``url_verification``, ``event_callback``, or a form
post whose ``payload`` is a ``block_actions`` click); anything else signed is acknowledged and
ignored, with the reason. Pure functions.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.signature import SignatureVerifier

from bridge.untrusted.jsonbody import BadBody, parse_object

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
BOLT_TYPES = frozenset({"url_verification", "event_callback"})
MAX_FORM_FIELDS = 20  # Slack's interactivity posts have one field (payload); commands about a dozen
_OPTIONAL_STR = ("team_id", "enterprise_id", "api_app_id", "event_id", "context_team_id", "context_enterprise_id")


def signed(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when the request carries Slack's valid, fresh (5-minute) signature of ``body``.

    slack_sdk raises on a timestamp that is not an integer (``1e9``, ``abc``) and on a non-ASCII
    signature; such headers are simply not a signature.
    """
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if not (signature.isascii() and signature.startswith("v0=")):
        return False
    try:
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class Checked:
    """A signed body: ``text`` to hand to Bolt, or the ``ignored`` reason to acknowledge it with."""

    text: str = ""
    ignored: str = ""


def _event_shape(body: Mapping[str, Any]) -> str:
    """Why an ``event_callback`` body is not one Bolt can route, or "" when it is."""
    for key in _OPTIONAL_STR:
        if not isinstance(body.get(key), str | None):
            return f"{key} is not a string"
    authorizations = body.get("authorizations")
    if authorizations is not None and not (
            isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)):
        return "authorizations is not a list of objects"
    event = body.get("event")
    if not isinstance(event, dict):
        return "event is not an object"
    if not isinstance(event.get("type"), str):
        return "event.type is not a string"
    for key in ("subtype", "ts", "thread_ts", "event_ts", "bot_id", "text", "team", "channel_type"):
        if not isinstance(event.get(key), str | None):
            return f"event.{key} is not a string"
    for key in ("user", "channel"):  # a string, or an object in some events (user_change, channel_created)
        if not isinstance(event.get(key), str | dict | None):
            return f"event.{key} is neither a string nor an object"
    return ""


def _form(text: str) -> Checked:
    """Interactivity: button clicks (``block_actions``, the feedback buttons) go to Bolt; slash
    commands and other forms are acknowledged and ignored."""
    try:
        fields = urllib.parse.parse_qs(text, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise BadBody(f"more than {MAX_FORM_FIELDS} form fields") from None
    payload = fields.get("payload")
    if not payload or len(payload) != 1:
        return Checked(ignored="form requests other than button clicks are not used by the bridge")
    data = parse_object(payload[0].encode("utf-8"))
    if data.get("type") != "block_actions":
        return Checked(ignored="interactivity other than button clicks is not used by the bridge")
    if not isinstance(data.get("actions"), list) or not isinstance(data.get("user"), dict):
        return Checked(ignored="block_actions without actions or user")
    return Checked(text=text)


def check(body: bytes, content_type: str) -> Checked:
    """What to do with a signed body; :class:`~bridge.untrusted.jsonbody.BadBody` when it is not readable."""
    if content_type == "application/x-www-form-urlencoded":  # slash commands, interactivity
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadBody("the body is not UTF-8") from None
        return _form(text)
    data = parse_object(body)
    text = body.decode("utf-8")  # parse_object proved it decodes
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in BOLT_TYPES:
        return Checked(ignored="not an event" if not isinstance(kind, str) else f"{kind[:40]!r} is not an event")
    if kind == "url_verification":
        return Checked(text=text) if isinstance(data.get("challenge"), str) else Checked(
            ignored="url_verification without a challenge")
    problem = _event_shape(data)
    return Checked(ignored=problem) if problem else Checked(text=text)


def conversation_of(body: object) -> tuple[str, str] | None:
    """The (team, channel) an event belongs to, for keeping arrival order; None for other requests.

    Ordered per channel, not per thread: a DM is one conversation whatever its thread stamps.
    """
    if not isinstance(body, Mapping):
        return None
    event = body.get("event")
    if not isinstance(event, dict):
        return None
    channel = event.get("channel")
    if not isinstance(channel, str):
        return None
    team = body.get("team_id")
    return (team if isinstance(team, str) else "", channel)
