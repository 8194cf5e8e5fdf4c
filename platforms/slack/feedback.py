"""👍/👎 under each final Slack answer (``feedback: true``): Slack's own feedback buttons.

The buttons (a ``context_actions`` block with a ``feedback_buttons`` element) carry the reply's key
in their values, so a click names the answer it rates without any lookup on Slack's side. Clicks
arrive as ``block_actions`` (over the socket, or as the form post ``payload=`` at ``POST
/slack/events``); Bolt acknowledges them and :func:`rating_of` turns one into a
:class:`~bridge.types.Rating` for the core. Pure functions, except the Bolt listener in the adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.types import Rating

ACTION_ID = "bridge_feedback"
UP, DOWN = "up", "down"
MAX_KEY = 1900  # a button value holds at most 2,000 characters


def buttons(key: str) -> list[dict[str, Any]]:
    """The block that goes under the last message of an answer, or none for a key too long to carry."""
    if len(key) > MAX_KEY:
        return []
    return [{"type": "context_actions", "block_id": "bridge_feedback_block", "elements": [{
        "type": "feedback_buttons", "action_id": ACTION_ID,
        "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": f"{UP} {key}",
                            "accessibility_label": "Good answer"},
        "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": f"{DOWN} {key}",
                            "accessibility_label": "Bad answer"}}]}]


def rating_of(body: Mapping[str, Any]) -> Rating | None:
    """A ``block_actions`` body → the rating it gives, or None when it is not a click on our buttons."""
    user = body.get("user")
    actions = body.get("actions")
    if not isinstance(user, Mapping) or not isinstance(user.get("id"), str) or not isinstance(actions, list):
        return None
    for action in actions:
        if not isinstance(action, Mapping) or action.get("action_id") != ACTION_ID:
            continue
        value = action.get("value")
        if not isinstance(value, str):
            return None
        verdict, _, key = value.partition(" ")
        if verdict not in (UP, DOWN) or not key:
            return None
        return Rating("slack", key, str(user["id"]), 1 if verdict == UP else -1)
    return None
