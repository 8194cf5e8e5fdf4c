"""A webhook delivery, checked before anything reads it: the signature on the raw bytes, then the
body as a bounded JSON object. Pure functions; the adapter turns their answers into HTTP statuses.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from githubkit import webhooks

from bridge.untrusted.jsonbody import BadBody, parse_object

SIGNATURE_HEADER = "X-Hub-Signature-256"


def signed(secret: str, body: bytes, signature: str) -> bool:
    """True when ``signature`` (the header's value) is ``sha256=`` + the HMAC of ``body``.

    githubkit compares with :func:`hmac.compare_digest`, which raises on non-ASCII text: such a
    header is simply not a signature.
    """
    if not signature.startswith("sha256=") or not signature.isascii():
        return False
    try:
        return webhooks.verify(secret, body, signature)
    except (TypeError, ValueError):
        return False


def payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The signed body as a JSON object (``application/json`` or the form-encoded ``payload=``).

    Raises :class:`~bridge.untrusted.jsonbody.BadBody` with a short reason for anything else.
    """
    if content_type == "application/x-www-form-urlencoded":  # the webhook's other content type
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadBody("the body is not UTF-8") from None
        values = parse_qs(text).get("payload")
        if not values:
            raise BadBody("the form has no payload field")
        return parse_object(values[0])
    return parse_object(body)
