"""``bridge check --online``: whether the bot can see each Slack channel a rule names, and post there.

``conversations.info`` says whether the channel exists for this token and whether the bot is a
member (Slack delivers nothing from a channel the app is not in, and refuses its posts there).
Without the ``channels:read``/``groups:read`` scopes it is refused; ``conversations.history`` (one
message, not shown), which the bot's history scopes allow, then tells the same.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.diagnosis import Finding, place_label

_UNSEEN = ("channel_not_found", "not_in_channel")


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") if exc.response is not None else "error")


def _from_error(label: str, error: str) -> Finding:
    if error == "not_in_channel":
        return Finding("missing", f"{label}: the bot is not in this channel: /invite the app there")
    if error == "channel_not_found":
        return Finding("missing", f"{label}: the bot cannot see this channel (a wrong id, or a private channel "
                                  "it was not invited to)")
    return Finding("missing", f"{label}: Slack refused the lookup ({error})")


async def _info(client: AsyncWebClient, label: str, channel: str) -> Finding:
    resp = await client.conversations_info(channel=channel)
    data: dict[str, Any] = dict(resp.get("channel") or {})
    name = f"#{data['name']}" if data.get("name") else channel
    if data.get("is_archived"):
        return Finding("missing", f"{label}: {name} is archived: nobody can post there")
    if data.get("is_im") or data.get("is_member"):
        return Finding("ok", f"{label}: the bot is in {name} and may post there")
    return Finding("missing", f"{label}: the bot is not in {name}: type /invite @the-app in it")


async def check_slack_places(client: AsyncWebClient, places: list[tuple[int, str]]) -> list[Finding]:
    found: list[Finding] = []
    for index, channel in places:
        label = place_label(index, "slack", channel)
        try:
            found.append(await _info(client, label, channel))
        except SlackApiError as exc:
            if _error(exc) != "missing_scope":
                found.append(_from_error(label, _error(exc)))
                continue
            try:
                await client.conversations_history(channel=channel, limit=1)
                found.append(Finding("ok", f"{label}: the bot is in this channel and may post there"))
            except SlackApiError as inner:
                found.append(_from_error(label, _error(inner)))
        except OSError as exc:
            found.append(Finding("missing", f"{label}: the lookup failed ({type(exc).__name__})"))
    return found
